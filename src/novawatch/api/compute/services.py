"""``/v1/services``: compute services (one per host) with their node; a host joins, is enabled, disabled,
forced down or deleted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel

from novawatch.api.compute.base import (
    ComputeAPI,
    Flag,
    HostDiskGb,
    HostMemoryMb,
    HostPath,
    HostVcpus,
    Name,
    respond,
    responses,
)
from novawatch.api.inputs import Text


class ServiceIn(BaseModel):
    host: Name
    vcpus: HostVcpus = 32
    memory_mb: HostMemoryMb = 131072
    local_gb: HostDiskGb = 1000


class DisableIn(BaseModel):
    reason: Text | None = None


class ForceDownIn(BaseModel):
    forced_down: Flag = True


class ServiceOut(BaseModel):
    host: str
    uuid: str
    binary: str
    disabled: bool
    disabled_reason: str | None
    forced_down: bool
    node_uuid: str | None
    vcpus: int | None
    memory_mb: int | None
    local_gb: int | None
    vcpus_used: int | None
    memory_mb_used: int | None
    local_gb_used: int | None
    running_vms: int | None


class ServicesOut(BaseModel):
    services: list[ServiceOut]


def router(api: ComputeAPI) -> APIRouter:
    """The services' routes over ``api``."""
    routes = APIRouter(tags=["services"])
    service = api.service

    @routes.get("/v1/services", response_model=ServicesOut)
    async def list_services() -> Response:
        """Compute services (one per host) with their node's capacity and usage."""
        rows = sorted(service.services.values(), key=lambda s: s.host)
        return respond({"services": [api.service_json(s) for s in rows]})

    @routes.post("/v1/services", status_code=201, response_model=ServiceOut, responses=responses(409))
    async def create_service(body: ServiceIn) -> Response:
        """A host joins: its service and compute node are created (``service.create``, ``compute_node.create``)."""
        row = api.run("create service", lambda: service.create_service(
            body.host, vcpus=body.vcpus, memory_mb=body.memory_mb, local_gb=body.local_gb))
        return respond(api.service_json(row), 201)

    def existing(host: str) -> Any:
        row = service.services.get(host)
        if row is None:
            raise HTTPException(404, f"no compute service on {host!r}; list them with GET /v1/services")
        return row

    def act(host: str, what: str, action: Callable[[], object]) -> Response:
        """Run ``action`` on the service of an existing ``host``; the service after it."""
        existing(host)
        api.run(what, action)
        return respond(api.service_json(existing(host)))

    @routes.post("/v1/services/{host}/enable", response_model=ServiceOut, responses=responses(404, 409))
    async def enable_service(host: HostPath) -> Response:
        return act(host, "enable service", lambda: service.enable_service(host))

    @routes.post("/v1/services/{host}/disable", response_model=ServiceOut, responses=responses(404, 409))
    async def disable_service(host: HostPath, body: Annotated[DisableIn | None, Body()] = None) -> Response:
        reason = body.reason if body is not None else None
        return act(host, "disable service", lambda: service.disable_service(host, reason))

    @routes.post("/v1/services/{host}/force_down", response_model=ServiceOut, responses=responses(404, 409))
    async def force_down(host: HostPath, body: Annotated[ForceDownIn | None, Body()] = None) -> Response:
        down = body.forced_down if body is not None else True
        return act(host, "force down", lambda: service.force_down_service(host, down))

    @routes.delete("/v1/services/{host}", status_code=204, responses=responses(404, 409))
    async def delete_service(host: HostPath) -> Response:
        existing(host)
        api.run("delete service", lambda: service.delete_service(host))
        return Response(status_code=204)

    return routes
