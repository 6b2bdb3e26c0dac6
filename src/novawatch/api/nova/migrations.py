"""Migrations (``os-migrations``): every resize, cold and live migration and evacuation, newest first.

Filters: ``host`` (source or destination), ``source_compute``, ``status``, ``instance_uuid``,
``migration_type``; from 2.59 ``limit``, ``marker`` (a uuid) and ``changes-since``, from 2.66
``changes-before``, from 2.80 ``user_id`` and ``project_id``. Microversions add ``migration_type`` and
links to an in-progress live migration (2.23), ``uuid`` (2.59), ``user_id`` and ``project_id`` (2.80).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from novawatch.api.nova.context import PREFIX, Nova, NovaRequest
from novawatch.api.nova.views import changed_between, paged, primitive_time

_LIVE_IN_PROGRESS = ("queued", "preparing", "running", "post-migrating")


def view(mig: Any, nova: NovaRequest) -> dict[str, Any]:
    node = nova.service.nodes.get(mig.dest_compute or "")
    body: dict[str, Any] = {
        "id": mig.id, "instance_uuid": mig.instance_uuid, "status": mig.status,
        "source_compute": mig.source_compute, "source_node": mig.source_node, "dest_compute": mig.dest_compute,
        "dest_node": mig.dest_node, "dest_host": node.host_ip if node is not None else None,
        "old_instance_type_id": mig.old_instance_type_id, "new_instance_type_id": mig.new_instance_type_id,
        "created_at": primitive_time(mig.created_at), "updated_at": primitive_time(mig.updated_at),
    }
    if nova.at_least("2.23"):
        body["migration_type"] = mig.migration_type
        if mig.migration_type == "live-migration" and mig.status in _LIVE_IN_PROGRESS:
            path = f"servers/{mig.instance_uuid}/migrations/{mig.id}"
            body["links"] = [{"rel": "self", "href": f"{nova.base}v2.1/{path}"},
                             {"rel": "bookmark", "href": f"{nova.base}{path}"}]
    if nova.at_least("2.59"):
        body["uuid"] = mig.uuid
    if nova.at_least("2.80"):
        body.update(user_id=mig.user_id, project_id=mig.project_id)
    return body


def _filtered(nova: NovaRequest) -> list[Any]:
    q = nova.query
    where = {column: q[column] for column in ("instance_uuid", "source_compute", "migration_type")
             if q.get(column)}
    if nova.at_least("2.80"):
        where.update({column: q[column] for column in ("user_id", "project_id") if q.get(column)})
    rows: list[Any] = nova.service.migration_records(**where)
    if q.get("host"):
        rows = [m for m in rows if q["host"] in (m.source_compute, m.dest_compute)]
    statuses = set(q.getlist("status"))
    if statuses:
        rows = [m for m in rows if m.status in statuses]
    if nova.at_least("2.59"):
        rows = changed_between(rows, q, before=nova.at_least("2.66"))
        rows = paged(rows, lambda m: m.uuid, q.get("marker"), q.get("limit"))
    return rows


def router(shared: Nova) -> APIRouter:
    """The migrations routes, closures over the app's :class:`Nova`."""
    routes = APIRouter(prefix=PREFIX)

    @routes.get("/os-migrations")
    async def list_migrations(request: Request) -> JSONResponse:
        """``openstack server migration list``."""
        nova = shared.at(request)
        return JSONResponse({"migrations": [view(m, nova) for m in _filtered(nova)]})

    return routes
