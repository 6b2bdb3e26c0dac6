"""``/v1/volumes``: create a volume (the fake Cinder's)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel

from novawatch.api.compute.base import ComputeAPI, VolumeGb, respond


class VolumeIn(BaseModel):
    size: VolumeGb = 1


class VolumeOut(BaseModel):
    id: str
    size: int
    status: str
    instance_uuid: str | None


def router(api: ComputeAPI) -> APIRouter:
    """The volumes' route over ``api``."""
    routes = APIRouter(tags=["volumes"])

    @routes.post("/v1/volumes", status_code=201, response_model=VolumeOut)
    async def create_volume(body: VolumeIn) -> Response:
        vol = api.run("create volume", lambda: api.service.create_volume(body.size))
        return respond({"id": vol.id, "size": vol.size, "status": vol.status,
                              "instance_uuid": vol.instance_uuid}, 201)

    return routes
