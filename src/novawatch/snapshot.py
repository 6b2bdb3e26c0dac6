"""The model snapshot contract (``novawatch.model/1``) and the source interface of the data model.

Both sides use it: the compute service writes the truth in this form, the data model reads and
writes it, and anything that can list nodes and instances (the compute service, openstacksdk)
can be a :class:`Source` for bootstrap and audit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import msgspec

from novawatch.redact import mask

FORMAT = "novawatch.model/1"


class NodeRecord(msgspec.Struct, kw_only=True, gc=False):
    """A compute node as the model holds it; the ``*_used`` and ``running_vms`` fields are derived."""

    uuid: str
    host: str
    hypervisor_hostname: str
    state: str = "up"  # up | down
    status: str = "enabled"  # enabled | disabled
    disabled_reason: str | None = None
    vcpus: int = 0
    memory_mb: int = 0
    local_gb: int = 0
    vcpus_used: int = 0
    memory_mb_used: int = 0
    local_gb_used: int = 0
    running_vms: int = 0
    reported: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    #: Placement inventories the capacity came from (``VCPU``/``MEMORY_MB``/``DISK_GB`` -> ``total``,
    #: ``reserved``, ``allocation_ratio``), when it came from Placement (a Nova API source past 2.87).
    inventory: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class InstanceRecord(msgspec.Struct, kw_only=True, gc=False):
    """An instance as the model holds it. ``disk_gb`` counts local disk as Watcher does."""

    uuid: str
    host: str | None
    node: str | None
    project_id: str
    display_name: str
    state: str
    power_state: str
    task_state: str | None = None
    locked: bool = False
    vcpus: int = 0
    memory_mb: int = 0
    disk_gb: int = 0
    volumes: list[str] = msgspec.field(default_factory=list)


class Snapshot(msgspec.Struct, kw_only=True):
    format: str = FORMAT
    nodes: list[NodeRecord] = msgspec.field(default_factory=list)
    instances: list[InstanceRecord] = msgspec.field(default_factory=list)


class SourceError(RuntimeError):
    """A source that cannot answer. ``kind`` says which part failed; the message what to check.

    Kinds: ``config`` (clouds.yaml, options), ``auth`` (401: credentials), ``forbidden`` (403, or an
    answer narrowed by policy: the role), ``catalog`` (no compute endpoint), ``unreachable`` (network,
    TLS, timeouts), ``endpoint`` (an answer that is not Nova's), ``version`` (microversions).
    """

    def __init__(self, message: str, kind: str = "endpoint") -> None:
        super().__init__(mask(message))
        self.kind = kind


class SnapshotError(ValueError):
    """A snapshot file that is not a readable ``novawatch.model/1`` document."""


def instance_disk_gb(root_gb: int, ephemeral_gb: int, swap_mb: int, booted_from_volume: bool) -> int:
    """Local disk of an instance in GB: root (0 when booted from volume) + ephemeral + swap, rounded up."""
    root = 0 if booted_from_volume else root_gb
    return root + ephemeral_gb - (-swap_mb // 1024)


def derive_usage(nodes: Iterable[NodeRecord], instances: Iterable[InstanceRecord]) -> None:
    """Set each node's ``*_used`` and ``running_vms`` to the sums over the instances on its host."""
    by_host: dict[str, NodeRecord] = {}
    for node in nodes:
        node.vcpus_used = node.memory_mb_used = node.local_gb_used = node.running_vms = 0
        by_host[node.host] = node
    for inst in instances:
        owner = by_host.get(inst.host) if inst.host is not None else None
        if owner is not None:
            owner.vcpus_used += inst.vcpus
            owner.memory_mb_used += inst.memory_mb
            owner.local_gb_used += inst.disk_gb
            owner.running_vms += 1


def build(nodes: Iterable[NodeRecord], instances: Iterable[InstanceRecord]) -> Snapshot:
    """A snapshot sorted by uuid, with derived usage filled in."""
    node_list = sorted(nodes, key=lambda n: n.uuid)
    inst_list = sorted(instances, key=lambda i: i.uuid)
    for inst in inst_list:
        inst.volumes = sorted(inst.volumes)
    derive_usage(node_list, inst_list)
    return Snapshot(nodes=node_list, instances=inst_list)


_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder(Snapshot)


def dumps(snapshot: Snapshot) -> bytes:
    """Canonical bytes: sorted keys, one entity per line, so two snapshots diff cleanly."""
    lines = [b'{"format":' + _encoder.encode(snapshot.format) + b',"nodes":[']
    lines.append(b",\n".join(_encoder.encode(n) for n in snapshot.nodes))
    lines.append(b'],"instances":[')
    lines.append(b",\n".join(_encoder.encode(i) for i in snapshot.instances))
    lines.append(b"]}\n")
    return b"\n".join(lines)


def loads(data: bytes) -> Snapshot:
    try:
        snap = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SnapshotError(f"not a {FORMAT} snapshot: {exc}") from None
    if snap.format != FORMAT:
        raise SnapshotError(f"snapshot format is {snap.format!r}; this reader knows {FORMAT!r}")
    return snap


def write(path: str | Path, snapshot: Snapshot) -> None:
    Path(path).write_bytes(dumps(snapshot))


def read(path: str | Path) -> Snapshot:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot {path}: {exc.strerror}") from None
    return loads(data)


class Source(Protocol):
    """What the data model needs from the owner of the truth to bootstrap, fill gaps and audit."""

    def list_nodes(self) -> Iterator[NodeRecord]: ...

    def list_instances(self) -> Iterator[InstanceRecord]: ...

    def get_node(self, uuid: str) -> NodeRecord | None: ...

    def get_instance(self, uuid: str) -> InstanceRecord | None: ...


class SnapshotSource:
    """A :class:`Source` backed by a snapshot file (audit against a ``--truth`` file, bootstrap from one)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._nodes = {n.uuid: n for n in snapshot.nodes}
        self._instances = {i.uuid: i for i in snapshot.instances}

    def list_nodes(self) -> Iterator[NodeRecord]:
        return iter(self.snapshot.nodes)

    def list_instances(self) -> Iterator[InstanceRecord]:
        return iter(self.snapshot.instances)

    def get_node(self, uuid: str) -> NodeRecord | None:
        return self._nodes.get(uuid)

    def get_instance(self, uuid: str) -> InstanceRecord | None:
        return self._instances.get(uuid)
