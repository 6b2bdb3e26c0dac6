"""The cluster model the handlers change: the store plus what it needs to stay correct.

Tombstones stop late notifications from bringing deleted entities back; the source (optional)
fills in entities the model has never seen; service state that arrives before its node is kept
until the node shows up.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

from novawatch.model.ordering import DEFAULT_TOMBSTONES, Tombstones
from novawatch.model.store import Instance, Node, Store
from novawatch.snapshot import Source


class ServiceState(NamedTuple):
    """A compute service's liveness and status, as last notified."""

    state: str
    status: str
    disabled_reason: str | None
    ts: str


class ClusterModel:
    """Store, tombstones, pending service states and the source, shared by all handlers."""

    def __init__(self, source: Source | None = None, *, tombstones: int = DEFAULT_TOMBSTONES) -> None:
        self.store = Store()
        self.source = source
        self.dead_instances = Tombstones(tombstones)
        self.dead_nodes = Tombstones(tombstones)
        #: Service state of hosts that have no node in the model yet, applied when the node appears.
        self.pending_services: dict[str, ServiceState] = {}
        #: Entities fetched from the source because a notification named them first.
        self.fetched = 0
        #: Hosts the source was asked about and did not know (not asked again).
        self._unknown_hosts: set[str] = set()
        #: instance uuid -> volume id -> (timestamp, attached) of legacy ``volume.attach/detach`` events.
        #: They name one volume, unlike versioned payloads which list all, so a later full list must not
        #: undo a newer one of them (only instances that had such events are here).
        self.volume_journal: dict[str, dict[str, tuple[str, bool]]] = {}

    def fetch_instance(self, uuid: str) -> Instance | None:
        """The instance from the source (added to the store), or None when there is none to ask."""
        if self.source is None:
            return None
        record = self.source.get_instance(uuid)
        if record is None:
            return None
        inst = self.store.instance_from_record(record)
        self.store.add_instance(inst)
        self.fetched += 1
        return inst

    def node_for_host(self, host: str) -> Node | None:
        """The node of a host, fetched from the source the first time a host is unknown."""
        node = self.store.nodes_by_host.get(host)
        if node is not None or self.source is None or host in self._unknown_hosts:
            return node
        # Rare (a host the model has never seen): the source interface has no lookup by host.
        for record in self.source.list_nodes():
            if record.host == host and record.uuid not in self.dead_nodes:
                node = self.store.node_from_record(record)
                self.add_node(node)
                self.fetched += 1
                return node
        self._unknown_hosts.add(sys.intern(host))
        return None

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
        self._unknown_hosts.discard(node.host)
        self.store.add_node(node)
