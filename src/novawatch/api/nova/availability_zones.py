"""Availability zones (``os-availability-zone``): the zones of the compute services, and per host (``/detail``).

A zone is available when one of its services is enabled; ``/detail`` lists the enabled services of each
available zone by host, with ``available`` (up) and ``active`` (enabled), as Nova does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from novawatch.api.nova.context import PREFIX, Nova, NovaRequest
from novawatch.api.nova.views import primitive_time, service_state


def zones(nova: NovaRequest) -> tuple[list[str], list[str]]:
    """(available zones, zones whose every service is disabled), each sorted."""
    services = nova.service.services.values()
    available = {s.availability_zone or "nova" for s in services if not s.disabled}
    unavailable = {s.availability_zone or "nova" for s in services if s.disabled} - available
    return sorted(available), sorted(unavailable)


def router(shared: Nova) -> APIRouter:
    """The availability zones routes, closures over the app's :class:`Nova`."""
    routes = APIRouter(prefix=PREFIX)

    @routes.get("/os-availability-zone")
    async def list_zones(request: Request) -> JSONResponse:
        nova = shared.at(request)
        available, unavailable = zones(nova)
        return JSONResponse({"availabilityZoneInfo": [
            *({"zoneName": z, "zoneState": {"available": True}, "hosts": None} for z in available),
            *({"zoneName": z, "zoneState": {"available": False}, "hosts": None} for z in unavailable)]})

    @routes.get("/os-availability-zone/detail")
    async def list_zones_detail(request: Request) -> JSONResponse:
        """``openstack availability zone list --compute``."""
        nova = shared.at(request)
        available, unavailable = zones(nova)
        hosts: dict[str, dict[str, Any]] = {}
        for svc in sorted(nova.service.services.values(), key=lambda s: s.id):
            if svc.disabled:
                continue
            hosts.setdefault(svc.availability_zone or "nova", {}).setdefault(svc.host, {})[svc.binary] = {
                "available": service_state(svc) == "up", "active": True, "updated_at": primitive_time(svc.updated_at)}
        return JSONResponse({"availabilityZoneInfo": [
            *({"zoneName": z, "zoneState": {"available": True}, "hosts": hosts.get(z, {})} for z in available),
            *({"zoneName": z, "zoneState": {"available": False}, "hosts": None} for z in unavailable)]})

    return routes
