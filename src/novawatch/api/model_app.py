"""The data model service's HTTP app: its routers by resource (queries, the watch stream, health, metrics,
the dashboard) and the guard.

Everything here reads a :class:`~novawatch.model.live.state.ModelState`; the live model
(:mod:`novawatch.model.live`) writes it. List responses carry ``seq``, the change number they reflect, so a
client can list and then watch from ``seq`` without missing or double-counting changes (Kubernetes'
list-then-watch).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from novawatch.api.common import GuardMiddleware, new_app
from novawatch.api.model import dashboard, instances, nodes, overview, service, stream
from novawatch.model.live.state import ModelState


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
    for routes in (overview.router(state), nodes.router(state), instances.router(state), stream.router(state),
                   service.router(state, audit), dashboard.router()):
        app.include_router(routes)
    dashboard.mount_static(app)
    app.add_middleware(GuardMiddleware, token=token, max_body_bytes=max_body_bytes)
    return app
