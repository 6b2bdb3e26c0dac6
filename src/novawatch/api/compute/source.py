"""``/v1/snapshot``: the compute service's truth in the snapshot contract's form (the model service
bootstraps and audits from it).

The compute service's own :class:`~novawatch.compute.source.ComputeSource` reads committed rows; the
app commits after every action, so what it serves is the state after the last completed action.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from novawatch.api.compute.base import ComputeAPI, UuidPath, respond, responses
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


def found(record: NodeRecord | InstanceRecord | None, missing: str) -> Response:
    """The record as JSON, or a 404 saying ``missing``."""
    if record is None:
        raise HTTPException(404, missing)
    return respond(record)


def router(api: ComputeAPI) -> APIRouter:
    """The source's routes over ``api``."""
    routes = APIRouter(tags=["source"])
    service = api.service

    @routes.get("/v1/snapshot")
    async def snapshot_all() -> Response:
        """Every node and instance in the ``novawatch.model/1`` snapshot form (bootstrap and audit)."""
        return respond(compute_snapshot(service))

    @routes.get("/v1/snapshot/nodes/{uuid}", responses=responses(404))
    async def snapshot_node(uuid: UuidPath) -> Response:
        return found(compute_node(service, uuid), f"no compute node {uuid!r}")

    @routes.get("/v1/snapshot/instances/{uuid}", responses=responses(404))
    async def snapshot_instance(uuid: UuidPath) -> Response:
        return found(compute_instance(service, uuid), f"no instance {uuid!r}")

    return routes
