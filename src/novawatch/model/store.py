"""The model's store: nodes and instances with their indexes and node usage kept incrementally.

Everything here is in memory and O(1) per change: a handler never scans the store. Node usage is
accounted per host (the snapshot contract derives it from the instances whose ``host`` is the node's
``host``), so an instance placed on a host whose node is not known yet is still counted once it is.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from novawatch.snapshot import InstanceRecord, NodeRecord

if TYPE_CHECKING:
    from novawatch.model.changes import Recorder

_intern = sys.intern

#: Fields of ``compute_node.*`` payloads kept as the node's reported usage (snapshot key ``reported``).
REPORTED_FIELDS = ("vcpus_used", "memory_mb_used", "local_gb_used", "running_vms")


class Usage:
    """What the instances placed on one host consume."""

    __slots__ = ("count", "disk_gb", "memory_mb", "vcpus")

    def __init__(self) -> None:
        self.vcpus = 0
        self.memory_mb = 0
        self.disk_gb = 0
        self.count = 0


class Node:
    """A compute node: capacity from ``compute_node.*``, state and status from ``service.*``."""

    __slots__ = (
        "cn_ts", "disabled_reason", "host", "hypervisor_hostname", "inventory", "local_gb", "memory_mb",
        "reported", "state", "status", "svc_ts", "uuid", "vcpus",
    )

    def __init__(self, uuid: str, host: str, hypervisor_hostname: str) -> None:
        self.uuid = uuid
        self.host = _intern(host)
        self.hypervisor_hostname = _intern(hypervisor_hostname)
        self.state = "up"
        self.status = "enabled"
        self.disabled_reason: str | None = None
        self.vcpus = 0
        self.memory_mb = 0
        self.local_gb = 0
        #: Usage last reported by ``compute_node.*`` (``REPORTED_FIELDS`` in order), None until one arrives.
        self.reported: tuple[int | None, ...] | None = None
        #: Placement inventories the capacity came from (snapshot key ``inventory``), None when it did not.
        self.inventory: dict[str, Any] | None = None
        # Ordering marks of the two sources of a node's fields ("" = from a snapshot: anything newer applies).
        self.cn_ts = ""
        self.svc_ts = ""


class Instance:
    """An instance; ``bfv`` (booted from volume) and ``swap_gb`` are None while the model cannot tell.

    Both are kept because legacy notifications carry neither, yet ``disk_gb`` depends on them.
    """

    __slots__ = (
        "bfv", "disk_gb", "display_name", "host", "locked", "memory_mb", "node", "power_state", "project_id",
        "state", "swap_gb", "task_state", "ts", "uuid", "vcpus", "vol_ts", "volumes",
    )

    def __init__(self, uuid: str, project_id: str, display_name: str) -> None:
        self.uuid = uuid
        self.project_id = _intern(project_id)
        self.display_name = display_name
        self.host: str | None = None
        self.node: str | None = None
        self.state = "building"
        self.power_state = "pending"
        self.task_state: str | None = None
        self.locked = False
        self.vcpus = 0
        self.memory_mb = 0
        self.disk_gb = 0
        self.volumes: tuple[str, ...] = ()
        self.bfv: bool | None = None
        self.swap_gb: int | None = None
        # Ordering marks: of the last applied notification, and of the last complete volume list.
        self.ts = ""
        self.vol_ts = ""


class Store:
    """Nodes and instances by uuid, indexes, and per-host usage maintained on every change.

    Instances must be changed through :meth:`place` and :meth:`set_state` (or removed through
    :meth:`remove_instance`) so that the indexes and usage stay right; other fields can be set directly,
    on an entity got from :meth:`edit_instance`, :meth:`edit_node` or :meth:`edit_node_of` (which tell the
    :attr:`recorder` it is about to change) or added in the same step.
    """

    def __init__(self) -> None:
        #: Set while someone listens to changes (:mod:`novawatch.model.changes`): told of each entity before
        #: it changes. None otherwise, and then the store does nothing more than change.
        self.recorder: Recorder | None = None
        self.nodes: dict[str, Node] = {}
        self.instances: dict[str, Instance] = {}
        self.nodes_by_host: dict[str, Node] = {}
        self.nodes_by_hypervisor_hostname: dict[str, Node] = {}
        self.instances_by_host: dict[str, set[str]] = {}
        self.instances_by_state: dict[str, set[str]] = {}
        self.instances_by_project: dict[str, set[str]] = {}
        self.usage_by_host: dict[str, Usage] = {}

    # --- nodes -----------------------------------------------------------------------------------

    def add_node(self, node: Node) -> None:
        """Insert (or replace) a node and index it."""
        if self.recorder is not None:
            self.recorder.node(node)
        old = self.nodes.get(node.uuid)
        if old is not None:
            self.remove_node(old.uuid)
        self.nodes[node.uuid] = node
        self.nodes_by_host[node.host] = node
        self.nodes_by_hypervisor_hostname[node.hypervisor_hostname] = node

    def rename_node(self, node: Node, host: str, hypervisor_hostname: str) -> None:
        """Change a node's host or hypervisor hostname, keeping the indexes right."""
        if host != node.host or hypervisor_hostname != node.hypervisor_hostname:
            if self.recorder is not None:
                self.recorder.node(node)
            self.remove_node(node.uuid)
            node.host = _intern(host)
            node.hypervisor_hostname = _intern(hypervisor_hostname)
            self.add_node(node)

    def remove_node(self, uuid: str) -> Node | None:
        """Drop a node (its instances stay, mapped to its host); the removed node, or None."""
        node = self.nodes.get(uuid)
        if node is not None:
            if self.recorder is not None:
                self.recorder.node(node)
            del self.nodes[uuid]
            if self.nodes_by_host.get(node.host) is node:
                del self.nodes_by_host[node.host]
            if self.nodes_by_hypervisor_hostname.get(node.hypervisor_hostname) is node:
                del self.nodes_by_hypervisor_hostname[node.hypervisor_hostname]
        return node

    def edit_node(self, uuid: str) -> Node | None:
        """The node ``uuid`` (None if unknown), about to be changed by the caller."""
        return self._editing(self.nodes.get(uuid))

    def edit_node_of(self, host: str) -> Node | None:
        """The node of ``host`` (None if unknown), about to be changed by the caller."""
        return self._editing(self.nodes_by_host.get(host))

    def _editing(self, node: Node | None) -> Node | None:
        if node is not None and self.recorder is not None:
            self.recorder.node(node)
        return node

    def usage(self, node: Node) -> Usage:
        """The usage derived from the instances on the node's host (a zero usage if none)."""
        return self.usage_by_host.get(node.host) or _ZERO

    # --- instances -------------------------------------------------------------------------------

    def add_instance(self, inst: Instance) -> None:
        """Insert a new instance (its placement, state and project as already set) and index it."""
        if self.recorder is not None:
            self.recorder.instance(inst)
        if inst.uuid in self.instances:
            self.remove_instance(inst.uuid)
        self.instances[inst.uuid] = inst
        _index_add(self.instances_by_state, inst.state, inst.uuid)
        _index_add(self.instances_by_project, inst.project_id, inst.uuid)
        if inst.host is not None:
            _index_add(self.instances_by_host, inst.host, inst.uuid)
            self._account(inst.host, inst.vcpus, inst.memory_mb, inst.disk_gb, 1)

    def remove_instance(self, uuid: str) -> Instance | None:
        """Drop an instance and its share of its host's usage; the removed instance, or None."""
        inst = self.instances.get(uuid)
        if inst is not None:
            if self.recorder is not None:
                self.recorder.instance(inst)
            del self.instances[uuid]
            _index_discard(self.instances_by_state, inst.state, uuid)
            _index_discard(self.instances_by_project, inst.project_id, uuid)
            if inst.host is not None:
                _index_discard(self.instances_by_host, inst.host, uuid)
                self._account(inst.host, -inst.vcpus, -inst.memory_mb, -inst.disk_gb, -1)
        return inst

    def edit_instance(self, uuid: str) -> Instance | None:
        """The instance ``uuid`` (None if unknown), about to be changed by the caller."""
        inst = self.instances.get(uuid)
        if inst is not None and self.recorder is not None:
            self.recorder.instance(inst)
        return inst

    def place(
        self, inst: Instance, host: str | None, node: str | None, vcpus: int, memory_mb: int, disk_gb: int
    ) -> None:
        """Set where an instance runs and what it consumes, moving its usage between hosts as needed."""
        if self.recorder is not None:
            self.recorder.instance(inst)
        old_host = inst.host
        # Decoded strings are new objects every time: intern (share) only the ones that changed.
        if node != inst.node:
            inst.node = _intern(node) if node is not None else None
        if host == old_host:
            if host is not None and (
                vcpus != inst.vcpus or memory_mb != inst.memory_mb or disk_gb != inst.disk_gb
            ):
                self._account(host, vcpus - inst.vcpus, memory_mb - inst.memory_mb, disk_gb - inst.disk_gb, 0)
        else:
            if old_host is not None:
                _index_discard(self.instances_by_host, old_host, inst.uuid)
                self._account(old_host, -inst.vcpus, -inst.memory_mb, -inst.disk_gb, -1)
            if host is not None:
                host = _intern(host)
                _index_add(self.instances_by_host, host, inst.uuid)
                self._account(host, vcpus, memory_mb, disk_gb, 1)
            inst.host = host
        inst.vcpus = vcpus
        inst.memory_mb = memory_mb
        inst.disk_gb = disk_gb

    def set_state(self, inst: Instance, state: str) -> None:
        """Change an instance's state, keeping the state index right."""
        if state != inst.state:
            if self.recorder is not None:
                self.recorder.instance(inst)
            _index_discard(self.instances_by_state, inst.state, inst.uuid)
            inst.state = _intern(state)
            _index_add(self.instances_by_state, inst.state, inst.uuid)

    def _account(self, host: str, vcpus: int, memory_mb: int, disk_gb: int, count: int) -> None:
        if self.recorder is not None:
            self.recorder.host(host)
        usage = self.usage_by_host.get(host)
        if usage is None:
            usage = self.usage_by_host[host] = Usage()
        usage.vcpus += vcpus
        usage.memory_mb += memory_mb
        usage.disk_gb += disk_gb
        usage.count += count
        if not usage.count:
            del self.usage_by_host[host]

    # --- queries ---------------------------------------------------------------------------------

    def instances_on(self, host: str) -> Iterator[Instance]:
        """The instances placed on a host."""
        for uuid in self.instances_by_host.get(host, ()):
            yield self.instances[uuid]

    # --- records ---------------------------------------------------------------------------------

    def node_record(self, node: Node, *, reported: bool = True) -> NodeRecord:
        """The node in the snapshot contract's form, with its derived and reported usage."""
        used = self.usage(node)
        record = NodeRecord(
            uuid=node.uuid, host=node.host, hypervisor_hostname=node.hypervisor_hostname, state=node.state,
            status=node.status, disabled_reason=node.disabled_reason, vcpus=node.vcpus,
            memory_mb=node.memory_mb, local_gb=node.local_gb, vcpus_used=used.vcpus,
            memory_mb_used=used.memory_mb, local_gb_used=used.disk_gb, running_vms=used.count,
        )
        if reported and node.reported is not None:
            record.reported = dict(zip(REPORTED_FIELDS, node.reported, strict=True))
        if node.inventory is not None:
            record.inventory = node.inventory
        return record

    @staticmethod
    def instance_record(inst: Instance) -> InstanceRecord:
        """The instance in the snapshot contract's form."""
        return InstanceRecord(
            uuid=inst.uuid, host=inst.host, node=inst.node, project_id=inst.project_id,
            display_name=inst.display_name, state=inst.state, power_state=inst.power_state,
            task_state=inst.task_state, locked=inst.locked, vcpus=inst.vcpus, memory_mb=inst.memory_mb,
            disk_gb=inst.disk_gb, volumes=sorted(inst.volumes),
        )

    def node_from_record(self, record: NodeRecord) -> Node:
        """A new node from a snapshot/source record (not yet added)."""
        node = Node(record.uuid, record.host, record.hypervisor_hostname)
        node.state = _intern(record.state)
        node.status = _intern(record.status)
        node.disabled_reason = record.disabled_reason
        node.vcpus = record.vcpus
        node.memory_mb = record.memory_mb
        node.local_gb = record.local_gb
        reported = record.reported
        if isinstance(reported, dict):
            node.reported = tuple(_int_or_none(reported.get(k)) for k in REPORTED_FIELDS)
        if isinstance(record.inventory, dict):
            node.inventory = record.inventory
        return node

    @staticmethod
    def instance_from_record(record: InstanceRecord) -> Instance:
        """A new instance from a snapshot/source record (not yet added)."""
        inst = Instance(record.uuid, record.project_id, record.display_name)
        inst.host = _intern(record.host) if record.host is not None else None
        inst.node = _intern(record.node) if record.node is not None else None
        inst.state = _intern(record.state)
        inst.power_state = _intern(record.power_state)
        inst.task_state = _intern(record.task_state) if record.task_state is not None else None
        inst.locked = record.locked
        inst.vcpus = record.vcpus
        inst.memory_mb = record.memory_mb
        inst.disk_gb = record.disk_gb
        inst.volumes = tuple(record.volumes)
        return inst

    def check(self) -> list[str]:
        """Consistency problems of the indexes and incremental usage (empty when all is well); for tests."""
        problems = []
        expected: dict[str, list[int]] = {}
        for inst in self.instances.values():
            if inst.host is not None:
                acc = expected.setdefault(inst.host, [0, 0, 0, 0])
                acc[0] += inst.vcpus
                acc[1] += inst.memory_mb
                acc[2] += inst.disk_gb
                acc[3] += 1
                if inst.uuid not in self.instances_by_host.get(inst.host, ()):
                    problems.append(f"instance {inst.uuid} missing from host index {inst.host}")
            if inst.uuid not in self.instances_by_state.get(inst.state, ()):
                problems.append(f"instance {inst.uuid} missing from state index {inst.state}")
        actual = {h: [u.vcpus, u.memory_mb, u.disk_gb, u.count] for h, u in self.usage_by_host.items()}
        if actual != expected:
            problems.append(f"usage by host {actual} != derived {expected}")
        placed = sum(1 for i in self.instances.values() if i.host is not None)
        sizes = [sum(len(s) for s in index.values()) for index in
                 (self.instances_by_host, self.instances_by_state, self.instances_by_project)]
        if sizes != [placed, len(self.instances), len(self.instances)]:
            problems.append(f"index sizes {sizes} != {[placed, len(self.instances), len(self.instances)]}")
        return problems


def _index_add(index: dict[str, set[str]], key: str, uuid: str) -> None:
    bucket = index.get(key)
    if bucket is None:
        index[key] = {uuid}
    else:
        bucket.add(uuid)


def _index_discard(index: dict[str, set[str]], key: str, uuid: str) -> None:
    bucket = index.get(key)
    if bucket is not None:
        bucket.discard(uuid)
        if not bucket:
            del index[key]


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) else None


_ZERO = Usage()
