"""Checkpoints: the model and the bus position it covers, in one file written atomically.

A checkpoint holds what the model needs to go on as if it had never stopped: every node and instance with all
their fields (those of the ``novawatch.model/1`` snapshot contract and the ordering marks), the tombstones, the
recent message ids, service states waiting for their node, the legacy volume journal and the lookups still
wanted; then the bus position it covers, an identity (bus, queue, source) and named sections of other parts
of the service.

The file is a magic line, one JSON header line (format, length and SHA-256 of the body, and what ``model
status`` shows without reading the body), then the body in MessagePack. It is written to a temporary file,
fsynced and renamed over the old one, so a reader sees the old checkpoint or the new one, never a mix.

Writing is split so that the model is not held up: :func:`capture` copies references on the event loop
(tuples of immutable values, C-level copies), :func:`write` encodes and writes in a thread.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

import msgspec

from novawatch.model.cluster import ClusterModel, ServiceState
from novawatch.model.ordering import RecentIds
from novawatch.model.store import Instance, Node

MAGIC = b"novawatch-checkpoint\n"
#: The body's layout; a reader refuses any other (bump it when the fields below change).
FORMAT = 1

# The order of each entity's fields in the body (part of FORMAT).
NODE_FIELDS = ("uuid", "host", "hypervisor_hostname", "state", "status", "disabled_reason", "vcpus", "memory_mb",
               "local_gb", "reported", "inventory", "cn_ts", "svc_ts")
INSTANCE_FIELDS = ("uuid", "project_id", "display_name", "host", "node", "state", "power_state", "task_state",
                   "locked", "vcpus", "memory_mb", "disk_gb", "volumes", "bfv", "swap_gb", "ts", "vol_ts")
_node_row = attrgetter(*NODE_FIELDS)
_instance_row = attrgetter(*INSTANCE_FIELDS)

#: Message ids named in the header (the last applied): on a queue, what the checkpoint covers.
HEADER_IDS = 5

_intern = sys.intern
_write_lock = threading.Lock()  # one writer at a time per process, even when a cancelled write still runs
_temp_counter = iter(range(1, 1 << 62))


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; ``kind`` is missing, truncated, corrupt or format."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Header(msgspec.Struct, kw_only=True):
    """What a checkpoint says of itself, readable without the body."""

    format: int
    length: int  #: bytes of the body
    sha256: str  #: of the body
    written_at: float  #: POSIX seconds
    identity: dict[str, str | None]  #: bus, queue and source it was written for
    kind: str | None = None  #: the bus's kind (stream, quorum, classic, embedded, memory)
    position: int | None = None  #: the bus position everything up to which is in the checkpoint
    final: bool = False  #: written after the consumer stopped (on shutdown): nothing applied after it
    last_message_ids: list[str] = msgspec.field(default_factory=list)  #: the last applied, newest last
    nodes: int = 0
    instances: int = 0
    sections: list[str] = msgspec.field(default_factory=list)


class Body(msgspec.Struct, array_like=True):
    nodes: list[Any]
    instances: list[Any]
    dead_instances: list[Any]
    dead_nodes: list[Any]
    pending_services: list[Any]
    volume_journal: dict[str, dict[str, Any]]
    recent_ids: list[str]
    wanted_hosts: list[str]
    wanted_instances: list[str]
    sections: dict[str, Any]


@dataclass
class Captured:
    """A model's state copied on the loop, ready to be written from another thread."""

    header: Header
    body: Body


@dataclass
class Checkpoint:
    """A checkpoint read back: its header, the model's state and the sections."""

    header: Header
    body: Body = field(repr=False)

    @property
    def sections(self) -> dict[str, Any]:
        return self.body.sections


def capture(
    cluster: ClusterModel, recent: RecentIds, *, identity: Mapping[str, str | None], kind: str | None = None,
    position: int | None = None, final: bool = False, sections: Mapping[str, Any] | None = None,
) -> Captured:
    """Copy what the model holds (on the loop that changes it); cheap: rows of references, no encoding."""
    store = cluster.store
    ids = recent.ids()
    body = Body(
        nodes=list(map(_node_row, store.nodes.values())),
        instances=list(map(_instance_row, store.instances.values())),
        dead_instances=cluster.dead_instances.items(),
        dead_nodes=cluster.dead_nodes.items(),
        pending_services=[(host, *state) for host, state in cluster.pending_services.items()],
        volume_journal={uuid: dict(volumes) for uuid, volumes in cluster.volume_journal.items()},
        recent_ids=ids,
        wanted_hosts=sorted(cluster.wanted_hosts),
        wanted_instances=sorted(cluster.wanted_instances),
        sections=dict(sections or {}),
    )
    header = Header(format=FORMAT, length=0, sha256="", written_at=time.time(), identity=dict(identity), kind=kind,
                    position=position, final=final, last_message_ids=ids[-HEADER_IDS:],
                    nodes=len(body.nodes), instances=len(body.instances), sections=sorted(body.sections))
    return Captured(header, body)


def encode(captured: Captured) -> bytes:
    """The whole file's bytes (the header gets the body's length and checksum)."""
    body = msgspec.msgpack.encode(captured.body)
    header = captured.header
    header.length = len(body)
    header.sha256 = hashlib.sha256(body).hexdigest()
    return MAGIC + msgspec.json.encode(header) + b"\n" + body


def write(path: str | Path, captured: Captured) -> int:
    """Write ``captured`` to ``path`` atomically (temp file, fsync, rename, fsync of the directory); its size."""
    target = Path(path)
    data = encode(captured)
    with _write_lock:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{os.getpid()}.{next(_temp_counter)}.tmp")
        try:
            with temp.open("wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    return len(data)


def remove_leftovers(path: str | Path) -> None:
    """Delete temporary files of writes that never finished (the process was killed meanwhile)."""
    target = Path(path)
    for temp in target.parent.glob(f".{target.name}.*.tmp"):
        temp.unlink(missing_ok=True)


def _split(data: bytes, path: Path) -> tuple[Header, bytes]:
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise CheckpointError("truncated", f"checkpoint {path} is truncated ({len(data)} bytes)")
        raise CheckpointError("corrupt", f"{path} is not a novawatch checkpoint (it does not start with "
                                         f"{MAGIC.strip().decode()!r})")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise CheckpointError("truncated", f"checkpoint {path} is truncated in its header")
    try:
        header = msgspec.json.decode(data[len(MAGIC):end], type=Header)
    except msgspec.ValidationError as exc:
        # another format may lay out its header otherwise: say which format it is when it can be read
        fmt = _format_of(data[len(MAGIC):end])
        if fmt is not None and fmt != FORMAT:
            raise CheckpointError("format", f"checkpoint {path} has format {fmt}; this novawatch reads format "
                                            f"{FORMAT}") from None
        raise CheckpointError("corrupt", f"checkpoint {path} has a bad header: {exc}") from None
    except msgspec.DecodeError as exc:
        raise CheckpointError("corrupt", f"checkpoint {path} has a bad header: {exc}") from None
    if header.format != FORMAT:
        raise CheckpointError("format", f"checkpoint {path} has format {header.format}; this novawatch reads "
                                        f"format {FORMAT}")
    return header, data[end + 1:]


def _format_of(raw: bytes) -> int | None:
    try:
        value = json.loads(raw).get("format")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def read_header(path: str | Path) -> Header:
    """The header of the checkpoint at ``path`` (the body is not read); :class:`CheckpointError` otherwise."""
    target = Path(path)
    try:
        with target.open("rb") as stream:
            head = stream.read(len(MAGIC) + 65536)
    except FileNotFoundError:
        raise CheckpointError("missing", f"no checkpoint at {target}") from None
    except OSError as exc:
        raise CheckpointError("missing", f"cannot read checkpoint {target}: {exc.strerror}") from None
    return _split(head, target)[0]


def read(path: str | Path) -> Checkpoint:
    """Read and check the checkpoint at ``path``; :class:`CheckpointError` saying what is wrong with it."""
    target = Path(path)
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        raise CheckpointError("missing", f"no checkpoint at {target}") from None
    except OSError as exc:
        raise CheckpointError("missing", f"cannot read checkpoint {target}: {exc.strerror}") from None
    header, body = _split(data, target)
    if len(body) < header.length:
        raise CheckpointError("truncated", f"checkpoint {target} is truncated: {len(body)} of {header.length} "
                                           "bytes of its body")
    if len(body) > header.length or hashlib.sha256(body).hexdigest() != header.sha256:
        raise CheckpointError("corrupt", f"checkpoint {target} is corrupt: its checksum does not match")
    try:
        with _no_gc():
            decoded = msgspec.msgpack.decode(body, type=Body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CheckpointError("corrupt", f"checkpoint {target} has a body that cannot be read: {exc}") from None
    return Checkpoint(header, decoded)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Without the cyclic collector: loading allocates only what is kept, and its passes over a growing heap
    would cost more than the load (as in :func:`novawatch.model.bootstrap.bootstrap`)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def restore(cluster: ClusterModel, recent: RecentIds, checkpoint: Checkpoint) -> None:
    """Fill an empty model (and its consumer's recent ids) from ``checkpoint``; :class:`CheckpointError` when
    the body does not have the shape this format gives it (the model is then left partly filled: start a
    new one)."""
    with _no_gc():
        _restore(cluster, recent, checkpoint.body)


def _restore(cluster: ClusterModel, recent: RecentIds, body: Body) -> None:
    store = cluster.store
    new_node, new_instance = Node.__new__, Instance.__new__
    try:
        for (uuid, host, hypervisor_hostname, state, status, disabled_reason, vcpus, memory_mb, local_gb, reported,
             inventory, cn_ts, svc_ts) in body.nodes:
            node = new_node(Node)
            node.uuid, node.host, node.hypervisor_hostname = uuid, _intern(host), _intern(hypervisor_hostname)
            node.state, node.status, node.disabled_reason = _intern(state), _intern(status), disabled_reason
            node.vcpus, node.memory_mb, node.local_gb = vcpus, memory_mb, local_gb
            node.reported = tuple(reported) if reported is not None else None
            node.inventory, node.cn_ts, node.svc_ts = inventory, cn_ts, svc_ts
            store.add_node(node)
        add_instance = store.add_instance
        for (uuid, project_id, display_name, host, node_name, state, power_state, task_state, locked, vcpus,
             memory_mb, disk_gb, volumes, bfv, swap_gb, ts, vol_ts) in body.instances:
            inst = new_instance(Instance)
            inst.uuid, inst.project_id, inst.display_name = uuid, _intern(project_id), display_name
            inst.host = _intern(host) if host is not None else None
            inst.node = _intern(node_name) if node_name is not None else None
            inst.state, inst.power_state = _intern(state), _intern(power_state)
            inst.task_state = _intern(task_state) if task_state is not None else None
            inst.locked, inst.vcpus, inst.memory_mb, inst.disk_gb = locked, vcpus, memory_mb, disk_gb
            inst.volumes, inst.bfv, inst.swap_gb, inst.ts, inst.vol_ts = tuple(volumes), bfv, swap_gb, ts, vol_ts
            add_instance(inst)
        cluster.dead_instances.restore(body.dead_instances)
        cluster.dead_nodes.restore(body.dead_nodes)
        cluster.pending_services = {host: ServiceState(*state) for host, *state in body.pending_services}
        cluster.volume_journal = {uuid: {volume: (when, attached) for volume, (when, attached) in volumes.items()}
                                  for uuid, volumes in body.volume_journal.items()}
        cluster.wanted_hosts.update(body.wanted_hosts)
        cluster.wanted_instances.update(body.wanted_instances)
        recent.restore(body.recent_ids)
    except (TypeError, ValueError) as exc:
        raise CheckpointError("corrupt", f"checkpoint has entries of the wrong shape: {exc}") from None
