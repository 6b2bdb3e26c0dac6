"""Compute services (``os-services``): list, enable, disable (with a reason), force down, delete.

From 2.53 a service is named by uuid (``PUT /os-services/{uuid}``); before, by host and binary in the
body of ``PUT /os-services/{enable,disable,disable-log-reason,force-down}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import StringConstraints

from novawatch.api.inputs import Fqdn
from novawatch.api.nova.context import PREFIX, Nova, NovaRequest
from novawatch.api.nova.faults import NovaError
from novawatch.api.nova.schemas import Body, Bool, Reason, parse
from novawatch.api.nova.views import isotime, service_state, service_status


class ServiceUpdate(Body):
    """``PUT /os-services/{uuid}`` (2.53+)."""

    status: Literal["enabled", "disabled"] | None = None
    disabled_reason: Reason | None = None
    forced_down: Bool | None = None


class LegacyServiceUpdate(Body):
    """``PUT /os-services/enable|disable|disable-log-reason|force-down`` (before 2.53)."""

    host: Fqdn
    binary: Annotated[str, StringConstraints(min_length=1, max_length=255)] = "nova-compute"
    disabled_reason: Reason | None = None
    forced_down: Bool | None = None


def view(svc: Any, nova: NovaRequest) -> dict[str, Any]:
    """``os-services`` entry: uuid ids from 2.53 on, ``forced_down`` from 2.11 on."""
    body: dict[str, Any] = {
        "id": svc.uuid if nova.at_least("2.53") else svc.id, "binary": svc.binary, "host": svc.host,
        "zone": svc.availability_zone or "nova", "status": service_status(svc), "state": service_state(svc),
        "updated_at": isotime(svc.updated_at), "disabled_reason": svc.disabled_reason,
    }
    if nova.at_least("2.11"):
        body["forced_down"] = bool(svc.forced_down)
    return body


def service_rows(nova: NovaRequest) -> list[Any]:
    q = nova.query
    rows = sorted(nova.service.services.values(), key=lambda s: s.id)
    if q.get("host"):
        rows = [s for s in rows if s.host == q["host"]]
    if q.get("binary"):
        rows = [s for s in rows if s.binary == q["binary"]]
    return rows


def service_by_id(nova: NovaRequest, ident: str) -> Any:
    uuids = nova.at_least("2.53")
    for svc in nova.service.services.values():
        if (svc.uuid if uuids else str(svc.id)) == ident:
            return svc
    raise NovaError(404, f"Service {ident} could not be found.")


def _update(nova: NovaRequest, svc: Any, update: ServiceUpdate) -> Any:
    status, forced = update.status, update.forced_down
    if status is None and forced is None:
        raise NovaError(400, "No updates were requested. Fields 'status' or 'forced_down' should be specified.")
    if update.disabled_reason and status != "disabled":
        raise NovaError(400, "Specifying 'disabled_reason' with status 'enabled' is invalid.")
    service, host = nova.service, svc.host
    if status == "enabled":
        nova.run("enable service", lambda: service.enable_service(host))
    elif status == "disabled":
        nova.run("disable service", lambda: service.disable_service(host, update.disabled_reason))
    if forced is not None:
        nova.run("force down", lambda: service.force_down_service(host, forced))
    return service.services[host]


def _legacy_action(nova: NovaRequest, action: str, args: LegacyServiceUpdate) -> dict[str, Any]:
    service, host, binary = nova.service, args.host, args.binary
    svc = service.services.get(host)
    if svc is None or svc.binary != binary:
        raise NovaError(404, f"Service {binary} on host {host} could not be found.")
    if action == "enable":
        nova.run("enable service", lambda: service.enable_service(host))
        return {"host": host, "binary": binary, "status": "enabled"}
    if action in ("disable", "disable-log-reason"):
        reason = args.disabled_reason if action == "disable-log-reason" else None
        if action == "disable-log-reason" and reason is None:
            raise NovaError(400, "Missing disabled reason field")
        nova.run("disable service", lambda: service.disable_service(host, reason))
        out = {"host": host, "binary": binary, "status": "disabled"}
        return {**out, "disabled_reason": reason} if action == "disable-log-reason" else out
    if action == "force-down" and nova.at_least("2.11"):
        forced = True if args.forced_down is None else args.forced_down
        nova.run("force down", lambda: service.force_down_service(host, forced))
        return {"host": host, "binary": binary, "forced_down": forced}
    raise NovaError(404, f"Unknown action {action}")


def router(shared: Nova) -> APIRouter:
    """The services routes, closures over the app's :class:`Nova`."""
    routes = APIRouter(prefix=PREFIX)

    @routes.get("/os-services")
    async def list_services(request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"services": [view(s, nova) for s in service_rows(nova)]})

    @routes.put("/os-services/{ident}")
    async def update_service(ident: str, request: Request) -> JSONResponse:
        """From 2.53 ``PUT /os-services/{uuid}``; before, ``PUT /os-services/enable|disable|...`` by host."""
        nova = shared.at(request)
        args = await nova.body()
        if nova.at_least("2.53"):
            svc = service_by_id(nova, ident)
            update = parse(ServiceUpdate, args)
            return JSONResponse({"service": view(_update(nova, svc, update), nova)})
        legacy = parse(LegacyServiceUpdate, args)
        return JSONResponse({"service": _legacy_action(nova, ident, legacy)})

    @routes.delete("/os-services/{ident}")
    async def delete_service(ident: str, request: Request) -> Response:
        nova = shared.at(request)
        host = service_by_id(nova, ident).host
        nova.run("delete service", lambda: nova.service.delete_service(host))
        return Response(status_code=204)

    return routes
