"""``/v1/health``: the database answers, the state is loaded, the outbox's backlog."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from novawatch.api.common import json_response
from novawatch.api.compute.base import ComputeAPI


def router(api: ComputeAPI) -> APIRouter:
    """The health route over ``api``."""
    routes = APIRouter(tags=["service"])

    @routes.get("/v1/health", responses={503: {"description": "the database is unavailable"}})
    async def health() -> Response:
        """``ok``; ``degraded`` while the outbox cannot reach the bus; ``failing`` (503) without the database."""
        status, body = api.health()
        return json_response(body, status)

    return routes
