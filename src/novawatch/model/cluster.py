"""The cluster model the handlers change: the store plus what it needs to stay correct.

Tombstones stop late notifications from bringing deleted entities back; the source (optional)
fills in entities the model has never seen; service state that arrives before its node is kept
until the node shows up.

Asking the source is I/O, which the hot path must not do when a service runs it. So a model is
either *inline* (``model replay``: the handler asks the source and waits) or *deferred* (the
running service): the handler only records a wish (``wanted_hosts``, ``wanted_instances``) and goes
on with what the notification says; the service resolves wishes off the loop and hands the answers
back through :meth:`ClusterModel.adopt_node` and :meth:`ClusterModel.adopt_instance`.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

from novawatch.model.changes import Changes
from novawatch.model.ordering import DEFAULT_TOMBSTONES, Tombstones
from novawatch.model.store import Instance, Node, Store
from novawatch.snapshot import InstanceRecord, NodeRecord, Source

log = logging.getLogger("novawatch.model.cluster")

#: Seconds an inline model waits before asking the source again about a host it did not know: Nova
#: creates the compute node after the service, so "unknown" is only true for a while.
UNKNOWN_HOST_RETRY = 5.0


class ServiceState(NamedTuple):
    """A compute service's liveness and status, as last notified."""

    state: str
    status: str
    disabled_reason: str | None
    ts: str


class ClusterModel:
    """Store, tombstones, pending service states and the source, shared by all handlers."""

    def __init__(self, source: Source | None = None, *, tombstones: int = DEFAULT_TOMBSTONES,
                 deferred: bool = False) -> None:
        self.store = Store()
        #: Who listens to what the model changes (:mod:`novawatch.model.changes`).
        self.changes = Changes(self.store)
        self.source = source
        self.dead_instances = Tombstones(tombstones)
        self.dead_nodes = Tombstones(tombstones)
        #: Service state of hosts that have no node in the model yet, applied when the node appears.
        self.pending_services: dict[str, ServiceState] = {}
        #: Entities fetched from the source because a notification named them first.
        self.fetched = 0
        #: Inline mode: hosts the source did not know -> when to ask again (monotonic seconds).
        self._unknown_hosts: dict[str, float] = {}
        #: Deferred mode: lookups wanted, resolved by whoever runs the model (never by the handlers).
        self.deferred = deferred
        self.wanted_hosts: set[str] = set()
        self.wanted_instances: set[str] = set()
        #: Called (on the handler's thread) when a wish is added; the service wakes its resolver with it.
        self.on_wish: Callable[[], None] | None = None
        #: instance uuid -> volume id -> (timestamp, attached) of legacy ``volume.attach/detach`` events.
        #: They name one volume, unlike versioned payloads which list all, so a later full list must not
        #: undo a newer one of them (only instances that had such events are here).
        self.volume_journal: dict[str, dict[str, tuple[str, bool]]] = {}

    def fetch_instance(self, uuid: str) -> Instance | None:
        """The instance from the source (added to the store), or None: no source, not found, or deferred.

        Deferred, the wish is recorded and the caller goes on with what its notification says.
        """
        if self.deferred:
            if uuid not in self.wanted_instances:
                self.wanted_instances.add(uuid)
                if self.on_wish is not None:
                    self.on_wish()
            return None
        if self.source is None:
            return None
        try:
            record = self.source.get_instance(uuid)
        except Exception as exc:  # the apply path never fails because the source did
            log.debug("instance lookup failed", extra={"uuid": uuid, "error": str(exc)})
            return None
        if record is None:
            return None
        inst = self.store.instance_from_record(record)
        self.store.add_instance(inst)
        self.fetched += 1
        return inst

    def node_for_host(self, host: str) -> Node | None:
        """The node of a host, about to be changed by the caller; one the model has not seen is asked of the
        source (inline) or wished for."""
        node = self.store.edit_node_of(host)
        if node is not None:
            return node
        if self.deferred:
            self.want_host(host)
            return None
        if self.source is None:
            return None
        retry_at = self._unknown_hosts.get(host)
        if retry_at is not None and time.monotonic() < retry_at:
            return None
        try:
            record = find_node(self.source, host)
        except Exception as exc:
            log.debug("node lookup failed", extra={"host": host, "error": str(exc)})
            record = None
        if record is None or record.uuid in self.dead_nodes:
            self._unknown_hosts[sys.intern(host)] = time.monotonic() + UNKNOWN_HOST_RETRY
            return None
        node = self.store.node_from_record(record)
        self.add_node(node)
        self.fetched += 1
        return node

    def want_host(self, host: str) -> None:
        """Make sure the model gets the node of ``host`` if the source has one (a notification named it)."""
        if host in self.store.nodes_by_host:
            return
        if not self.deferred:
            self.node_for_host(host)
        elif host not in self.wanted_hosts:
            self.wanted_hosts.add(sys.intern(host))
            if self.on_wish is not None:
                self.on_wish()

    # --- answers to wishes (deferred mode), applied on the model's own thread ------------------------

    def adopt_node(self, record: NodeRecord) -> Node | None:
        """Add a node the source found for a wanted host, or refresh a known node's capacity and names.

        State and status stay as ``service.*`` notifications left them (they are ordered; a listing is
        not). Returns the node changed or added, None when it was not taken (deleted meanwhile).
        """
        store = self.store
        node = store.nodes.get(record.uuid)
        if node is None:
            if record.uuid in self.dead_nodes:
                return None
            other = store.nodes_by_host.get(record.host)
            if other is not None and other.uuid != record.uuid:
                return None  # the host has a node already (e.g. from compute_node.*): the audit settles it
            node = store.node_from_record(record)
            self.add_node(node)
            self.fetched += 1
            return node
        inventory = record.inventory if isinstance(record.inventory, dict) else None
        if ((node.host, node.hypervisor_hostname, node.vcpus, node.memory_mb, node.local_gb, node.inventory)
                == (record.host, record.hypervisor_hostname, record.vcpus, record.memory_mb, record.local_gb,
                    inventory)):
            return None
        store.edit_node(node.uuid)
        store.rename_node(node, record.host, record.hypervisor_hostname)
        node.vcpus, node.memory_mb, node.local_gb = record.vcpus, record.memory_mb, record.local_gb
        node.inventory = inventory
        return node

    def adopt_instance(self, record: InstanceRecord, mark: str) -> Instance | None:
        """Take the source's record of a wanted instance, unless a notification changed it since the lookup.

        ``mark`` is the instance's ordering mark (``ts``, "" when absent) when the lookup started: a
        notification applied since told the model more than a record fetched meanwhile. Returns the
        instance taken, or None.
        """
        store = self.store
        if record.uuid in self.dead_instances:
            return None
        old = store.instances.get(record.uuid)
        if old is not None and old.ts != mark:
            return None
        if old is not None:
            store.remove_instance(record.uuid)
        inst = store.instance_from_record(record)
        if old is not None:
            inst.ts, inst.vol_ts, inst.bfv, inst.swap_gb = old.ts, old.vol_ts, old.bfv, old.swap_gb
        store.add_instance(inst)
        self.fetched += 1
        return inst

    def replay_volume_journal(self, inst: Instance, ts: str | None) -> None:
        """Re-apply legacy volume events newer than ``ts`` over a volume list that was just replaced."""
        journal = self.volume_journal.get(inst.uuid)
        if not journal:
            return
        volumes = set(inst.volumes)
        for volume_id, (when, attached) in journal.items():
            if ts is not None and when > ts:
                if attached:
                    volumes.add(volume_id)
                else:
                    volumes.discard(volume_id)
        inst.volumes = tuple(sorted(volumes))

    def add_node(self, node: Node) -> None:
        """Add a node, applying service state that arrived for its host before it did."""
        pending = self.pending_services.pop(node.host, None)
        if pending is not None and pending.ts >= node.svc_ts:
            node.state, node.status, node.disabled_reason, node.svc_ts = pending
        self._unknown_hosts.pop(node.host, None)
        self.wanted_hosts.discard(node.host)
        self.store.add_node(node)


def find_node(source: Source, host: str) -> NodeRecord | None:
    """The source's node for ``host``: its ``find_node`` when it has one, else a scan of its list."""
    finder = getattr(source, "find_node", None)
    if finder is not None:
        found: NodeRecord | None = finder(host)
        return found
    return next((r for r in source.list_nodes() if r.host == host), None)
