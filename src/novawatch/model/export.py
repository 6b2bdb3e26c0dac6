"""The model as a ``novawatch.model/1`` snapshot (what ``model replay --out`` writes)."""

from __future__ import annotations

from pathlib import Path

from novawatch.model.cluster import ClusterModel
from novawatch.snapshot import Snapshot, build, write


def to_snapshot(cluster: ClusterModel, *, reported: bool = True) -> Snapshot:
    """The snapshot of the model: sorted by uuid, node usage derived as the contract defines it.

    ``reported`` adds each node's last reported usage (key ``reported``); without it the snapshot has
    exactly the keys the compute service's ``--truth`` has, so the two compare byte for byte.
    """
    store = cluster.store
    nodes = [store.node_record(n, reported=reported) for n in store.nodes.values()]
    instances = [store.instance_record(i) for i in store.instances.values()]
    return build(nodes, instances)


def write_snapshot(cluster: ClusterModel, path: str | Path, *, reported: bool = True) -> None:
    """Write the model's snapshot in the canonical form (two snapshots diff cleanly)."""
    write(path, to_snapshot(cluster, reported=reported))
