"""Just enough Image (Glance v2) and Identity (Keystone v3) API for the ``openstack`` CLI's compute commands.

``openstack server show`` looks the server's image up in Glance, ``server create --image`` finds the
image there, and ``server list`` insists on an Identity v3 endpoint. novawatch has no image or identity
service: this fake Glance knows every image id it is asked about (images are opaque to the fake
hypervisor), and the fake Keystone answers version discovery only.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

IMAGE_PREFIX = "/image"
IDENTITY_PREFIX = "/identity"
#: The image the compute service boots by default, listed by the fake Glance.
DEFAULT_IMAGE = "155d900f-4e14-4e4c-a73d-069cbf4541e6"
DEFAULT_IMAGE_NAME = "cirros-0.6.2-x86_64-disk"


def image_doc(image_id: str, base: str) -> dict[str, Any]:
    """A Glance v2 image record (every id exists: the fake hypervisor never reads an image)."""
    name = DEFAULT_IMAGE_NAME if image_id == DEFAULT_IMAGE else f"image-{image_id[:8]}"
    return {"id": image_id, "name": name, "status": "active", "visibility": "public", "protected": False,
            "container_format": "bare", "disk_format": "qcow2", "size": 21430272, "virtual_size": None,
            "min_disk": 0, "min_ram": 0, "tags": [], "owner": None, "checksum": None, "os_hidden": False,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "self": f"/v2/images/{image_id}", "file": f"/v2/images/{image_id}/file", "schema": "/v2/schemas/image"}


def add_stub_routes(app: FastAPI) -> None:
    """The fake Glance under ``/image`` and the fake Keystone discovery under ``/identity``."""

    def base(request: Request) -> str:
        return str(request.base_url)

    @app.get(IMAGE_PREFIX)
    @app.get(IMAGE_PREFIX + "/")
    async def image_versions(request: Request) -> JSONResponse:
        return JSONResponse({"versions": [{"id": "v2.16", "status": "CURRENT",
                                           "links": [{"rel": "self", "href": f"{base(request)}image/v2/"}]}]},
                            status_code=300)

    @app.get(IMAGE_PREFIX + "/v2/images")
    async def list_images(request: Request) -> JSONResponse:
        q = request.query_params
        images = [image_doc(DEFAULT_IMAGE, base(request))]
        wanted = q.get("name") or q.get("id")
        if wanted and wanted not in (DEFAULT_IMAGE, DEFAULT_IMAGE_NAME):
            # A name we do not know: an id-like name is an image too (clients look ids up by name first).
            images = [image_doc(wanted, base(request))] if len(wanted) == 36 and wanted.count("-") == 4 else []
        return JSONResponse({"images": images, "schema": "/v2/schemas/images", "first": "/v2/images"})

    @app.get(IMAGE_PREFIX + "/v2/images/{image_id}")
    async def show_image(image_id: str, request: Request) -> JSONResponse:
        if image_id == DEFAULT_IMAGE_NAME:
            image_id = DEFAULT_IMAGE
        try:
            uuid.UUID(image_id)
        except ValueError:
            # As Glance: only an id names an image here (the client then looks for it by name), and Nova
            # would refuse any other imageRef.
            return JSONResponse({"code": "404 Not Found", "title": "Not Found",
                                 "message": f"No image found with ID {image_id}"}, status_code=404)
        return JSONResponse(image_doc(image_id, base(request)))

    def identity_version(request: Request) -> dict[str, Any]:
        return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                "links": [{"rel": "self", "href": f"{base(request)}identity/v3/"}],
                "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}

    @app.get(IDENTITY_PREFIX)
    @app.get(IDENTITY_PREFIX + "/")
    async def identity_versions(request: Request) -> JSONResponse:
        return JSONResponse({"versions": {"values": [identity_version(request)]}}, status_code=300)

    @app.get(IDENTITY_PREFIX + "/v3")
    @app.get(IDENTITY_PREFIX + "/v3/")
    async def identity_v3(request: Request) -> JSONResponse:
        return JSONResponse({"version": identity_version(request)})
