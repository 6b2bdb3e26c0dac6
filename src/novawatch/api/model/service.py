"""``/v1/health``, ``POST /v1/audit`` and ``/metrics``: the model service's own state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from novawatch.api.model.base import ErrorOut, respond
from novawatch.model.live.state import ModelState


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


PROM: dict[int | str, dict[str, Any]] = {200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}}


def router(state: ModelState, audit: Callable[[], Awaitable[int]] | None) -> APIRouter:
    """The service's routes over ``state``; ``audit`` runs one audit-and-repair (None: no source)."""
    routes = APIRouter(tags=["service"])

    @routes.get("/v1/health", response_model=HealthOut)
    async def health() -> Response:
        """Lag behind the stream, the last audit and its drift, counters; status ok | degraded | failing."""
        return respond(state.health())

    @routes.get("/v1/bus", response_model=BusOut)
    async def bus() -> Response:
        """Where the consumer stands on the bus: its position, the bus's last position, how far behind."""
        return respond(await state.bus_status())

    @routes.post("/v1/audit", response_model=AuditOut,
              responses={409: {"model": ErrorOut, "description": "no source to audit against"}})
    async def run_audit() -> Response:
        """Audit the model against the source now, repairing what drifted."""
        if audit is None:
            raise HTTPException(409, "this model service has no source to audit against; start it with "
                                "model.compute_url set")
        drift = await audit()
        return respond({"drift": drift})

    @routes.get("/metrics", response_class=Response,
             responses=PROM)
    async def metrics() -> Response:
        """Prometheus metrics: notifications by event type and outcome, apply latency, drift, lag."""
        state.health()  # refreshes the gauges
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return routes
