"""Server metadata: list, set (merge or replace), show and delete items; each change is an ``instance.update``.

As Nova's compute API: changes need an active, paused, suspended or stopped server with no task, not
locked (409 otherwise), and at most ``quotas.METADATA_ITEMS`` items (Nova's ``metadata_items`` quota, 403).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from novawatch.api.inputs import MetaKey, MetaValue
from novawatch.api.nova.context import PREFIX, Nova, NovaRequest
from novawatch.api.nova.faults import NovaError
from novawatch.api.nova.schemas import Body, Metadata, parse
from novawatch.compute import quotas

_CHANGEABLE = ("active", "paused", "suspended", "stopped")


class MetadataBody(Body):
    metadata: Metadata


class MetaItem(Body):
    meta: Annotated[dict[MetaKey, MetaValue], Field(min_length=1, max_length=1)]


def items(inst: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (inst.metadata_ or {}).items()}


def _changeable(nova: NovaRequest, server_id: str, what: str) -> Any:
    inst = nova.instance(server_id)
    nova.service.require(inst, what, _CHANGEABLE)
    return inst


def _set(nova: NovaRequest, server_id: str, metadata: dict[str, str], *, replace: bool) -> dict[str, str]:
    inst = _changeable(nova, server_id, "update metadata")
    merged = dict(metadata) if replace else {**items(inst), **metadata}
    if len(merged) > quotas.METADATA_ITEMS:
        raise NovaError(403, f"Quota exceeded for metadata_items: Requested {len(merged)}, but the limit is "
                        f"{quotas.METADATA_ITEMS}")
    uuid = inst.uuid
    nova.run("update metadata", lambda: nova.service.update_metadata(uuid, metadata, replace=replace))
    return items(nova.instance(uuid))


def router(shared: Nova) -> APIRouter:
    """The server metadata routes, closures over the app's :class:`Nova`."""
    routes = APIRouter(prefix=PREFIX)

    @routes.get("/servers/{server_id}/metadata")
    async def list_metadata(server_id: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"metadata": items(nova.instance(server_id))})

    @routes.post("/servers/{server_id}/metadata")
    async def merge_metadata(server_id: str, request: Request) -> JSONResponse:
        """Add or change items (``openstack server set --property``)."""
        nova = shared.at(request)
        body = parse(MetadataBody, await nova.body())
        return JSONResponse({"metadata": _set(nova, server_id, dict(body.metadata), replace=False)})

    @routes.put("/servers/{server_id}/metadata")
    async def replace_metadata(server_id: str, request: Request) -> JSONResponse:
        """Replace every item."""
        nova = shared.at(request)
        body = parse(MetadataBody, await nova.body())
        return JSONResponse({"metadata": _set(nova, server_id, dict(body.metadata), replace=True)})

    @routes.get("/servers/{server_id}/metadata/{key}")
    async def show_metadata_item(server_id: str, key: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        found = items(nova.instance(server_id))
        if key not in found:
            raise NovaError(404, "Metadata item was not found")
        return JSONResponse({"meta": {key: found[key]}})

    @routes.put("/servers/{server_id}/metadata/{key}")
    async def set_metadata_item(server_id: str, key: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        meta = parse(MetaItem, await nova.body()).meta
        if key not in meta:
            raise NovaError(400, "Request body and URI mismatch")
        _set(nova, server_id, dict(meta), replace=False)
        return JSONResponse({"meta": dict(meta)})

    @routes.delete("/servers/{server_id}/metadata/{key}")
    async def delete_metadata_item(server_id: str, key: str, request: Request) -> Response:
        """Remove one item (``openstack server unset --property``)."""
        nova = shared.at(request)
        if key not in items(nova.instance(server_id)):
            raise NovaError(404, "Metadata item was not found")
        uuid = _changeable(nova, server_id, "delete metadata").uuid
        nova.run("delete metadata", lambda: nova.service.delete_metadata(uuid, key))
        return Response(status_code=204)

    return routes
