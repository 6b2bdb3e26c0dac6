"""Version discovery: ``GET /`` and ``GET /v2.1``, the one version served and its microversion range."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from novawatch.api.nova.context import PREFIX, Nova
from novawatch.api.nova.microversion import MAX_VERSION, MIN_VERSION


def version_document(base: str) -> dict[str, Any]:
    """The v2.1 entry of version discovery; ``base`` ends with ``/``."""
    return {"id": "v2.1", "status": "CURRENT", "version": MAX_VERSION, "min_version": MIN_VERSION,
            "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{base}v2.1/"},
                      {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}


def router(shared: Nova) -> APIRouter:
    """The versions routes, closures over the app's :class:`Nova`."""
    routes = APIRouter()

    @routes.get("/")
    async def versions(request: Request) -> JSONResponse:
        """Every version served (only v2.1)."""
        nova = shared.at(request)
        return JSONResponse({"versions": [version_document(nova.base)]})

    @routes.get(PREFIX)
    @routes.get(PREFIX + "/")
    async def version_v21(request: Request) -> JSONResponse:
        """The v2.1 version document."""
        nova = shared.at(request)
        return JSONResponse({"version": version_document(nova.base)})

    return routes
