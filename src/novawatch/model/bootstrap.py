"""Bootstrap (the informer's *list*): fill a model from a source, or from a snapshot file."""

from __future__ import annotations

import gc
from pathlib import Path

from novawatch.model.cluster import ClusterModel
from novawatch.snapshot import Snapshot, SnapshotSource, Source, read


def bootstrap(cluster: ClusterModel, source: Source) -> None:
    """Load every node and instance the source lists into the (empty or stale) model."""
    store = cluster.store
    # The store allocates only acyclic objects; letting the cyclic collector walk a growing heap
    # over and over would cost more than the load itself.
    enabled = gc.isenabled()
    gc.disable()
    try:
        for record in source.list_nodes():
            cluster.add_node(store.node_from_record(record))
        add_instance = store.add_instance
        from_record = store.instance_from_record
        for inst_record in source.list_instances():
            add_instance(from_record(inst_record))
    finally:
        if enabled:
            gc.enable()


def from_snapshot(snapshot: Snapshot, source: Source | None = None) -> ClusterModel:
    """A model holding a snapshot's nodes and instances (and asking ``source`` about strangers)."""
    cluster = ClusterModel(source)
    bootstrap(cluster, SnapshotSource(snapshot))
    return cluster


def from_file(path: str | Path, source: Source | None = None) -> ClusterModel:
    """A model bootstrapped from a snapshot file (``--initial``)."""
    # Parsing allocates one record per entity, all kept until the end: the same story as bootstrap().
    enabled = gc.isenabled()
    gc.disable()
    try:
        snapshot = read(path)
    finally:
        if enabled:
            gc.enable()
    return from_snapshot(snapshot, source)
