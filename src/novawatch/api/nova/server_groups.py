"""Server groups (``os-server-groups``): create, list, show, delete.

Microversions: ``policies`` (a one-item list) and an empty ``metadata`` before 2.64, ``policy`` and
``rules`` from 2.64; ``project_id`` and ``user_id`` from 2.13; the ``soft-`` policies from 2.15. The
list is the caller's project's groups, or every project's with ``all_projects``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from novawatch.api.inputs import NovaName
from novawatch.api.nova.context import PREFIX, Nova, NovaRequest
from novawatch.api.nova.faults import NovaError
from novawatch.api.nova.schemas import Body, Positive, parse

Policy = Literal["anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity"]


class Rules(Body):
    max_server_per_host: Positive | None = None


class GroupCreate(Body):
    """2.64 and later."""

    name: NovaName
    policy: Policy
    rules: Rules | None = None


class LegacyGroupCreate(Body):
    """Before 2.64: ``policies``, a list of one policy."""

    name: NovaName
    policies: Annotated[list[Policy], Field(min_length=1, max_length=1)]


def view(group: Any, nova: NovaRequest) -> dict[str, Any]:
    live = nova.service.instances
    body: dict[str, Any] = {"id": group.uuid, "name": group.name}
    if nova.at_least("2.64"):
        rules = dict(group.rules or {})
        if "max_server_per_host" in rules:
            rules["max_server_per_host"] = int(rules["max_server_per_host"])
        body.update(policy=group.policy, rules=rules)
    else:
        body.update(policies=[group.policy], metadata={})
    body["members"] = [m for m in group.members if m in live]
    if nova.at_least("2.13"):
        body.update(project_id=group.project_id, user_id=group.user_id)
    return body


def router(shared: Nova) -> APIRouter:
    """The server groups routes, closures over the app's :class:`Nova`."""
    routes = APIRouter(prefix=PREFIX)

    @routes.get("/os-server-groups")
    async def list_server_groups(request: Request) -> JSONResponse:
        nova = shared.at(request)
        q = nova.query
        groups = nova.service.server_groups(None if "all_projects" in q else nova.project_id)
        offset, limit = q.get("offset", "0"), q.get("limit")
        for name, value in (("offset", offset), ("limit", limit)):
            if value is not None and not value.isdigit():
                raise NovaError(400, f"Invalid input for query parameters {name}. Value: {value}.")
        groups = groups[int(offset):]
        if limit is not None:
            groups = groups[: int(limit)]
        return JSONResponse({"server_groups": [view(g, nova) for g in groups]})

    @routes.get("/os-server-groups/{group_id}")
    async def show_server_group(group_id: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"server_group": view(nova.service.server_group(group_id), nova)})

    @routes.post("/os-server-groups")
    async def create_server_group(request: Request) -> JSONResponse:
        nova = shared.at(request)
        body = await nova.body("server_group")
        rules: dict[str, str] | None
        if nova.at_least("2.64"):
            new = parse(GroupCreate, body, "server_group")
            name, policy = new.name, new.policy
            given = new.rules.max_server_per_host if new.rules is not None else None
            rules = {"max_server_per_host": str(given)} if given is not None else {}
        else:
            old = parse(LegacyGroupCreate, body, "server_group")
            name, policy, rules = old.name, old.policies[0], None
            if policy.startswith("soft-") and not nova.at_least("2.15"):
                raise NovaError(400, f"Invalid input for field/attribute policies. Value: ['{policy}']. "
                                f"'{policy}' is not one of ['anti-affinity', 'affinity'] (soft policies need 2.15)")
        user, project = nova.user_id, nova.project_id
        group = nova.run("create server group", lambda: nova.service.create_server_group(
            name, policy, rules=rules, user_id=user, project_id=project))
        return JSONResponse({"server_group": view(group, nova)})

    @routes.delete("/os-server-groups/{group_id}")
    async def delete_server_group(group_id: str, request: Request) -> Response:
        nova = shared.at(request)
        nova.service.server_group(group_id)
        nova.run("delete server group", lambda: nova.service.delete_server_group(group_id))
        return Response(status_code=204)

    return routes
