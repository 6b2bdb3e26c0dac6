"""The compute service's truth in the snapshot contract's form (what ``GET /v1/snapshot`` serves).

The compute service's own :class:`~novawatch.compute.source.ComputeSource` reads committed rows; the
app commits after every action, so what it serves is the state after the last completed action.
"""

from __future__ import annotations

from typing import Any

from novawatch.compute.source import ComputeSource
from novawatch.snapshot import InstanceRecord, NodeRecord, Snapshot


def _source(service: Any) -> ComputeSource:
    source = getattr(service, "_novawatch_api_source", None)
    if source is None:
        source = ComputeSource(service.repo.engine)
        service._novawatch_api_source = source
    return source


def compute_snapshot(service: Any) -> Snapshot:
    """Every node and live instance of a running compute service."""
    return _source(service).snapshot()


def compute_node(service: Any, uuid: str) -> NodeRecord | None:
    return _source(service).get_node(uuid)


def compute_instance(service: Any, uuid: str) -> InstanceRecord | None:
    return _source(service).get_instance(uuid)
