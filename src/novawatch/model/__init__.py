"""The compute data model (CDM): an informer over Nova's notifications.

List (:mod:`~novawatch.model.bootstrap`), then watch (:class:`~novawatch.model.apply.Consumer` feeding the
handler table of :mod:`~novawatch.model.handlers` into the :class:`~novawatch.model.store.Store`), with
periodic audit and repair against the source (:mod:`~novawatch.model.audit`).
"""

from novawatch.model.apply import Consumer, Stats
from novawatch.model.audit import Auditor, Drift, audit, audit_snapshots, repair
from novawatch.model.bootstrap import bootstrap, from_file, from_snapshot
from novawatch.model.cluster import ClusterModel
from novawatch.model.deadletter import DeadLetter, DeadLetters
from novawatch.model.export import to_snapshot, write_snapshot
from novawatch.model.store import Instance, Node, Store

__all__ = [
    "Auditor",
    "ClusterModel",
    "Consumer",
    "DeadLetter",
    "DeadLetters",
    "Drift",
    "Instance",
    "Node",
    "Stats",
    "Store",
    "audit",
    "audit_snapshots",
    "bootstrap",
    "from_file",
    "from_snapshot",
    "repair",
    "to_snapshot",
    "write_snapshot",
]
