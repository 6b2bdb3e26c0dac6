"""The notification catalog: every payload and event type novawatch reads and writes.

One module per notified object; importing this package fills the event table.
"""

from novawatch.notifications.catalog.table import EventSpec, event, events, spec

# Importing the modules registers their events; order does not matter.
from novawatch.notifications.catalog import common, compute_node, service  # noqa: F401  # isort: skip

__all__ = ["EventSpec", "event", "events", "spec"]
