"""Audit and repair: prove the model is not stale by comparing it with the source, and fix drift.

The comparison is by entity (uuid) and field, over the fields of the snapshot contract. ``reported``
is compared only when both sides have it: it is what a node last said, not what the model derives.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import msgspec

from novawatch.model.cluster import ClusterModel
from novawatch.snapshot import InstanceRecord, NodeRecord, Snapshot, Source


class FieldDiff(NamedTuple):
    field: str
    model: Any
    source: Any


class Drift(NamedTuple):
    """One entity that differs: ``missing`` from the model, ``unexpected`` in it, or ``differs``."""

    kind: str  # node | instance
    uuid: str
    problem: str  # missing | unexpected | differs
    fields: tuple[FieldDiff, ...] = ()

    def describe(self) -> str:
        """One line: ``instance UUID differs: state model='active' source='stopped'; ...``."""
        text = f"{self.kind} {self.uuid} {self.problem}"
        if self.fields:
            text += ": " + "; ".join(f"{f.field} model={f.model!r} source={f.source!r}" for f in self.fields)
        return text


def compare(
    kind: str, model: Mapping[str, msgspec.Struct], source: Mapping[str, msgspec.Struct]
) -> Iterator[Drift]:
    """The drift between two uuid -> record maps, sorted by uuid."""
    for uuid in sorted(model.keys() | source.keys()):
        mine, theirs = model.get(uuid), source.get(uuid)
        if mine is None:
            yield Drift(kind, uuid, "missing")
        elif theirs is None:
            yield Drift(kind, uuid, "unexpected")
        else:
            fields = _field_diffs(mine, theirs)
            if fields:
                yield Drift(kind, uuid, "differs", fields)


def _field_diffs(mine: msgspec.Struct, theirs: msgspec.Struct) -> tuple[FieldDiff, ...]:
    diffs = []
    for name in mine.__struct_fields__:
        a, b = getattr(mine, name), getattr(theirs, name)
        if name == "volumes":
            a, b = sorted(a), sorted(b)
        elif a is msgspec.UNSET or b is msgspec.UNSET:
            continue
        if a != b:
            diffs.append(FieldDiff(name, a, b))
    return tuple(diffs)


def audit_snapshots(model: Snapshot, source: Snapshot) -> list[Drift]:
    """The drift between two snapshots (``novawatch model audit MODEL.json --source TRUTH.json``)."""
    return _audit(model.nodes, model.instances, source.nodes, source.instances)


def audit(cluster: ClusterModel, source: Source) -> list[Drift]:
    """The drift between the live model and the source (node usage as the model keeps it)."""
    store = cluster.store
    nodes = [store.node_record(n) for n in store.nodes.values()]
    instances = [store.instance_record(i) for i in store.instances.values()]
    return _audit(nodes, instances, source.list_nodes(), source.list_instances())


def _audit(
    nodes: Iterable[NodeRecord], instances: Iterable[InstanceRecord],
    source_nodes: Iterable[NodeRecord], source_instances: Iterable[InstanceRecord],
) -> list[Drift]:
    drift = list(compare("node", {n.uuid: n for n in nodes}, {n.uuid: n for n in source_nodes}))
    drift += compare("instance", {i.uuid: i for i in instances}, {i.uuid: i for i in source_instances})
    return drift


def repair(cluster: ClusterModel, source: Source, drift: Iterable[Drift]) -> int:
    """Replace each drifted entity with the source's (or remove it); the number of entities repaired.

    Node usage is derived from instances, so a node that differs only in usage is put right by
    repairing its instances; it is replaced anyway, which is harmless.
    """
    store = cluster.store
    repaired = 0
    for item in drift:
        if item.kind == "instance":
            store.remove_instance(item.uuid)
            record = source.get_instance(item.uuid)
            if record is None:
                cluster.dead_instances.bury(item.uuid, None)
            else:
                cluster.dead_instances.forget(item.uuid)
                inst = store.instance_from_record(record)
                store.add_instance(inst)
        else:
            store.remove_node(item.uuid)
            node_record = source.get_node(item.uuid)
            if node_record is None:
                cluster.dead_nodes.bury(item.uuid, None)
            else:
                cluster.dead_nodes.forget(item.uuid)
                cluster.add_node(store.node_from_record(node_record))
        repaired += 1
    return repaired


class Auditor:
    """Periodic audit of a live model: ``run()`` audits, optionally repairs, and keeps the drift count."""

    def __init__(self, cluster: ClusterModel, source: Source) -> None:
        self.cluster = cluster
        self.source = source
        #: Drifted entities found by the last audit (what the running service exposes).
        self.drift_count = 0
        self.audits = 0
        self.repaired = 0

    def run(self, *, fix: bool = True) -> list[Drift]:
        """Audit once; with ``fix``, repair what drifted. The drift found (before repair)."""
        drift = audit(self.cluster, self.source)
        self.audits += 1
        self.drift_count = len(drift)
        if fix and drift:
            self.repaired += repair(self.cluster, self.source, drift)
        return drift
