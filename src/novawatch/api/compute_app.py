"""The compute service's HTTP app: its routers by resource, the error table, the guard.

Every action runs on the app's event loop, one at a time: the compute service is one object over one
database session, and serialising its calls is what keeps it consistent. An action is committed
before its response is sent. ``GET /v1/snapshot`` is the truth in the snapshot contract's form: the
model service bootstraps and audits from it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from novawatch.api import errors as error_table
from novawatch.api.common import GuardMiddleware, json_response, new_app
from novawatch.api.compute import actions, flavors, health, instances, services, source, volumes
from novawatch.api.compute.base import ComputeAPI

__all__ = ["ComputeAPI", "create_compute_app"]

#: The routers, in the order the OpenAPI document lists them.
ROUTERS = (services, flavors, volumes, instances, actions, source, health)


def create_compute_app(
    service: Any,
    *,
    token: str | None = None,
    max_body_bytes: int = 1024 * 1024,
    lifespan: Any = None,
) -> FastAPI:
    """The compute service app over a running :class:`~novawatch.compute.service.ComputeService`."""
    api = ComputeAPI(service)
    app = new_app(
        "novawatch compute service",
        "A Nova-like compute service with a fake hypervisor: every action emits the versioned "
        "(and legacy) notifications Nova emits. Writes need a bearer token when the service is not on loopback.",
        lifespan,
    )
    app.state.compute = api
    for module in ROUTERS:
        app.include_router(module.router(api))
    error_table.install(app, lambda status, message: json_response({"error": message}, status))
    app.add_middleware(GuardMiddleware, token=token, max_body_bytes=max_body_bytes, unavailable=api.unavailable,
                       open_paths=frozenset({"/v1/health"}))
    return app
