"""Port interfaces of a server (``os-interface``): list, show, attach a new port, detach."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from novawatch.api.nova.context import PREFIX, Nova, NovaRequest
from novawatch.api.nova.faults import NovaError


def view(vif: dict[str, Any], nova: NovaRequest) -> dict[str, Any]:
    """An ``interfaceAttachment`` from a VIF of the network info; ``tag`` from 2.70."""
    net = vif.get("network") or {}
    body: dict[str, Any] = {
        "port_id": vif.get("id"), "net_id": net.get("id"), "mac_addr": vif.get("address"), "port_state": "ACTIVE",
        "fixed_ips": [{"subnet_id": None, "ip_address": ip.get("address")}
                      for subnet in net.get("subnets", []) for ip in subnet.get("ips", [])],
    }
    if nova.at_least("2.70"):
        body["tag"] = None
    return body


def vifs(nova: NovaRequest, server_id: str) -> list[dict[str, Any]]:
    inst = nova.instance(server_id)
    return list(inst.info_cache.network_info) if inst.info_cache is not None else []


def vif(nova: NovaRequest, server_id: str, port_id: str) -> dict[str, Any]:
    for item in vifs(nova, server_id):
        if item.get("id") == port_id:
            return item
    raise NovaError(404, f"Port {port_id} is not attached")


def router(shared: Nova) -> APIRouter:
    """The interfaces routes, closures over the app's :class:`Nova`."""
    routes = APIRouter(prefix=PREFIX)

    @routes.get("/servers/{server_id}/os-interface")
    async def list_interfaces(server_id: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"interfaceAttachments": [view(item, nova) for item in vifs(nova, server_id)]})

    @routes.get("/servers/{server_id}/os-interface/{port_id}")
    async def show_interface(server_id: str, port_id: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"interfaceAttachment": view(vif(nova, server_id, port_id), nova)})

    @routes.post("/servers/{server_id}/os-interface")
    async def attach_interface(server_id: str, request: Request) -> JSONResponse:
        """Attach a new port on novawatch's one network (``port_id``/``net_id`` in the body are not honoured)."""
        nova = shared.at(request)
        await nova.body()
        nova.instance(server_id)
        port = nova.run("attach interface", lambda: nova.service.attach_interface(server_id))
        if port is None:
            raise NovaError(500, "Failed to attach network adapter device (the hypervisor failed the attach)")
        return JSONResponse({"interfaceAttachment": view(vif(nova, server_id, port), nova)})

    @routes.delete("/servers/{server_id}/os-interface/{port_id}")
    async def detach_interface(server_id: str, port_id: str, request: Request) -> Response:
        nova = shared.at(request)
        vif(nova, server_id, port_id)
        nova.run("detach interface", lambda: nova.service.detach_interface(server_id, port_id))
        return Response(status_code=202)

    return routes
