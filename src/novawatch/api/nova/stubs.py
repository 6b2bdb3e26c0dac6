"""Just enough Image (Glance v2), Identity (Keystone v3) and Network (Neutron v2.0) API for the ``openstack``
CLI's compute commands.

``openstack server show`` looks the server's image up in Glance, ``server create --image`` finds the
image there, ``server list`` insists on an Identity v3 endpoint, ``quota show PROJECT`` or ``usage
list`` look projects up in it, and ``quota show`` and ``availability zone list`` ask the network service
too. novawatch has none of these services: this fake Glance knows every image id it is asked about
(images are opaque to the fake hypervisor) and lists one image, ``cirros``; the fake Keystone answers
version discovery and lists the projects the compute service knows; the fake Neutron answers quotas
(all -1) and availability zones (none).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from novawatch.api.nova.context import DEFAULT_PROJECT, Nova, NovaRequest

IMAGE_PREFIX = "/image"
IDENTITY_PREFIX = "/identity"
NETWORK_PREFIX = "/network"
#: The image the compute service boots by default, listed by the fake Glance.
DEFAULT_IMAGE = "155d900f-4e14-4e4c-a73d-069cbf4541e6"
#: Its name, as the compute service's notifications give it (``ImageMetaPayload.name``).
DEFAULT_IMAGE_NAME = "cirros"
#: The name the fake Keystone gives the default project.
DEFAULT_PROJECT_NAME = "novawatch"


def _base(request: Request) -> str:
    return str(request.base_url)


# --- Glance ----------------------------------------------------------------------------------------------


def image_doc(image_id: str) -> dict[str, Any]:
    """A Glance v2 image record (every id exists: the fake hypervisor never reads an image)."""
    name = DEFAULT_IMAGE_NAME if image_id == DEFAULT_IMAGE else f"image-{image_id[:8]}"
    return {"id": image_id, "name": name, "status": "active", "visibility": "public", "protected": False,
            "container_format": "bare", "disk_format": "qcow2", "size": 21430272, "virtual_size": None,
            "min_disk": 0, "min_ram": 0, "tags": [], "owner": None, "checksum": None, "os_hidden": False,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "self": f"/v2/images/{image_id}", "file": f"/v2/images/{image_id}/file", "schema": "/v2/schemas/image"}


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


# --- Keystone ----------------------------------------------------------------------------------------------


def _identity_version(request: Request) -> dict[str, Any]:
    return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{_base(request)}identity/v3/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}


def project_doc(project_id: str, nova: NovaRequest) -> dict[str, Any]:
    """A Keystone v3 project: the default project is called ``novawatch``, the others by their id."""
    name = DEFAULT_PROJECT_NAME if project_id == DEFAULT_PROJECT else project_id
    return {"id": project_id, "name": name, "domain_id": "default", "enabled": True, "is_domain": False,
            "parent_id": "default", "description": "", "tags": [], "options": {},
            "links": {"self": f"{nova.base}identity/v3/projects/{project_id}"}}


def known_projects(nova: NovaRequest) -> list[str]:
    """The default project and every project that owns something in the compute service."""
    return sorted({DEFAULT_PROJECT, *nova.service.project_ids()})


# --- Neutron ----------------------------------------------------------------------------------------------

_NETWORK_QUOTAS = ("network", "subnet", "subnetpool", "port", "router", "floatingip", "security_group",
                   "security_group_rule", "rbac_policy")


def router(shared: Nova) -> APIRouter:
    """The stubs routes, closures over the app's :class:`Nova`."""
    routes = APIRouter()

    @routes.get(IMAGE_PREFIX)
    @routes.get(IMAGE_PREFIX + "/")
    async def image_versions(request: Request) -> JSONResponse:
        return JSONResponse({"versions": [{"id": "v2.16", "status": "CURRENT",
                                           "links": [{"rel": "self", "href": f"{_base(request)}image/v2/"}]}]},
                            status_code=300)

    @routes.get(IMAGE_PREFIX + "/v2/images")
    async def list_images(request: Request) -> JSONResponse:
        q = request.query_params
        images = [image_doc(DEFAULT_IMAGE)]
        wanted = q.get("name") or q.get("id")
        if wanted and wanted not in (DEFAULT_IMAGE, DEFAULT_IMAGE_NAME):
            # A name we do not know: an id-like name is an image too (clients look ids up by name first).
            images = [image_doc(wanted)] if len(wanted) == 36 and _is_uuid(wanted) else []
        return JSONResponse({"images": images, "schema": "/v2/schemas/images", "first": "/v2/images"})

    @routes.get(IMAGE_PREFIX + "/v2/images/{image_id}")
    async def show_image(image_id: str) -> JSONResponse:
        if not _is_uuid(image_id):
            # As Glance: only an id names an image here (the client then looks for it by name), and Nova
            # would refuse any other imageRef.
            return JSONResponse({"code": "404 Not Found", "title": "Not Found",
                                 "message": f"No image found with ID {image_id}"}, status_code=404)
        return JSONResponse(image_doc(image_id))

    @routes.get(IDENTITY_PREFIX)
    @routes.get(IDENTITY_PREFIX + "/")
    async def identity_versions(request: Request) -> JSONResponse:
        return JSONResponse({"versions": {"values": [_identity_version(request)]}}, status_code=300)

    @routes.get(IDENTITY_PREFIX + "/v3")
    @routes.get(IDENTITY_PREFIX + "/v3/")
    async def identity_v3(request: Request) -> JSONResponse:
        return JSONResponse({"version": _identity_version(request)})

    @routes.get(IDENTITY_PREFIX + "/v3/projects")
    async def list_projects(request: Request) -> JSONResponse:
        nova = shared.at(request)
        projects = [project_doc(p, nova) for p in known_projects(nova)]
        name = nova.query.get("name")
        if name is not None:
            projects = [p for p in projects if p["name"] == name]
        return JSONResponse({"projects": projects, "links": {"self": f"{nova.base}identity/v3/projects",
                                                             "next": None, "previous": None}})

    @routes.get(IDENTITY_PREFIX + "/v3/projects/{project_id}")
    async def show_project(project_id: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        if project_id not in known_projects(nova):
            return JSONResponse({"error": {"code": 404, "title": "Not Found",
                                           "message": f"Could not find project: {project_id}."}}, status_code=404)
        return JSONResponse({"project": project_doc(project_id, nova)})

    @routes.get(NETWORK_PREFIX)
    @routes.get(NETWORK_PREFIX + "/")
    async def network_versions(request: Request) -> JSONResponse:
        return JSONResponse({"versions": [{"id": "v2.0", "status": "CURRENT",
                                           "links": [{"rel": "self", "href": f"{_base(request)}network/v2.0/"}]}]})

    @routes.get(NETWORK_PREFIX + "/v2.0/quotas/{project_id}")
    async def network_quotas(project_id: str) -> JSONResponse:
        """No network quotas: every one is -1 (unlimited)."""
        return JSONResponse({"quota": dict.fromkeys(_NETWORK_QUOTAS, -1)})

    @routes.get(NETWORK_PREFIX + "/v2.0/quotas/{project_id}/details")
    @routes.get(NETWORK_PREFIX + "/v2.0/quotas/{project_id}/details.json")
    async def network_quota_usage(project_id: str) -> JSONResponse:
        return JSONResponse({"quota": {k: {"limit": -1, "used": 0, "reserved": 0} for k in _NETWORK_QUOTAS}})

    @routes.get(NETWORK_PREFIX + "/v2.0/availability_zones")
    async def network_zones() -> JSONResponse:
        return JSONResponse({"availability_zones": []})

    return routes
