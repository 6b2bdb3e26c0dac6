"""The data model service's HTTP app: queries, the watch stream, health, metrics and the dashboard.

Everything here reads a :class:`~novawatch.api.state.ModelState`; whoever consumes the bus writes it.
List responses carry ``seq``, the change number they reflect, so a client can list and then watch
from ``seq`` without missing or double-counting changes (Kubernetes' list-then-watch).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from enum import StrEnum
from importlib import resources
from typing import Annotated, Any

import msgspec
from fastapi import FastAPI, Header, HTTPException, Query
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from novawatch.api.common import GuardMiddleware, new_app
from novawatch.api.feed import Change, Expired
from novawatch.api.state import ModelState, instance_json, node_json
from novawatch.api.view import InstanceQuery, NodeQuery

MAX_LIMIT = 1000
HEARTBEAT_SECONDS = 15.0

_json = msgspec.json.Encoder()


# --- response schemas (OpenAPI) -----------------------------------------------------------------


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


class NodePage(BaseModel):
    seq: int
    total: int
    offset: int
    limit: int
    nodes: list[NodeOut]


class InstancePage(BaseModel):
    seq: int
    total: int
    offset: int
    limit: int
    instances: list[InstanceOut]


class NodeDetail(BaseModel):
    seq: int
    node: NodeOut
    instances: list[InstanceOut]


class InstanceDetail(BaseModel):
    seq: int
    instance: InstanceOut


class NoteOut(BaseModel):
    seq: int
    event_type: str
    outcome: str
    publisher_id: str | None = None
    message_id: str | None = None
    timestamp: str | None = None
    received_at: str
    instance: str | None = None
    host: str | None = None
    reason: str | None = None


class NotesOut(BaseModel):
    seq: int
    notifications: list[NoteOut]


class GapOut(BaseModel):
    reason: str | None
    age_seconds: float


class RelistOut(BaseModel):
    age_seconds: float
    repaired: int | None


class HealthOut(BaseModel):
    status: str
    problems: list[str]
    seq: int
    nodes: int
    instances: int
    applied: int
    ignored: int
    rejected: int
    future_timestamps: int
    reused_ids: int
    lag_seconds: float | None
    last_applied_age_seconds: float | None
    last_audit_age_seconds: float | None
    drift: int | None
    bootstrapped: bool
    uptime_seconds: float
    source: str | None
    source_error: str | None = None
    bus: str | None
    gaps: int  # times the bus may have lost notifications (a RabbitMQ queue re-created after a broker restart)
    last_gap: GapOut | None
    relists: int  # re-lists of the source that followed a gap
    last_relist: RelistOut | None


class BusOut(BaseModel):
    bus: str | None  # the bus URL, password masked
    queue: str | None  # the queue or stream (or embedded consumer group) the model service reads
    kind: str | None  # classic, quorum, stream, embedded or memory
    position: int | None  # stream offset (embedded: sequence number) up to which everything was applied
    last: int | None  # the newest position the bus holds
    behind: int | None  # notifications not applied yet
    broker: str | None  # host:port of the RabbitMQ node connected to
    note: str | None  # what makes a figure uncertain or missing
    problem: str | None  # what keeps the subscriber from consuming
    applied: int
    gaps: int


class AuditOut(BaseModel):
    drift: int


class ErrorOut(BaseModel):
    error: str


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


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "no such entity"}}
_SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}
}
_PROM: dict[int | str, dict[str, Any]] = {200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}}


def _json_response(body: Any) -> Response:
    # msgspec encodes the records directly, without a pydantic round trip on the hot query path.
    return Response(_json.encode(body), media_type="application/json")


def _page(seq: int, found: tuple[int, list[Any]], key: str, to_json: Callable[[Any], Any], offset: int,
          limit: int) -> Response:
    """A list response: ``seq`` (read before the query), the total of matches and one page of them."""
    total, page = found
    return _json_response({"seq": seq, "total": total, "offset": offset, "limit": limit,
                           key: [to_json(row) for row in page]})


def sse_event(change: Change) -> bytes:
    """One server-sent event: ``id`` is the sequence number, ``event`` the kind, ``data`` the change."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (change.seq, change.kind.encode(), _json.encode(change))


async def watch_events(
    state: ModelState, since: int | None, kinds: set[str] | None, heartbeat: float = HEARTBEAT_SECONDS
) -> AsyncIterator[bytes]:
    """The watch stream: a ``hello`` event with the current seq, then changes; ``reset`` when resuming is
    impossible (the client must re-list, then watch from the ``seq`` it carries)."""
    feed = state.feed
    yield b"retry: 2000\nevent: hello\ndata: %s\n\n" % _json.encode({"seq": feed.seq, "since": since})
    if since is not None and since > feed.seq:
        # A number from the future: this service restarted and counts from zero again.
        yield b"event: reset\ndata: %s\n\n" % _json.encode({"seq": feed.seq, "reason": "restarted"})
        since = feed.seq
    while True:
        try:
            async for change in feed.follow(since, heartbeat=heartbeat):
                if change is None:
                    yield b": keep-alive\n\n"
                    continue
                since = change.seq
                if kinds is None or change.kind in kinds:
                    yield sse_event(change)
            return
        except Expired as exc:
            yield b"event: reset\ndata: %s\n\n" % _json.encode({"seq": exc.current, "reason": str(exc)})
            since = exc.current


def create_model_app(
    state: ModelState,
    *,
    token: str | None = None,
    max_body_bytes: int = 1024 * 1024,
    audit: Callable[[], Awaitable[int]] | None = None,
    lifespan: Any = None,
) -> FastAPI:
    """The model service app over ``state``; ``audit`` runs one audit-and-repair for ``POST /v1/audit``."""
    app = new_app(
        "novawatch model service",
        "A live compute data model kept current by Nova's notifications: queries, a watch "
        "stream of changes (server-sent events, resumable from a sequence number), health and metrics.",
        lifespan,
    )
    app.state.model = state
    # Every endpoint is ``async def``: it runs on the loop that applies notifications, never on a worker
    # thread, so a query never sees the store halfway through a change (the store is not thread-safe).

    @app.get("/v1/nodes", response_model=NodePage, tags=["nodes"])
    async def list_nodes(
        min_free_ram_mb: Annotated[int | None, Query(ge=0, description="at least this much free RAM (MB)")] = None,
        min_free_vcpus: Annotated[int | None, Query(ge=0, description="at least this many free vCPUs")] = None,
        min_free_disk_gb: Annotated[int | None, Query(ge=0, description="at least this much free disk (GB)")] = None,
        state_: Annotated[str | None, Query(alias="state", pattern="^(up|down)$")] = None,
        status: Annotated[str | None, Query(pattern="^(enabled|disabled)$")] = None,
        host: Annotated[str | None, Query(max_length=255, description="host name or glob (host-00*)")] = None,
        project: Annotated[str | None, Query(max_length=255, description="nodes hosting this project")] = None,
        sort: NodeSort = NodeSort.host,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Response:
        """Nodes matching every filter given, sorted (``-`` for descending), one page at a time."""
        q = NodeQuery(
            min_free_ram_mb=min_free_ram_mb, min_free_vcpus=min_free_vcpus, min_free_disk_gb=min_free_disk_gb,
            state=state_, status=status, host=host, project=project, sort=sort.value, limit=limit, offset=offset,
        )
        return _page(state.feed.seq, state.view.query_nodes(q), "nodes", node_json, offset, limit)

    @app.get("/v1/nodes/{ident}", response_model=NodeDetail, responses=_NOT_FOUND, tags=["nodes"])
    async def get_node(ident: str) -> Response:
        """One node, by uuid or host name, with its instances."""
        node = state.view.get_node(ident)
        if node is None:
            raise HTTPException(404, f"no node {ident!r} in the model; list them with GET /v1/nodes")
        instances = state.view.instances_on_host(node.host)
        return _json_response({"seq": state.feed.seq, "node": node_json(node),
                               "instances": [instance_json(i) for i in instances]})

    @app.get("/v1/instances", response_model=InstancePage, tags=["instances"])
    async def list_instances(
        host: Annotated[str | None, Query(max_length=255, description="host name or glob")] = None,
        project: Annotated[str | None, Query(max_length=255)] = None,
        state_: Annotated[str | None, Query(alias="state", max_length=64)] = None,
        power_state: Annotated[str | None, Query(max_length=64)] = None,
        name: Annotated[str | None, Query(max_length=255, description="display name or glob")] = None,
        sort: InstanceSort = InstanceSort.uuid,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Response:
        """Instances matching every filter given."""
        q = InstanceQuery(host=host, project=project, state=state_, power_state=power_state, name=name,
                          sort=sort.value, limit=limit, offset=offset)
        return _page(state.feed.seq, state.view.query_instances(q), "instances", instance_json, offset, limit)

    @app.get("/v1/instances/{uuid}", response_model=InstanceDetail, responses=_NOT_FOUND, tags=["instances"])
    async def get_instance(uuid: str) -> Response:
        inst = state.view.get_instance(uuid)
        if inst is None:
            raise HTTPException(404, f"no instance {uuid!r} in the model; list them with GET /v1/instances")
        return _json_response({"seq": state.feed.seq, "instance": instance_json(inst)})

    @app.get("/v1/notifications", response_model=NotesOut, tags=["stream"])
    async def recent_notifications(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        outcome: Annotated[str | None, Query(pattern="^(applied|ignored|rejected)$")] = None,
    ) -> Response:
        """The most recent notifications the model consumed, newest first."""
        out = []
        for note in reversed(state.recent):
            if outcome is None or note.outcome == outcome:
                out.append(note)
                if len(out) >= limit:
                    break
        return _json_response({"seq": state.feed.seq, "notifications": out})

    @app.get("/v1/watch", tags=["stream"], response_class=StreamingResponse,
             responses=_SSE)
    async def watch(
        since: Annotated[int | None, Query(ge=0, description="resume after this sequence number")] = None,
        kinds: Annotated[str | None, Query(max_length=100, description="node,instance,notification,status")] = None,
        last_event_id: Annotated[str | None, Header(max_length=32)] = None,
    ) -> StreamingResponse:
        """Server-sent events of model changes. Resume with ``Last-Event-ID`` or ``?since=SEQ``."""
        position = since
        # EventSource reconnects to the same URL and adds Last-Event-ID: the header is the newer position.
        if last_event_id:
            if not last_event_id.isdigit():
                raise HTTPException(400, "Last-Event-ID must be a sequence number from an earlier event")
            position = int(last_event_id)
        wanted = None
        if kinds:
            wanted = {k.strip() for k in kinds.split(",") if k.strip()}
            unknown = wanted - {"node", "instance", "notification", "status"}
            if unknown:
                raise HTTPException(400, f"unknown kinds {sorted(unknown)}; use node, instance, notification, status")
        return StreamingResponse(
            watch_events(state, position, wanted),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/v1/health", response_model=HealthOut, tags=["service"])
    async def health() -> Response:
        """Lag behind the stream, the last audit and its drift, counters; status ok | degraded | failing."""
        return _json_response(state.health())

    @app.get("/v1/bus", response_model=BusOut, tags=["service"])
    async def bus() -> Response:
        """Where the consumer stands on the bus: its position, the bus's last position, how far behind."""
        return _json_response(await state.bus_status())

    @app.post("/v1/audit", response_model=AuditOut, tags=["service"],
              responses={409: {"model": ErrorOut, "description": "no source to audit against"}})
    async def run_audit() -> Response:
        """Audit the model against the source now, repairing what drifted."""
        if audit is None:
            raise HTTPException(409, "this model service has no source to audit against; start it with "
                                "model.compute_url set")
        drift = await audit()
        return _json_response({"drift": drift})

    @app.get("/metrics", tags=["service"], response_class=Response,
             responses=_PROM)
    async def metrics() -> Response:
        """Prometheus metrics: notifications by event type and outcome, apply latency, drift, lag."""
        state.health()  # refreshes the gauges
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    static = resources.files("novawatch.api") / "static"

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> HTMLResponse:
        return HTMLResponse((static / "dashboard.html").read_text(encoding="utf-8"))

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    app.add_middleware(GuardMiddleware, token=token, max_body_bytes=max_body_bytes)
    return app
