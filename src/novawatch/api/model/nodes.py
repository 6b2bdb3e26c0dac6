"""``/v1/nodes``: nodes filtered by free capacity, state, status, host or project, sorted, one page at a time;
one node with its instances."""

from __future__ import annotations

import math
import time
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel

from novawatch.api.model.base import MAX_LIMIT, NOT_FOUND, page, respond
from novawatch.api.model.instances import InstanceOut
from novawatch.model.live.state import ModelState, instance_json, node_json
from novawatch.model.live.view import NodeQuery


class NodeOut(BaseModel):
    uuid: str
    host: str
    hypervisor_hostname: str
    state: str
    status: str
    disabled_reason: str | None = None
    vcpus: int
    memory_mb: int
    local_gb: int
    vcpus_used: int
    memory_mb_used: int
    local_gb_used: int
    running_vms: int
    free_vcpus: int
    free_ram_mb: int
    free_disk_gb: int
    reported: dict[str, Any] | None = None


class NodePage(BaseModel):
    seq: int
    total: int
    offset: int
    limit: int
    nodes: list[NodeOut]


class NodeDetail(BaseModel):
    seq: int
    node: NodeOut
    instances: list[InstanceOut]


class NodeSeriesOut(BaseModel):
    seq: int
    host: str
    uuid: str | None
    capacity: dict[str, int] | None
    t: list[float]
    vcpus_used: list[int]
    ram_mb_used: list[int]
    disk_gb_used: list[int]
    state: list[str]
    status: list[str]


class NodeSort(StrEnum):
    host = "host"
    host_desc = "-host"
    free_ram_mb = "free_ram_mb"
    free_ram_mb_desc = "-free_ram_mb"
    free_vcpus = "free_vcpus"
    free_vcpus_desc = "-free_vcpus"
    free_disk_gb = "free_disk_gb"
    free_disk_gb_desc = "-free_disk_gb"
    running_vms = "running_vms"
    running_vms_desc = "-running_vms"



def router(state: ModelState) -> APIRouter:
    """The nodes' routes over ``state``."""
    routes = APIRouter(tags=["nodes"])

    @routes.get("/v1/nodes", response_model=NodePage)
    async def list_nodes(
        min_free_ram_mb: Annotated[int | None, Query(ge=0, description="at least this much free RAM (MB)")] = None,
        min_free_vcpus: Annotated[int | None, Query(ge=0, description="at least this many free vCPUs")] = None,
        min_free_disk_gb: Annotated[int | None, Query(ge=0, description="at least this much free disk (GB)")] = None,
        state_: Annotated[str | None, Query(alias="state", pattern="^(up|down)$")] = None,
        status: Annotated[str | None, Query(pattern="^(enabled|disabled)$")] = None,
        host: Annotated[str | None, Query(max_length=255, description="host name or glob (host-00*)")] = None,
        project: Annotated[str | None, Query(max_length=255, description="nodes hosting this project")] = None,
        fits: Annotated[str | None, Query(pattern=r"^\d{1,9}:\d{1,12}:\d{1,12}$",
                                          description="VCPUS:RAM_MB:DISK_GB free at least (the three minimums)")]
        = None,
        sort: NodeSort = NodeSort.host,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Response:
        """Nodes matching every filter given, sorted (``-`` for descending), one page at a time."""
        if fits is not None:
            cpu, ram, disk = (int(x) for x in fits.split(":"))
            min_free_vcpus = max(cpu, min_free_vcpus or 0)
            min_free_ram_mb = max(ram, min_free_ram_mb or 0)
            min_free_disk_gb = max(disk, min_free_disk_gb or 0)
        q = NodeQuery(
            min_free_ram_mb=min_free_ram_mb, min_free_vcpus=min_free_vcpus, min_free_disk_gb=min_free_disk_gb,
            state=state_, status=status, host=host, project=project, sort=sort.value, limit=limit, offset=offset,
        )
        return page(state.feed.seq, state.view.query_nodes(q), "nodes", node_json, offset, limit)

    @routes.get("/v1/nodes/{ident}", response_model=NodeDetail, responses=NOT_FOUND)
    async def get_node(ident: str) -> Response:
        """One node, by uuid or host name, with its instances."""
        node = state.view.get_node(ident)
        if node is None:
            raise HTTPException(404, f"no node {ident!r} in the model; list them with GET /v1/nodes")
        instances = state.view.instances_on_host(node.host)
        return respond({"seq": state.feed.seq, "node": node_json(node),
                               "instances": [instance_json(i) for i in instances]})

    @routes.get("/v1/nodes/{ident}/series", response_model=NodeSeriesOut, responses=NOT_FOUND)
    async def node_series(
        ident: str,
        since: Annotated[float | None, Query(description="Unix seconds, or negative: seconds ago")] = None,
    ) -> Response:
        """One node's usage, state and status over time: a point at each change (one per step at most)."""
        if since is not None and not math.isfinite(since):
            raise HTTPException(400, "since must be a finite number: Unix seconds, or negative for seconds ago")
        node = state.view.get_node(ident)
        host = node.host if node is not None else ident
        start = None if since is None else (time.time() + since if since < 0 else since)
        points = state.host_series.of(host, start)
        if points is None:
            if node is None:
                raise HTTPException(404, f"no node {ident!r} in the model; list them with GET /v1/nodes")
            points = {"t": [], "vcpus_used": [], "ram_mb_used": [], "disk_gb_used": [], "state": [], "status": []}
        capacity = None if node is None else {"vcpus": node.vcpus, "ram_mb": node.memory_mb,
                                              "disk_gb": node.local_gb}
        return respond({"seq": state.feed.seq, "host": host, "uuid": None if node is None else node.uuid,
                        "capacity": capacity, **points})

    return routes
