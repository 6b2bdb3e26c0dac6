"""Instance actions (``os-instance-actions``): what was done to a server, by whom, and with which result.

Microversions: a deleted server's actions from 2.21; ``updated_at``, ``limit``, ``marker`` and
``changes-since`` from 2.58, ``changes-before`` from 2.66; events with ``host`` and ``hostId`` from 2.62
(an admin's view, so ``traceback`` always), ``details`` from 2.84.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from novawatch.api.nova.context import PREFIX, Nova, NovaRequest
from novawatch.api.nova.faults import NovaError
from novawatch.api.nova.views import changed_between, host_id, paged, primitive_time


def action_view(action: Any, nova: NovaRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"action": action.action, "instance_uuid": action.instance_uuid,
                            "request_id": action.request_id, "user_id": action.user_id,
                            "project_id": action.project_id, "start_time": primitive_time(action.start_time),
                            "message": action.message}
    if nova.at_least("2.58"):
        body["updated_at"] = primitive_time(action.updated_at)
    return body


def event_view(event: Any, project_id: str | None, nova: NovaRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"event": event.event, "start_time": primitive_time(event.start_time),
                            "finish_time": primitive_time(event.finish_time), "result": event.result,
                            "traceback": event.traceback}
    if nova.at_least("2.62"):
        body["host"] = event.host
        body["hostId"] = host_id(project_id, event.host)
    if nova.at_least("2.84"):
        body["details"] = event.details
    return body


def server(nova: NovaRequest, server_id: str) -> Any:
    """The server, deleted ones too from 2.21 (Nova's 404 otherwise)."""
    inst = nova.service.find_instance(server_id, deleted=nova.at_least("2.21"))
    if inst is None:
        raise NovaError(404, f"Instance {server_id} could not be found.")
    return inst


def router(shared: Nova) -> APIRouter:
    """The instance actions routes, closures over the app's :class:`Nova`."""
    routes = APIRouter(prefix=PREFIX)

    @routes.get("/servers/{server_id}/os-instance-actions")
    async def list_instance_actions(server_id: str, request: Request) -> JSONResponse:
        """Newest first (``openstack server event list``)."""
        nova = shared.at(request)
        inst = server(nova, server_id)
        actions = nova.service.instance_actions(inst.uuid)
        if nova.at_least("2.58"):
            actions = changed_between(actions, nova.query, before=nova.at_least("2.66"))
            actions = paged(actions, lambda a: a.request_id, nova.query.get("marker"), nova.query.get("limit"))
        return JSONResponse({"instanceActions": [action_view(a, nova) for a in actions]})

    @routes.get("/servers/{server_id}/os-instance-actions/{request_id}")
    async def show_instance_action(server_id: str, request_id: str, request: Request) -> JSONResponse:
        """One action with its events (``openstack server event show``)."""
        nova = shared.at(request)
        inst = server(nova, server_id)
        action = next((a for a in nova.service.instance_actions(inst.uuid) if a.request_id == request_id), None)
        if action is None:
            raise NovaError(404, f"Action {request_id} not found")
        body = action_view(action, nova)
        body["events"] = [event_view(e, action.project_id or inst.project_id, nova)
                          for e in nova.service.action_events(action.id)]
        return JSONResponse({"instanceAction": body})

    return routes
