"""``POST /v1/instances/{uuid}/ACTION``: every instance action (power, pause, migrate, resize, volumes,
interfaces, tags, metadata, ...), each emitting Nova's notifications."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import Response
from pydantic import BaseModel, Field

from novawatch.api.compute.base import ComputeAPI, Flag, Name, UuidPath, VolumeGb, respond, responses
from novawatch.api.compute.instances import ActionOut
from novawatch.api.inputs import MetaKey, MetaValue, Tag, Text


class HostIn(BaseModel):
    host: Name | None = Field(default=None, description="destination host; the scheduler picks one when absent")


class RebootIn(BaseModel):
    hard: Flag = False


class LockIn(BaseModel):
    reason: Text | None = None


class RescueIn(BaseModel):
    rescue_image_ref: Text | None = None


class RebuildIn(BaseModel):
    image_ref: Text | None = None


class ResizeIn(BaseModel):
    flavor: Name
    host: Name | None = None


class TagsIn(BaseModel):
    tags: Annotated[list[Tag], Field(max_length=50)]


class MetadataIn(BaseModel):
    metadata: Annotated[dict[MetaKey, MetaValue], Field(max_length=64)]
    replace: Flag = False


class VolumeIn(BaseModel):
    size: VolumeGb = 1


class AttachVolumeIn(BaseModel):
    volume_id: Text | None = Field(default=None, description="an available volume; a new one when absent")
    size: VolumeGb = 1


class DetachVolumeIn(BaseModel):
    volume_id: Text


class SwapVolumeIn(BaseModel):
    old_volume_id: Text
    new_volume_id: Text | None = Field(default=None, description="an available volume; a new one when absent")


class DetachInterfaceIn(BaseModel):
    port_id: Text


#: Instance actions without arguments: URL name -> compute service method.
SIMPLE_ACTIONS = {
    "power_off": "power_off", "power_on": "power_on", "pause": "pause", "unpause": "unpause",
    "suspend": "suspend", "resume": "resume", "unrescue": "unrescue", "unlock": "unlock",
    "trigger_crash_dump": "trigger_crash_dump", "confirm_resize": "confirm_resize",
    "revert_resize": "revert_resize", "live_migration_complete": "live_migration_complete",
    "live_migration_force_complete": "live_migration_force_complete",
    "live_migration_abort": "live_migration_abort", "shelve": "shelve", "shelve_offload": "shelve_offload",
    "soft_delete": "soft_delete", "restore": "restore", "force_delete": "force_delete",
    "attach_interface": "attach_interface",
}


def router(api: ComputeAPI) -> APIRouter:
    """The instance actions' routes over ``api``."""
    routes = APIRouter(tags=["actions"])
    service = api.service

    def _after(action: str, uuid: str, result: Any = None) -> Response:
        inst = service.instances.get(uuid)
        body = api.instance_json(inst) if inst is not None and not inst.deleted else None
        return respond({"action": action, "instance": body,
                               "result": result if isinstance(result, str) else None})

    def _simple(action: str, method: str) -> None:
        async def endpoint(uuid: UuidPath) -> Response:
            api.instance(uuid)
            result = api.run(action, lambda: getattr(service, method)(uuid))
            return _after(action, uuid, result)

        endpoint.__name__ = f"instance_{action}"
        endpoint.__doc__ = f"``{action}`` the instance (emits Nova's notifications for it)."
        routes.post(f"/v1/instances/{{uuid}}/{action}", response_model=ActionOut,
                 responses=responses(400, 404, 409), name=action)(endpoint)

    for action, method in SIMPLE_ACTIONS.items():
        _simple(action, method)

    actions = "/v1/instances/{uuid}"
    errors = responses(400, 404, 409)

    @routes.post(f"{actions}/reboot", response_model=ActionOut, responses=errors)
    async def reboot(uuid: UuidPath, body: Annotated[RebootIn | None, Body()] = None) -> Response:
        api.instance(uuid)
        hard = body.hard if body is not None else False
        return _after("reboot", uuid, api.run("reboot", lambda: service.reboot(uuid, hard=hard)))

    @routes.post(f"{actions}/lock", response_model=ActionOut, responses=errors)
    async def lock(uuid: UuidPath, body: Annotated[LockIn | None, Body()] = None) -> Response:
        api.instance(uuid)
        reason = body.reason if body is not None else None
        return _after("lock", uuid, api.run("lock", lambda: service.lock(uuid, reason)))

    @routes.post(f"{actions}/rescue", response_model=ActionOut, responses=errors)
    async def rescue(uuid: UuidPath, body: Annotated[RescueIn | None, Body()] = None) -> Response:
        api.instance(uuid)
        ref = body.rescue_image_ref if body is not None else None
        return _after("rescue", uuid, api.run("rescue", lambda: service.rescue(uuid, ref)))

    @routes.post(f"{actions}/rebuild", response_model=ActionOut, responses=errors)
    async def rebuild(uuid: UuidPath, body: Annotated[RebuildIn | None, Body()] = None) -> Response:
        api.instance(uuid)
        ref = body.image_ref if body is not None else None
        return _after("rebuild", uuid, api.run("rebuild", lambda: service.rebuild(uuid, ref)))

    @routes.post(f"{actions}/snapshot", response_model=ActionOut, responses=errors)
    async def snapshot(uuid: UuidPath) -> Response:
        """Snapshot to a new image; ``result`` is the image id."""
        api.instance(uuid)
        return _after("snapshot", uuid, api.run("snapshot", lambda: service.snapshot(uuid)))

    @routes.post(f"{actions}/resize", response_model=ActionOut, responses=errors)
    async def resize(uuid: UuidPath, body: ResizeIn) -> Response:
        api.instance(uuid)
        flavor = api.flavor(body.flavor)
        return _after("resize", uuid, api.run("resize", lambda: service.resize(uuid, flavor, host=body.host)))

    def _moving(action: str, method: str) -> None:
        async def endpoint(uuid: UuidPath, body: Annotated[HostIn | None, Body()] = None) -> Response:
            api.instance(uuid)
            host = body.host if body is not None else None
            return _after(action, uuid, api.run(action, lambda: getattr(service, method)(uuid, host=host)))

        endpoint.__name__ = f"instance_{action}"
        endpoint.__doc__ = f"``{action}``, to ``host`` or wherever the scheduler finds room."
        routes.post(f"{actions}/{action}", response_model=ActionOut, responses=errors,
                 name=action)(endpoint)

    for action in ("live_migrate", "evacuate", "unshelve"):
        _moving(action, action)

    @routes.post(f"{actions}/tags", response_model=ActionOut, responses=errors)
    async def set_tags(uuid: UuidPath, body: TagsIn) -> Response:
        api.instance(uuid)
        return _after("tags", uuid, api.run("set tags", lambda: service.set_tags(uuid, list(body.tags))))

    @routes.post(f"{actions}/metadata", response_model=ActionOut, responses=errors)
    async def update_metadata(uuid: UuidPath, body: MetadataIn) -> Response:
        api.instance(uuid)
        return _after("metadata", uuid, api.run("update metadata", lambda: service.update_metadata(
            uuid, dict(body.metadata), replace=body.replace)))

    @routes.post(f"{actions}/attach_volume", response_model=ActionOut, responses=errors)
    async def attach_volume(uuid: UuidPath, body: Annotated[AttachVolumeIn | None, Body()] = None) -> Response:
        """Attach a volume (a new one of ``size`` GB when no ``volume_id`` is given)."""
        api.instance(uuid)
        b = body or AttachVolumeIn()
        volume = api.volume_id(b.volume_id, b.size)
        api.run("attach volume", lambda: service.attach_volume(uuid, volume))
        return _after("attach_volume", uuid, volume)

    @routes.post(f"{actions}/detach_volume", response_model=ActionOut, responses=errors)
    async def detach_volume(uuid: UuidPath, body: DetachVolumeIn) -> Response:
        api.instance(uuid)
        api.run("detach volume", lambda: service.detach_volume(uuid, body.volume_id))
        return _after("detach_volume", uuid)

    @routes.post(f"{actions}/swap_volume", response_model=ActionOut, responses=errors)
    async def swap_volume(uuid: UuidPath, body: SwapVolumeIn) -> Response:
        """Swap an attached volume for another (a new one when ``new_volume_id`` is absent)."""
        api.instance(uuid)
        new = api.volume_id(body.new_volume_id, 1)
        api.run("swap volume", lambda: service.swap_volume(uuid, body.old_volume_id, new))
        return _after("swap_volume", uuid, new)

    @routes.post(f"{actions}/detach_interface", response_model=ActionOut, responses=errors)
    async def detach_interface(uuid: UuidPath, body: DetachInterfaceIn) -> Response:
        api.instance(uuid)
        api.run("detach interface", lambda: service.detach_interface(uuid, body.port_id))
        return _after("detach_interface", uuid)

    return routes
