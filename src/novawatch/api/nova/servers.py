"""Servers: list (with Nova's filters), show, boot, update (rename) and delete."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

import regex
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, Field, StringConstraints

from novawatch.api.inputs import Fqdn, NovaName, Printable, Tag
from novawatch.api.nova import views
from novawatch.api.nova.context import PREFIX, Nova, NovaRequest
from novawatch.api.nova.faults import NovaError
from novawatch.api.nova.schemas import Body, BootIndex, Metadata, Positive, Ref, parse

# --- bodies ----------------------------------------------------------------------------------------------


class BlockDevice(Body):
    boot_index: BootIndex | None = None
    source_type: Literal["volume", "image", "snapshot", "blank"] | None = None
    destination_type: Literal["local", "volume"] | None = None
    volume_size: Positive | None = None
    uuid: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9._-]*$")] | None = None


def _networks(value: Any) -> Any:
    """``auto``, ``none`` (2.37+), or a list of up to 16 requested networks (each an object)."""
    if value in ("auto", "none") or value is None:
        return value
    if isinstance(value, list):
        if len(value) > 16:
            raise ValueError(f"{len(value)} networks requested: novawatch attaches at most 16 ports")
        if not all(isinstance(item, dict) for item in value):
            raise ValueError("each requested network must be an object")
        return value
    raise ValueError("must be 'auto', 'none' or a list of networks")


class ServerCreate(Body):
    name: NovaName
    flavorRef: Ref
    imageRef: Annotated[str, StringConstraints(max_length=255)] | None = None
    block_device_mapping_v2: Annotated[list[BlockDevice], Field(max_length=64)] | None = None
    networks: Annotated[Any, AfterValidator(_networks)] = None
    host: Fqdn | None = None
    availability_zone: NovaName | None = None
    metadata: Metadata | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] | None = None
    description: Printable | None = None


class ServerUpdate(Body):
    name: NovaName | None = None
    description: Printable | None = None


# --- image references -------------------------------------------------------------------------------------


def image_arg(value: Any, field: str) -> str:
    """An image id from a request body (Nova's schema: ``format: uuid``) in canonical form, or Nova's 400."""
    from novawatch.compute.core import ComputeError, image_id

    try:
        return image_id(value)
    except ComputeError:
        raise NovaError(400, f"Invalid input for field/attribute {field}. Value: {value}. "
                        f"{value!r} is not a 'uuid'") from None


# --- listing -------------------------------------------------------------------------------------------------

#: Seconds a ``name`` filter (a regular expression, as in Nova) may take over one listing.
NAME_FILTER_SECONDS = 0.5


def name_filter(pattern: str) -> Callable[[str], bool]:
    """Nova's ``name`` filter: a regular expression searched in display names, within a time budget.

    The ``regex`` engine stops a pathological pattern (catastrophic backtracking) instead of letting it
    hold the event loop, and with it the whole service.
    """
    if len(pattern) > 255:
        raise NovaError(400, "Invalid input for query parameters name: at most 255 characters")
    try:
        compiled = regex.compile(pattern)
    except (regex.error, ValueError, OverflowError, RecursionError):
        raise NovaError(400, f"Invalid name filter {pattern!r}: not a regular expression") from None
    deadline = time.monotonic() + NAME_FILTER_SECONDS

    def matches(name: str) -> bool:
        try:
            return compiled.search(name, timeout=max(deadline - time.monotonic(), 0.001)) is not None
        except TimeoutError:
            raise NovaError(400, f"The name filter {pattern!r} takes too long to evaluate; use a simpler "
                            "regular expression") from None

    return matches


_TRUE = ("1", "t", "true", "on", "y", "yes")


def _bool(text: str | None) -> bool:
    """oslo's ``bool_from_string`` with its default, False."""
    return (text or "").strip().lower() in _TRUE


def listed(nova: NovaRequest) -> list[Any]:
    """The servers a listing starts from, as Nova's database query chooses them (an admin's view).

    Without ``deleted``, the servers not deleted, less the soft-deleted ones unless ``soft_deleted`` is given
    (any non-empty value). With ``deleted=true`` (or ``status=DELETED``), the deleted ones and, unless
    ``soft_deleted`` is given empty, the soft-deleted ones. The ``status`` filter applies on top: so
    ``status=SOFT_DELETED`` alone lists nothing, and with ``deleted=true`` lists the soft-deleted servers.
    """
    q = nova.query
    service = nova.service
    statuses = {s.upper() for s in q.getlist("status")}
    deleted = _bool(q.get("deleted")) or statuses == {"DELETED"}
    live = [i for i in service.instances.values() if not i.deleted]
    if deleted:
        soft = "soft_deleted" not in q or bool(q.get("soft_deleted"))
        return [*service.deleted_instances(), *(i for i in live if soft and i.vm_state == "soft-delete")]
    if q.get("soft_deleted"):
        return live
    return [i for i in live if i.vm_state != "soft-delete"]


def filtered_servers(nova: NovaRequest) -> list[Any]:
    """The servers a listing's query selects, newest first, paged by ``marker`` and ``limit``."""
    q = nova.query
    rows = listed(nova)
    if q.get("host"):
        rows = [i for i in rows if i.host == q["host"]]
    if q.get("node"):
        rows = [i for i in rows if i.node == q["node"]]
    project = q.get("project_id") or q.get("tenant_id")
    if project:
        rows = [i for i in rows if i.project_id == project]
    if q.get("name"):
        matches = name_filter(q["name"])
        rows = [i for i in rows if matches(i.display_name or "")]
    if q.get("status"):
        wanted = {s.upper() for s in q.getlist("status")}
        rows = [i for i in rows if views.server_status(i.vm_state, i.task_state) in wanted]
    # Nova lists newest first; uuid breaks ties so that pages are stable.
    rows.sort(key=lambda i: (i.created_at, i.uuid), reverse=True)
    marker = q.get("marker")
    if marker:
        ids = [i.uuid for i in rows]
        if marker not in ids:
            raise NovaError(400, f"marker [{marker}] not found")
        rows = rows[ids.index(marker) + 1:]
    limit = q.get("limit")
    if limit is not None:
        if not limit.isdigit():
            raise NovaError(400, f"Invalid input for query parameters limit. Value: {limit}.")
        rows = rows[: int(limit)]
    return rows


# --- updates -----------------------------------------------------------------------------------------------

#: What ``PUT /servers/{id}`` leaves out of the server before 2.75 (Nova shows the base view there).
_EXTENDED = ("OS-EXT-SRV-ATTR:", "OS-EXT-STS:", "OS-EXT-AZ:", "OS-SRV-USG:", "os-extended-volumes:")
_EXTENDED_KEYS = ("config_drive", "key_name", "security_groups", "host_status", "server_groups")


def _base_view(server: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in server.items() if not k.startswith(_EXTENDED) and k not in _EXTENDED_KEYS}
    out["addresses"] = {net: [{"version": a["version"], "addr": a["addr"]} for a in addrs]
                        for net, addrs in server["addresses"].items()}
    return out


def router(shared: Nova) -> APIRouter:
    """The servers routes, closures over the app's :class:`Nova`."""
    routes = APIRouter(prefix=PREFIX)

    @routes.get("/servers")
    async def list_servers(request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"servers": [views.server_brief(i, nova.base) for i in filtered_servers(nova)]})

    @routes.get("/servers/detail")
    async def list_servers_detail(request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"servers": [nova.server_view(i) for i in filtered_servers(nova)]})

    @routes.get("/servers/{server_id}")
    async def show_server(server_id: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"server": nova.server_view(nova.instance(server_id))})

    @routes.post("/servers")
    async def create_server(request: Request) -> JSONResponse:
        """Boot. Synchronous underneath: the server is ACTIVE (or ERROR) by the time this answers."""
        nova = shared.at(request)
        server = parse(ServerCreate, await nova.body("server"), "server")
        service = nova.service
        name = server.name
        chosen = nova.flavor_ref(server.flavorRef)
        boot_volume_gb: int | None = None
        for bdm in server.block_device_mapping_v2 or []:
            if bdm.boot_index == 0 and bdm.destination_type == "volume":
                boot_volume_gb = bdm.volume_size or chosen.root_gb or 1
        image_ref = image_arg(server.imageRef, "imageRef") if server.imageRef else ""
        if not image_ref and boot_volume_gb is None:
            raise NovaError(400, "Block Device Mapping is Invalid: You specified more local devices than the "
                            "limit allows (give imageRef or a boot volume in block_device_mapping_v2)")
        networks = server.networks if server.networks is not None else "auto"
        ports = 0 if networks == "none" else len(networks) if isinstance(networks, list) else 1
        host = server.host
        zone = server.availability_zone
        if host is None and zone is not None and ":" in zone:
            # "zone:host" or "zone:host:node" forces the host (an admin feature of Nova's).
            host = zone.split(":")[1] or None
        if host is not None and host not in service.services:
            raise NovaError(400, f"Compute host {host} could not be found.")
        kwargs: dict[str, Any] = {"project_id": nova.project_id, "boot_volume_gb": boot_volume_gb, "ports": ports,
                                  "metadata": dict(server.metadata or {}), "tags": list(server.tags or []),
                                  "host": host}
        if image_ref:
            kwargs["image_ref"] = image_ref
        inst = nova.run("boot", lambda: service.boot(name, chosen, **kwargs))
        out = {"server": {"id": inst.uuid, "links": views.links(nova.base, "servers", inst.uuid),
                          "OS-DCF:diskConfig": "MANUAL", "security_groups": [{"name": "default"}],
                          "adminPass": "novawatch"}}
        return JSONResponse(out, status_code=202, headers={"Location": f"{nova.base}v2.1/servers/{inst.uuid}"})

    @routes.put("/servers/{server_id}")
    async def update_server(server_id: str, request: Request) -> JSONResponse:
        """Rename (``name``) or describe (``description``, 2.19+): one ``instance.update`` naming the old name."""
        nova = shared.at(request)
        body = await nova.body("server")
        if "description" in body and not nova.at_least("2.19"):
            raise NovaError(400, "Invalid input for field/attribute server. Additional properties are not allowed "
                            "('description' was unexpected): descriptions need microversion 2.19")
        update = parse(ServerUpdate, body, "server")
        if "name" in body and update.name is None:
            raise NovaError(400, "Invalid input for field/attribute name. Value: None. None is not of type 'string'")
        uuid = nova.instance(server_id).uuid
        description = update.description if "description" in body else None
        nova.run("update", lambda: nova.service.rename(uuid, update.name, description,
                                                       clear_description="description" in body and description is None))
        server = nova.server_view(nova.instance(uuid))
        return JSONResponse({"server": server if nova.at_least("2.75") else _base_view(server)})

    @routes.delete("/servers/{server_id}")
    async def delete_server(server_id: str, request: Request) -> Response:
        nova = shared.at(request)
        nova.instance(server_id)
        nova.run("delete", lambda: nova.service.delete(server_id))
        return Response(status_code=204)

    return routes
