"""A minimal Cinder-compatible Block Storage API v3 under ``/volume``, over the compute service's volumes.

``openstack server add volume SERVER VOLUME`` finds the volume through the block storage service, and
``openstack volume create`` makes one: the compute service keeps volumes (its fake Cinder), and this
serves them. Version discovery, volumes (list, detail, show, create, delete) and limits; no volume
types, snapshots, backups or microversions beyond 3.0. Creating or deleting a volume sends no
notification (Cinder's ``volume.*`` are Cinder's, not Nova's). Errors use the same fault bodies as Nova.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from novawatch.api.inputs import Printable
from novawatch.api.nova.context import Nova, NovaRequest
from novawatch.api.nova.faults import NovaError
from novawatch.api.nova.schemas import Body, Positive, parse
from novawatch.api.nova.views import paged, primitive_time

VOLUME_PREFIX = "/volume"
V3 = VOLUME_PREFIX + "/v3"
#: Paths served without a token: version discovery.
DISCOVERY_PATHS = frozenset({VOLUME_PREFIX, VOLUME_PREFIX + "/", V3, V3 + "/"})
#: The largest volume novawatch makes (GB), as the compute service's own API allows.
MAX_SIZE_GB = 100000


class VolumeCreate(Body):
    size: Annotated[Positive, Field(le=MAX_SIZE_GB)]
    name: Printable | None = None
    description: Printable | None = None


def _version(request: Request) -> dict[str, Any]:
    return {"id": "v3.0", "status": "CURRENT", "version": "3.0", "min_version": "3.0",
            "updated": "2026-01-01T00:00:00Z",
            "links": [{"rel": "self", "href": f"{request.base_url}volume/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.volume+json;version=3"}]}


def view(vol: Any, nova: NovaRequest, *, detail: bool = True) -> dict[str, Any]:
    """A volume as Cinder shows it (``detail``: every field; else id, name and links)."""
    links = [{"rel": "self", "href": f"{nova.base}volume/v3/volumes/{vol.id}"},
             {"rel": "bookmark", "href": f"{nova.base}volume/volumes/{vol.id}"}]
    body: dict[str, Any] = {"id": vol.id, "name": vol.name, "links": links}
    if not detail:
        return body
    attachments = []
    if vol.instance_uuid is not None:
        inst = nova.service.instances.get(vol.instance_uuid)
        bdm = next((b for b in nova.service.bdms.get(vol.instance_uuid, []) if b.volume_id == vol.id), None)
        attachments.append({"id": vol.id, "attachment_id": bdm.attachment_id if bdm is not None else None,
                            "volume_id": vol.id, "server_id": vol.instance_uuid,
                            "host_name": inst.host if inst is not None else None,
                            "device": bdm.device_name if bdm is not None else None,
                            "attached_at": primitive_time(vol.updated_at)})
    body.update({
        "status": vol.status, "size": vol.size, "availability_zone": "nova", "bootable": "false",
        "created_at": primitive_time(vol.created_at), "updated_at": primitive_time(vol.updated_at),
        "description": None, "volume_type": "__DEFAULT__", "snapshot_id": None, "source_volid": None,
        "metadata": {}, "user_id": None, "os-vol-tenant-attr:tenant_id": vol.project_id, "encrypted": False,
        "multiattach": False, "replication_status": None, "consistencygroup_id": None, "attachments": attachments,
        "os-vol-host-attr:host": "novawatch@fake#fake",
    })
    return body


def volume(nova: NovaRequest, volume_id: str) -> Any:
    """The volume, or Cinder's 404."""
    found = nova.service.volumes.by_id.get(volume_id)
    if found is None:
        raise NovaError(404, f"Volume {volume_id} could not be found.")
    return found


def listed(nova: NovaRequest) -> list[Any]:
    """Volumes oldest first, filtered by ``name`` and ``status``, paged by ``marker`` and ``limit``."""
    q = nova.query
    rows = sorted(nova.service.volumes.by_id.values(), key=lambda v: (v.created_at is None, v.created_at, v.id))
    if q.get("name"):
        rows = [v for v in rows if v.name == q["name"]]
    if q.get("status"):
        rows = [v for v in rows if v.status == q["status"]]
    return paged(rows, lambda v: v.id, q.get("marker"), q.get("limit"))


#: Cinder's quotas; novawatch enforces none of them.
_QUOTAS = ("volumes", "gigabytes", "snapshots", "backups", "backup_gigabytes", "per_volume_gigabytes", "groups")


def router(shared: Nova) -> APIRouter:
    """The block storage routes, closures over the app's :class:`Nova`."""
    routes = APIRouter()

    @routes.get(VOLUME_PREFIX)
    @routes.get(VOLUME_PREFIX + "/")
    @routes.get(V3)
    @routes.get(V3 + "/")
    async def volume_versions(request: Request) -> JSONResponse:
        """Cinder's version discovery: v3 only, without microversions (300 at the root, as Cinder answers)."""
        root = request.url.path.rstrip("/") == VOLUME_PREFIX
        return JSONResponse({"versions": [_version(request)]}, status_code=300 if root else 200)

    @routes.get(V3 + "/volumes")
    async def list_volumes(request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"volumes": [view(v, nova, detail=False) for v in listed(nova)]})

    @routes.get(V3 + "/volumes/detail")
    async def list_volumes_detail(request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"volumes": [view(v, nova) for v in listed(nova)]})

    @routes.get(V3 + "/volumes/{volume_id}")
    async def show_volume(volume_id: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"volume": view(volume(nova, volume_id), nova)})

    @routes.post(V3 + "/volumes")
    async def create_volume(request: Request) -> JSONResponse:
        """A new available volume (``openstack volume create --size N NAME``)."""
        nova = shared.at(request)
        new = parse(VolumeCreate, await nova.body("volume"), "volume")
        project = nova.project_id
        vol = nova.run("create volume", lambda: nova.service.create_volume(new.size, name=new.name, project_id=project))
        return JSONResponse({"volume": view(vol, nova)}, status_code=202)

    @routes.delete(V3 + "/volumes/{volume_id}")
    async def delete_volume(volume_id: str, request: Request) -> Response:
        """Delete an available volume (400 when it is attached, as Cinder)."""
        nova = shared.at(request)
        volume(nova, volume_id)
        nova.run("delete volume", lambda: nova.service.delete_volume(volume_id))
        return Response(status_code=202)

    @routes.get(V3 + "/os-quota-sets/{project_id}")
    async def volume_quotas(project_id: str, request: Request) -> JSONResponse:
        """Every quota -1 (unlimited); with ``usage=true`` also what the project uses (``openstack quota show``)."""
        nova = shared.at(request)
        mine = [v for v in nova.service.volumes.by_id.values() if v.project_id == project_id]
        quota: dict[str, Any] = {"id": project_id, **dict.fromkeys(_QUOTAS, -1)}
        if nova.query.get("usage", "").lower() in ("true", "1", "yes"):
            in_use = {"volumes": len(mine), "gigabytes": sum(v.size for v in mine)}
            quota.update({k: {"limit": -1, "in_use": in_use.get(k, 0), "reserved": 0, "allocated": 0} for k in _QUOTAS})
        return JSONResponse({"quota_set": quota})

    @routes.get(V3 + "/os-availability-zone")
    async def volume_zones() -> JSONResponse:
        """One zone, ``nova`` (``openstack availability zone list``)."""
        return JSONResponse({"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True}}]})

    @routes.get(V3 + "/limits")
    async def volume_limits(request: Request) -> JSONResponse:
        """No volume quotas: every limit is -1 (unlimited), with what the project uses."""
        nova = shared.at(request)
        mine = [v for v in nova.service.volumes.by_id.values() if v.project_id in (None, nova.project_id)]
        return JSONResponse({"limits": {"rate": [], "absolute": {
            "maxTotalVolumes": -1, "maxTotalVolumeGigabytes": -1, "maxTotalSnapshots": -1, "maxTotalBackups": -1,
            "maxTotalBackupGigabytes": -1, "totalVolumesUsed": len(mine),
            "totalGigabytesUsed": sum(v.size for v in mine), "totalSnapshotsUsed": 0, "totalBackupsUsed": 0,
            "totalBackupGigabytesUsed": 0}}})

    return routes
