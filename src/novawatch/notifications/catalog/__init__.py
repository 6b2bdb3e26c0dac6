"""The notification catalog: every payload and event type novawatch reads and writes.

One module per notified object; importing this package fills the event table.
"""

from novawatch.notifications.catalog.table import (
    SHARED_LEGACY,
    TABLE,
    EventSpec,
    count,
    event,
    events,
    shared_legacy,
    spec,
)

# Importing the modules registers their events.
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

# Last: it adds the legacy half of versioned event types registered above.
from novawatch.notifications.catalog import legacy_shared  # noqa: F401  # isort: skip

__all__ = ["SHARED_LEGACY", "TABLE", "EventSpec", "count", "event", "events", "shared_legacy", "spec"]
