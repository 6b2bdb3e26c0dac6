"""The Nova API source under its first name, and a connection helper for scripts.

:class:`OpenStackSource` is :class:`novawatch.sources.nova_api.NovaApiSource` built from an
openstacksdk connection; ``model serve --os-cloud`` and ``--compute-url`` build the same source
through :mod:`novawatch.sources.cloud`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from novawatch.sources.cloud import LazyAdapter, open_endpoint
from novawatch.sources.nova_api import NovaApiSource

if TYPE_CHECKING:
    from openstack.connection import Connection


def connect(endpoint: str, *, token: str | None = None, **options: Any) -> Connection:
    """An openstacksdk connection to one compute endpoint (``http://host:8774/v2.1``), without Keystone.

    With ``token`` requests carry ``X-Auth-Token: token``; without, none (``auth_type: none``).
    ``options`` go to :class:`openstack.connection.Connection` (e.g. ``compute_api_version``).
    """
    from openstack.connection import Connection

    if token:
        return Connection(auth_type="admin_token", auth={"token": token, "endpoint": endpoint},
                          compute_endpoint_override=endpoint, **options)
    return Connection(auth_type="none", compute_endpoint_override=endpoint, **options)


class OpenStackSource(NovaApiSource):
    """Nova's API through an openstacksdk connection (its compute and placement adapters)."""

    def __init__(self, connection: Connection, *, label: str = "Nova") -> None:
        super().__init__(LazyAdapter(connection, "compute"), LazyAdapter(connection, "placement"), label=label,
                         on_close=connection.close)

    @classmethod
    def from_endpoint(cls, endpoint: str, *, token: str | None = None, **options: Any) -> NovaApiSource:
        """A source over one compute endpoint (see :func:`novawatch.sources.cloud.open_endpoint`)."""
        return open_endpoint(endpoint, token=token, **options)
