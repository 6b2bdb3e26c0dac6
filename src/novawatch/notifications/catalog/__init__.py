"""The notification catalog: every payload and event type novawatch reads and writes.

One module per notified object; importing this package fills the event table.
"""

from novawatch.notifications.catalog.table import TABLE, EventSpec, count, event, events, spec

# Importing the modules registers their events; order does not matter.
from novawatch.notifications.catalog import (  # noqa: F401  # isort: skip
    aggregate,
    common,
    compute_node,
    compute_task,
    exception,
    flavor,
    image,
    instance,
    keypair,
    legacy,
    libvirt,
    metrics,
    request_spec,
    server_group,
    service,
    volume,
)

__all__ = ["TABLE", "EventSpec", "count", "event", "events", "spec"]
