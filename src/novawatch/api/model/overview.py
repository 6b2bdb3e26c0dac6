"""``/v1/summary`` (the cloud at a glance, from totals kept current by the model's changes) and
``/v1/series`` (the overview figures over time, from the samples the service keeps)."""

from __future__ import annotations

import math
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel

from novawatch.api.model.base import respond
from novawatch.model.live.state import ModelState


class SummaryOut(BaseModel):
    seq: int
    at: float
    hosts: dict[str, int]
    instances: int
    capacity: dict[str, dict[str, dict[str, float]]]
    histogram: dict[str, list[int]]
    model: dict[str, Any]
    groups: dict[str, Any]


class SeriesOut(BaseModel):
    seq: int
    step: float
    since: float
    until: float
    t: list[float]
    series: dict[str, list[float | None]]


def router(state: ModelState) -> APIRouter:
    """The overview's routes over ``state``."""
    routes = APIRouter(tags=["overview"])

    @routes.get("/v1/summary", response_model=SummaryOut)
    async def summary() -> Response:
        """Capacity, use and free of vCPU, RAM and disk, hosts by state and status, hosts by utilisation,
        and the model's health figures."""
        return respond(state.summary())

    @routes.get("/v1/series", response_model=SeriesOut,
                responses={400: {"description": "an unknown series name"}})
    async def series(
        name: Annotated[str | None, Query(max_length=1000, description="comma-separated names (default all)")] = None,
        since: Annotated[float | None, Query(description="Unix seconds, or negative: seconds ago (default -3600)")]
        = None,
        until: Annotated[float | None, Query(description="Unix seconds (default now)")] = None,
        step: Annotated[float | None, Query(gt=0, le=86400 * 30, description="seconds per point")] = None,
    ) -> Response:
        """The overview figures over time (columnar: ``t`` and one list per name)."""
        if any(v is not None and not math.isfinite(v) for v in (since, until)):
            raise HTTPException(400, "since and until must be finite numbers: Unix seconds, or negative for "
                                "seconds ago")
        now = time.time()
        start = now - 3600 if since is None else (now + since if since < 0 else since)
        end = now if until is None else until
        if end < start:
            raise HTTPException(400, f"until ({end}) is before since ({start}); give since < until")
        names = [n.strip() for n in name.split(",") if n.strip()] if name else list(state.series.names)
        try:
            body = state.series.query(names, start, end, step)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return respond({"seq": state.feed.seq, **body})

    return routes
