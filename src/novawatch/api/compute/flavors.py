"""``/v1/flavors``: list and create flavors."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel

from novawatch.api.compute.base import (
    ComputeAPI,
    DiskGb,
    FlavorMemoryMb,
    FlavorVcpus,
    Name,
    SwapMb,
    respond,
    responses,
)


class FlavorIn(BaseModel):
    name: Name
    vcpus: FlavorVcpus
    memory_mb: FlavorMemoryMb
    root_gb: DiskGb
    ephemeral_gb: DiskGb = 0
    swap: SwapMb = 0


class FlavorOut(BaseModel):
    name: str
    flavorid: str
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int
    swap: int


class FlavorsOut(BaseModel):
    flavors: list[FlavorOut]


def router(api: ComputeAPI) -> APIRouter:
    """The flavors' routes over ``api``."""
    routes = APIRouter(tags=["flavors"])
    service = api.service

    @routes.get("/v1/flavors", response_model=FlavorsOut)
    async def list_flavors() -> Response:
        rows = sorted(service.flavors.values(), key=lambda f: f.name)
        return respond({"flavors": [api.flavor_json(f) for f in rows]})

    @routes.post("/v1/flavors", status_code=201, response_model=FlavorOut, responses=responses(409))
    async def create_flavor(body: FlavorIn) -> Response:
        if any(f.name == body.name for f in service.flavors.values()):
            raise HTTPException(409, f"a flavor named {body.name!r} exists; pick another name")
        row = api.run("create flavor", lambda: service.create_flavor(
            body.name, vcpus=body.vcpus, memory_mb=body.memory_mb, root_gb=body.root_gb,
            ephemeral_gb=body.ephemeral_gb, swap=body.swap))
        return respond(api.flavor_json(row), 201)

    return routes
