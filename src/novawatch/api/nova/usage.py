"""Usage (``os-simple-tenant-usage``): per project, the hours, vCPU-hours, MB-hours and GB-hours its servers ran.

As Nova counts them: a server counts from its launch (or the period's start) to its termination (or
the period's end, never later than now), deleted servers included; ``detailed=1`` lists each server.
Times are the compute service's clock, in UTC. ``limit`` and ``marker`` (a server id) from 2.40.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from novawatch.api.nova.context import PREFIX, Nova, NovaRequest
from novawatch.api.nova.faults import NovaError
from novawatch.api.nova.views import paged, primitive_time

_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def _time(text: str | None, now: datetime) -> datetime:
    if not text:
        return now
    for fmt in _FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise NovaError(400, f"Invalid datetime string: {text} (use YYYY-MM-DDTHH:MM:SS[.ffffff])")


def period(nova: NovaRequest) -> tuple[datetime, datetime]:
    """The ``start`` and ``end`` of the query (now when absent), the end no later than now."""
    now = nova.service.now()
    start, stop = _time(nova.query.get("start"), now), _time(nova.query.get("end"), now)
    if not start < stop:
        raise NovaError(400, "Invalid start time. The start time cannot occur after the end time.")
    return start, min(stop, now)


def _hours(inst: Any, start: datetime, stop: datetime) -> float:
    launched: datetime | None = inst.launched_at
    terminated: datetime | None = inst.terminated_at
    if launched is None or (terminated is not None and terminated < start) or launched > stop:
        return 0.0
    end = min(stop, terminated) if terminated is not None else stop
    # Never negative: a period that starts after the service's clock counts nothing.
    return max((end - max(launched, start)).total_seconds() / 3600.0, 0.0)


def usages(nova: NovaRequest, start: datetime, stop: datetime, project_id: str | None,
           detailed: bool) -> tuple[list[dict[str, Any]], list[Any]]:
    """(one summary per project, the servers counted) over the period."""
    service = nova.service
    rows = service.instances_in_window(start, stop, project_id)
    if nova.at_least("2.40"):
        rows = paged(rows, lambda i: i.uuid, nova.query.get("marker"), nova.query.get("limit"))
    now = service.now()
    summaries: dict[str, dict[str, Any]] = {}
    for inst in rows:
        flavor = service.flavors.get(inst.instance_type_id)
        hours = _hours(inst, start, stop)
        local_gb = (flavor.root_gb + flavor.ephemeral_gb) if flavor is not None else inst.root_gb + inst.ephemeral_gb
        vcpus = flavor.vcpus if flavor is not None else inst.vcpus
        memory_mb = flavor.memory_mb if flavor is not None else inst.memory_mb
        ended = inst.terminated_at
        state = "terminated" if ended is not None else inst.vm_state
        uptime = (ended if ended is not None else now) - inst.launched_at
        summary = summaries.setdefault(inst.project_id, {
            "tenant_id": inst.project_id, **({"server_usages": []} if detailed else {}),
            "total_local_gb_usage": 0.0, "total_vcpus_usage": 0.0, "total_memory_mb_usage": 0.0, "total_hours": 0.0,
            "start": primitive_time(start), "stop": primitive_time(stop)})
        summary["total_local_gb_usage"] += local_gb * hours
        summary["total_vcpus_usage"] += vcpus * hours
        summary["total_memory_mb_usage"] += memory_mb * hours
        summary["total_hours"] += hours
        if detailed:
            summary["server_usages"].append({
                "instance_id": inst.uuid, "name": inst.display_name, "tenant_id": inst.project_id,
                "flavor": flavor.name if flavor is not None else "", "hours": hours, "memory_mb": memory_mb,
                "local_gb": local_gb, "vcpus": vcpus, "started_at": primitive_time(inst.launched_at),
                "ended_at": primitive_time(ended), "state": state,
                "uptime": int(uptime // timedelta(seconds=1))})
    return list(summaries.values()), rows


def router(shared: Nova) -> APIRouter:
    """The usage routes, closures over the app's :class:`Nova`."""
    routes = APIRouter(prefix=PREFIX)

    @routes.get("/os-simple-tenant-usage")
    async def list_usage(request: Request) -> JSONResponse:
        """Every project's usage (``openstack usage list``); Nova lists servers only with ``detailed=1``."""
        nova = shared.at(request)
        start, stop = period(nova)
        found, _ = usages(nova, start, stop, None, nova.query.get("detailed") == "1")
        return JSONResponse({"tenant_usages": found})

    @routes.get("/os-simple-tenant-usage/{project_id}")
    async def show_usage(project_id: str, request: Request) -> JSONResponse:
        """One project's usage with its servers (``openstack usage show --project``)."""
        nova = shared.at(request)
        start, stop = period(nova)
        found, _ = usages(nova, start, stop, project_id, True)
        return JSONResponse({"tenant_usage": found[0] if found else {}})

    return routes
