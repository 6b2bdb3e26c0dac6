"""The Nova-compatible Compute API v2.1 app: one router per resource, behind :class:`NovaGuard`.

What openstacksdk and the ``openstack`` CLI call for the compute service's actions (see
``docs/openstack.md``). Errors use Nova's fault bodies. Like novawatch's own compute app, every
endpoint runs on the event loop and calls the compute service synchronously: that serialises the two
APIs' actions on one service.

Authentication: none when no token is configured (local use); otherwise every request except version
discovery needs ``X-Auth-Token: <token>`` (or ``Authorization: Bearer <token>``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from novawatch.api.common import Receive, Scope, Send
from novawatch.api.nova import (
    availability_zones,
    block_storage,
    faults,
    flavors,
    hypervisors,
    instance_actions,
    interfaces,
    keypairs,
    migrations,
    quotas,
    server_actions,
    server_groups,
    server_metadata,
    servers,
    services,
    stubs,
    usage,
    versions,
    volume_attachments,
)
from novawatch.api.nova.context import PREFIX, Nova
from novawatch.api.nova.guard import NovaGuard
from novawatch.api.nova.stubs import IDENTITY_PREFIX, IMAGE_PREFIX, NETWORK_PREFIX

#: Each resource module's ``router(nova) -> APIRouter``, in the order their routes are matched (a fixed path
#: before a parameter in the same place).
ROUTERS = (versions.router, servers.router, server_actions.router, server_metadata.router, volume_attachments.router,
           interfaces.router, instance_actions.router, flavors.router, hypervisors.router, services.router,
           keypairs.router, server_groups.router, migrations.router, quotas.router, usage.router,
           availability_zones.router, block_storage.router, stubs.router)

_DISCOVERY_PATHS = frozenset({"/", PREFIX, PREFIX + "/", IMAGE_PREFIX, IMAGE_PREFIX + "/", IDENTITY_PREFIX,
                              IDENTITY_PREFIX + "/", IDENTITY_PREFIX + "/v3", IDENTITY_PREFIX + "/v3/",
                              NETWORK_PREFIX, NETWORK_PREFIX + "/", *block_storage.DISCOVERY_PATHS})
#: Path prefixes the Nova app serves when mounted beside novawatch's own API.
SERVED_PREFIXES = (PREFIX, IMAGE_PREFIX, IDENTITY_PREFIX, NETWORK_PREFIX, block_storage.VOLUME_PREFIX)

ASGIApp = Callable[[Scope, Receive, Send], Any]


def create_nova_app(service: Any, *, token: str | None = None, max_body_bytes: int = 1024 * 1024) -> Any:
    """The Nova-compatible API (an ASGI app) over a running compute service."""
    app = FastAPI(title="novawatch Nova-compatible compute API", docs_url=None, redoc_url=None, openapi_url=None)
    nova = Nova(service)
    faults.install(app)
    for router in ROUTERS:
        app.include_router(router(nova))
    return NovaGuard(app, token=token, max_body_bytes=max_body_bytes, unavailable=nova.api.unavailable,
                     open_paths=_DISCOVERY_PATHS)


class NovaDispatch:
    """Sends ``/``, ``/v2.1/...`` (and the ``/image``, ``/identity`` stubs) to the Nova app, the rest to ``app``."""

    def __init__(self, app: ASGIApp, *, nova: ASGIApp) -> None:
        self.app = app
        self.nova = nova

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            if path == "/" or any(path == p or path.startswith(p + "/") for p in SERVED_PREFIXES):
                await self.nova(scope, receive, send)
                return
        await self.app(scope, receive, send)


def mount_nova(app: FastAPI, service: Any, *, token: str | None = None, max_body_bytes: int = 1024 * 1024) -> FastAPI:
    """Serve the Nova API beside ``app`` (novawatch's compute app) on the same port; returns ``app``.

    Call before the app starts serving. The Nova paths get their own authentication (``X-Auth-Token``),
    so novawatch's bearer-token guard does not stand in front of them.
    """
    app.add_middleware(NovaDispatch, nova=create_nova_app(service, token=token, max_body_bytes=max_body_bytes))
    return app
