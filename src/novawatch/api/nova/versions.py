"""Version discovery: ``GET /`` and ``GET /v2.1``, the one version served and its microversion range."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from novawatch.api.nova.context import PREFIX, Ctx
from novawatch.api.nova.microversion import MAX_VERSION, MIN_VERSION

router = APIRouter()


def version_document(base: str) -> dict[str, Any]:
    """The v2.1 entry of version discovery; ``base`` ends with ``/``."""
    return {"id": "v2.1", "status": "CURRENT", "version": MAX_VERSION, "min_version": MIN_VERSION,
            "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{base}v2.1/"},
                      {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}


@router.get("/")
async def versions(nova: Ctx) -> JSONResponse:
    """Every version served (only v2.1)."""
    return JSONResponse({"versions": [version_document(nova.base)]})


@router.get(PREFIX)
@router.get(PREFIX + "/")
async def version_v21(nova: Ctx) -> JSONResponse:
    """The v2.1 version document."""
    return JSONResponse({"version": version_document(nova.base)})
