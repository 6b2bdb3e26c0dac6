"""Volume attachments of a server: list, show, attach, swap (``PUT``, the swap-volume spec) and detach."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, StringConstraints

from novawatch.api.inputs import storable
from novawatch.api.nova.context import PREFIX, Nova, NovaRequest
from novawatch.api.nova.faults import NovaError
from novawatch.api.nova.schemas import Body, parse


class VolumeAttachment(Body):
    volumeId: Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(storable)]
    device: Annotated[str, StringConstraints(max_length=255, pattern=r"^[a-zA-Z0-9._/-]*$")] | None = None


def view(bdm: Any, server_id: str, nova: NovaRequest) -> dict[str, Any]:
    """A ``volumeAttachment``: ``tag`` from 2.70, ``delete_on_termination`` from 2.79."""
    body: dict[str, Any] = {"id": bdm.volume_id, "serverId": server_id, "volumeId": bdm.volume_id,
                            "device": bdm.device_name}
    if nova.at_least("2.70"):
        body["tag"] = bdm.tag
    if nova.at_least("2.79"):
        body["delete_on_termination"] = bool(bdm.delete_on_termination)
    return body


def attachments(nova: NovaRequest, uuid: str) -> list[Any]:
    """The volumes attached to a server (its block device mappings with a volume)."""
    return [b for b in nova.service.bdms.get(uuid, []) if b.volume_id and not b.deleted]


def attachment(nova: NovaRequest, server_id: str, volume_id: str) -> Any:
    """The attachment of ``volume_id`` to the server, or Nova's 404."""
    nova.instance(server_id)
    for b in attachments(nova, server_id):
        if b.volume_id == volume_id:
            return b
    raise NovaError(404, f"Volume {volume_id} is not attached to the instance {server_id}.")


def require_volume(nova: NovaRequest, volume_id: str) -> None:
    """Nova's 404 when the (fake Cinder's) volume does not exist."""
    from novawatch.compute.volumes import VolumeError

    try:
        nova.service.volumes.get(volume_id)
    except VolumeError:
        raise NovaError(404, f"Volume {volume_id} could not be found.") from None


def router(shared: Nova) -> APIRouter:
    """The volume attachments routes, closures over the app's :class:`Nova`."""
    routes = APIRouter(prefix=PREFIX)

    @routes.get("/servers/{server_id}/os-volume_attachments")
    async def list_volume_attachments(server_id: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        nova.instance(server_id)
        return JSONResponse({"volumeAttachments": [view(b, server_id, nova) for b in attachments(nova, server_id)]})

    @routes.get("/servers/{server_id}/os-volume_attachments/{volume_id}")
    async def show_volume_attachment(server_id: str, volume_id: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"volumeAttachment": view(attachment(nova, server_id, volume_id), server_id, nova)})

    @routes.post("/servers/{server_id}/os-volume_attachments")
    async def attach_volume(server_id: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        volume_id = parse(VolumeAttachment, await nova.body("volumeAttachment"), "volumeAttachment").volumeId
        nova.instance(server_id)
        require_volume(nova, volume_id)
        bdm = nova.run("attach volume", lambda: nova.service.attach_volume(server_id, volume_id))
        if bdm is None:
            # The hypervisor failed the attach (volume_attach.error was sent): Nova's attach is
            # asynchronous too, so the request itself still succeeds; the attachment is gone.
            return JSONResponse({"volumeAttachment": {"id": volume_id, "serverId": server_id,
                                                      "volumeId": volume_id, "device": None}})
        return JSONResponse({"volumeAttachment": view(bdm, server_id, nova)})

    @routes.put("/servers/{server_id}/os-volume_attachments/{volume_id}")
    async def swap_volume(server_id: str, volume_id: str, request: Request) -> Response:
        """Swap the attached ``volume_id`` for ``volumeAttachment.volumeId`` (the swap-volume spec)."""
        nova = shared.at(request)
        new = parse(VolumeAttachment, await nova.body("volumeAttachment"), "volumeAttachment").volumeId
        attachment(nova, server_id, volume_id)
        require_volume(nova, new)
        if new != volume_id:
            nova.run("swap volume", lambda: nova.service.swap_volume(server_id, volume_id, new))
        return Response(status_code=202)

    @routes.delete("/servers/{server_id}/os-volume_attachments/{volume_id}")
    async def detach_volume(server_id: str, volume_id: str, request: Request) -> Response:
        nova = shared.at(request)
        attachment(nova, server_id, volume_id)
        nova.run("detach volume", lambda: nova.service.detach_volume(server_id, volume_id))
        return Response(status_code=202)

    return routes
