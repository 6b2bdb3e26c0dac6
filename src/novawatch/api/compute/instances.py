"""``/v1/instances``: list, show, boot and delete instances."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from novawatch.api.compute.base import ComputeAPI, Name, Ports, UuidPath, VolumeGb, respond, responses
from novawatch.api.inputs import MetaKey, MetaValue, ProjectId, Tag


class BootIn(BaseModel):
    name: Name
    flavor: Name = Field(description="flavor name, see GET /v1/flavors")
    project_id: ProjectId = "6f70656e737461636b20342065766572"
    host: Name | None = Field(default=None, description="force this host (skips the scheduler's choice)")
    boot_volume_gb: VolumeGb | None = None
    ports: Ports = 1
    metadata: Annotated[dict[MetaKey, MetaValue], Field(max_length=64)] = Field(default_factory=dict)
    tags: Annotated[list[Tag], Field(max_length=50)] = Field(default_factory=list)


class InstanceOut(BaseModel):
    uuid: str
    display_name: str | None
    project_id: str | None
    host: str | None
    node: str | None
    vm_state: str | None
    power_state: str | None
    task_state: str | None
    locked: bool
    flavor: str | None
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int
    volumes: list[str]
    ports: list[str]
    tags: list[str]
    metadata: dict[str, str]
    created_at: str | None
    updated_at: str | None


class InstancesOut(BaseModel):
    total: int
    offset: int
    limit: int
    instances: list[InstanceOut]


class ActionOut(BaseModel):
    action: str
    instance: InstanceOut | None = None
    result: str | None = None


def router(api: ComputeAPI) -> APIRouter:
    """The instances' routes over ``api`` (their actions: :mod:`novawatch.api.compute.actions`)."""
    routes = APIRouter(tags=["instances"])
    service = api.service

    @routes.get("/v1/instances", response_model=InstancesOut)
    async def list_instances(
        host: Annotated[str | None, Query(max_length=255)] = None,
        project_id: Annotated[str | None, Query(max_length=255)] = None,
        vm_state: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Response:
        """Instances (not deleted), by uuid, filtered."""
        rows = [i for i in service.instances.values() if not i.deleted
                and (host is None or i.host == host) and (project_id is None or i.project_id == project_id)
                and (vm_state is None or i.vm_state == vm_state)]
        rows.sort(key=lambda i: i.uuid)
        page = rows[offset : offset + limit]
        return respond({"total": len(rows), "offset": offset, "limit": limit,
                              "instances": [api.instance_json(i) for i in page]})

    @routes.get("/v1/instances/{uuid}", response_model=InstanceOut, responses=responses(404))
    async def get_instance(uuid: UuidPath) -> Response:
        return respond(api.instance_json(api.instance(uuid)))

    @routes.post("/v1/instances", status_code=202, response_model=InstanceOut, responses=responses(400, 409))
    async def boot(body: BootIn) -> Response:
        """Boot an instance. It is ``active`` on success, ``error`` (with a fault) when it could not be built."""
        flavor = api.flavor(body.flavor)
        if body.host is not None and body.host not in service.services:
            raise HTTPException(400, f"no compute service on {body.host!r}; list them with GET /v1/services")
        inst = api.run("boot", lambda: service.boot(
            body.name, flavor, project_id=body.project_id, host=body.host, boot_volume_gb=body.boot_volume_gb,
            ports=body.ports, metadata=dict(body.metadata), tags=list(body.tags)))
        return respond(api.instance_json(inst), 202)

    @routes.delete("/v1/instances/{uuid}", status_code=202, response_model=ActionOut, responses=responses(404, 409))
    async def delete_instance(uuid: UuidPath) -> Response:
        api.instance(uuid)
        api.run("delete", lambda: service.delete(uuid))
        return respond({"action": "delete", "instance": None, "result": None}, 202)

    return routes
