"""``/v1/instances``: instances filtered by host, project, state, power state or name; one instance."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel

from novawatch.api.model.base import MAX_LIMIT, NOT_FOUND, page, respond
from novawatch.model.live.state import ModelState, instance_json
from novawatch.model.live.view import InstanceQuery


class InstanceOut(BaseModel):
    uuid: str
    host: str | None
    node: str | None
    project_id: str
    display_name: str
    state: str
    power_state: str
    task_state: str | None = None
    locked: bool
    vcpus: int
    memory_mb: int
    disk_gb: int
    volumes: list[str]


class InstancePage(BaseModel):
    seq: int
    total: int
    offset: int
    limit: int
    instances: list[InstanceOut]


class InstanceDetail(BaseModel):
    seq: int
    instance: InstanceOut


class HistoryEntryOut(BaseModel):
    seq: int
    at: float
    cause: str
    event_type: str | None = None
    message_id: str | None = None
    timestamp: str | None = None
    op: str
    changes: dict[str, list[Any]]


class HistoryOut(BaseModel):
    seq: int
    uuid: str
    exists: bool
    truncated: bool
    history: list[HistoryEntryOut]


class InstanceSort(StrEnum):
    uuid = "uuid"
    display_name = "display_name"
    display_name_desc = "-display_name"
    host = "host"
    host_desc = "-host"
    memory_mb = "memory_mb"
    memory_mb_desc = "-memory_mb"
    vcpus = "vcpus"
    vcpus_desc = "-vcpus"



def router(state: ModelState) -> APIRouter:
    """The instances' routes over ``state``."""
    routes = APIRouter(tags=["instances"])

    @routes.get("/v1/instances", response_model=InstancePage)
    async def list_instances(
        host: Annotated[str | None, Query(max_length=255, description="host name or glob")] = None,
        project: Annotated[str | None, Query(max_length=255)] = None,
        state_: Annotated[str | None, Query(alias="state", max_length=64)] = None,
        power_state: Annotated[str | None, Query(max_length=64)] = None,
        name: Annotated[str | None, Query(max_length=255, description="display name or glob")] = None,
        q: Annotated[str | None, Query(min_length=1, max_length=255, description="search: uuid prefix, part of "
                                       "the name, or a project id, host or state")] = None,
        sort: InstanceSort = InstanceSort.uuid,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Response:
        """Instances matching every filter given."""
        query = InstanceQuery(host=host, project=project, state=state_, power_state=power_state, name=name, q=q,
                              sort=sort.value, limit=limit, offset=offset)
        return page(state.feed.seq, state.view.query_instances(query), "instances", instance_json, offset, limit)

    @routes.get("/v1/instances/{uuid}", response_model=InstanceDetail, responses=NOT_FOUND)
    async def get_instance(uuid: str) -> Response:
        inst = state.view.get_instance(uuid)
        if inst is None:
            raise HTTPException(404, f"no instance {uuid!r} in the model; list them with GET /v1/instances")
        return respond({"seq": state.feed.seq, "instance": instance_json(inst)})

    @routes.get("/v1/instances/{uuid}/history", response_model=HistoryOut, responses=NOT_FOUND)
    async def instance_history(uuid: str) -> Response:
        """What changed the instance, oldest first: each notification (or audit, lookup) and the fields it
        changed as ``[old, new]``; kept for a while after the instance is deleted."""
        kept = state.history.of(uuid)
        exists = state.view.get_instance(uuid) is not None
        if kept is None and not exists:
            raise HTTPException(404, f"no instance {uuid!r} in the model and no history of it; search with "
                                "GET /v1/instances?q=...")
        entries, truncated = kept if kept is not None else ([], False)
        return respond({"seq": state.feed.seq, "uuid": uuid, "exists": exists, "truncated": truncated,
                        "history": entries})

    return routes
