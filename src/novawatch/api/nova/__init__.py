"""A Nova-compatible subset of the Compute API v2.1, served beside novawatch's own compute API.

``mount_nova(app, service, token=...)`` adds it to the compute app (``novawatch compute serve``);
``create_nova_app`` builds it alone. One router module per resource (``servers``, ``flavors``,
``keypairs``...), each with its request bodies and views; see ``docs/openstack.md``.
"""

from novawatch.api.nova.app import create_nova_app, mount_nova
from novawatch.api.nova.faults import NovaError, fault
from novawatch.api.nova.microversion import MAX_VERSION, MIN_VERSION

__all__ = ["MAX_VERSION", "MIN_VERSION", "NovaError", "create_nova_app", "fault", "mount_nova"]
