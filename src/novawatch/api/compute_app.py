"""The compute service's HTTP app: the actions (boot, delete, power, migrate, swap volume, ...) and listings.

Every action runs on the app's event loop, one at a time: the compute service is one object over one
database session, and serialising its calls is what keeps it consistent. An action is committed
before its response is sent. ``GET /v1/snapshot`` is the truth in the snapshot contract's form: the
model service bootstraps and audits from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import msgspec
from fastapi import Body, FastAPI, HTTPException, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from novawatch.api import errors as error_table
from novawatch.api.common import GuardMiddleware, clean, json_response, new_app
from novawatch.api.compute_source import compute_instance, compute_node, compute_snapshot
from novawatch.api.errors import ACTION_NOTE
from novawatch.api.inputs import MetaKey, MetaValue, ProjectId, Tag, Text

log = logging.getLogger("novawatch.api.compute")

_json = msgspec.json.Encoder()

Name = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
HostPath = Annotated[str, Path(min_length=1, max_length=255)]
UuidPath = Annotated[str, Path(min_length=1, max_length=64)]


# JSON integers in a range; booleans, fractions and strings are refused (pydantic's strict mode).
HostVcpus = Annotated[int, Field(ge=1, le=4096, strict=True)]
HostMemoryMb = Annotated[int, Field(ge=1, le=64 * 1024 * 1024, strict=True)]
HostDiskGb = Annotated[int, Field(ge=1, le=1024 * 1024, strict=True)]
FlavorVcpus = Annotated[int, Field(ge=1, le=1024, strict=True)]
FlavorMemoryMb = Annotated[int, Field(ge=1, le=16 * 1024 * 1024, strict=True)]
DiskGb = Annotated[int, Field(ge=0, le=100000, strict=True)]
SwapMb = Annotated[int, Field(ge=0, le=1024 * 1024, strict=True)]
VolumeGb = Annotated[int, Field(ge=1, le=100000, strict=True)]
Ports = Annotated[int, Field(ge=0, le=16, strict=True)]
Flag = Annotated[bool, Field(strict=True)]


# --- request bodies ------------------------------------------------------------------------------


class ServiceIn(BaseModel):
    host: Name
    vcpus: HostVcpus = 32
    memory_mb: HostMemoryMb = 131072
    local_gb: HostDiskGb = 1000


class DisableIn(BaseModel):
    reason: Text | None = None


class ForceDownIn(BaseModel):
    forced_down: Flag = True


class FlavorIn(BaseModel):
    name: Name
    vcpus: FlavorVcpus
    memory_mb: FlavorMemoryMb
    root_gb: DiskGb
    ephemeral_gb: DiskGb = 0
    swap: SwapMb = 0


class BootIn(BaseModel):
    name: Name
    flavor: Name = Field(description="flavor name, see GET /v1/flavors")
    project_id: ProjectId = "6f70656e737461636b20342065766572"
    host: Name | None = Field(default=None, description="force this host (skips the scheduler's choice)")
    boot_volume_gb: VolumeGb | None = None
    ports: Ports = 1
    metadata: Annotated[dict[MetaKey, MetaValue], Field(max_length=64)] = Field(default_factory=dict)
    tags: Annotated[list[Tag], Field(max_length=50)] = Field(default_factory=list)


class HostIn(BaseModel):
    host: Name | None = Field(default=None, description="destination host; the scheduler picks one when absent")


class RebootIn(BaseModel):
    hard: Flag = False


class LockIn(BaseModel):
    reason: Text | None = None


class RescueIn(BaseModel):
    rescue_image_ref: Text | None = None


class RebuildIn(BaseModel):
    image_ref: Text | None = None


class ResizeIn(BaseModel):
    flavor: Name
    host: Name | None = None


class TagsIn(BaseModel):
    tags: Annotated[list[Tag], Field(max_length=50)]


class MetadataIn(BaseModel):
    metadata: Annotated[dict[MetaKey, MetaValue], Field(max_length=64)]
    replace: Flag = False


class VolumeIn(BaseModel):
    size: VolumeGb = 1


class AttachVolumeIn(BaseModel):
    volume_id: Text | None = Field(default=None, description="an available volume; a new one when absent")
    size: VolumeGb = 1


class DetachVolumeIn(BaseModel):
    volume_id: Text


class SwapVolumeIn(BaseModel):
    old_volume_id: Text
    new_volume_id: Text | None = Field(default=None, description="an available volume; a new one when absent")


class DetachInterfaceIn(BaseModel):
    port_id: Text


# --- responses -----------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    error: str


class InstanceOut(BaseModel):
    uuid: str
    display_name: str | None
    project_id: str | None
    host: str | None
    node: str | None
    vm_state: str | None
    power_state: str | None
    task_state: str | None
    locked: bool
    flavor: str | None
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int
    volumes: list[str]
    ports: list[str]
    tags: list[str]
    metadata: dict[str, str]
    created_at: str | None
    updated_at: str | None


class InstancesOut(BaseModel):
    total: int
    offset: int
    limit: int
    instances: list[InstanceOut]


class ServiceOut(BaseModel):
    host: str
    uuid: str
    binary: str
    disabled: bool
    disabled_reason: str | None
    forced_down: bool
    node_uuid: str | None
    vcpus: int | None
    memory_mb: int | None
    local_gb: int | None
    vcpus_used: int | None
    memory_mb_used: int | None
    local_gb_used: int | None
    running_vms: int | None


class ServicesOut(BaseModel):
    services: list[ServiceOut]


class FlavorOut(BaseModel):
    name: str
    flavorid: str
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int
    swap: int


class FlavorsOut(BaseModel):
    flavors: list[FlavorOut]


class VolumeOut(BaseModel):
    id: str
    size: int
    status: str
    instance_uuid: str | None


class ActionOut(BaseModel):
    action: str
    instance: InstanceOut | None = None
    result: str | None = None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {400: "the action is not possible with these arguments", 404: "no such instance, host or volume",
            409: "the instance or service is not in a state that allows it"}
    return {code: {"model": ErrorOut, "description": text[code]} for code in codes}


class ComputeAPI:
    """Turns HTTP calls into compute service calls and their results into JSON."""

    def __init__(self, service: Any) -> None:
        self.service = service

    # --- conversions ------------------------------------------------------------------------------

    def instance_json(self, inst: Any) -> dict[str, Any]:
        svc = self.service
        flavor = svc.flavors.get(inst.instance_type_id)
        bdms = svc.bdms.get(inst.uuid, [])
        network = inst.info_cache.network_info if inst.info_cache is not None else []
        return {
            "uuid": inst.uuid, "display_name": inst.display_name, "project_id": inst.project_id,
            "host": inst.host, "node": inst.node, "vm_state": inst.vm_state, "power_state": inst.power_state,
            "task_state": inst.task_state, "locked": bool(inst.locked),
            "flavor": flavor.name if flavor is not None else None, "vcpus": inst.vcpus,
            "memory_mb": inst.memory_mb, "root_gb": inst.root_gb, "ephemeral_gb": inst.ephemeral_gb,
            "volumes": sorted(b.volume_id for b in bdms if b.volume_id and not b.deleted),
            "ports": [str(v.get("id")) for v in network if isinstance(v, dict) and v.get("id")],
            "tags": sorted(str(t) for t in (inst.tags or [])),
            "metadata": {str(k): str(v) for k, v in (inst.metadata_ or {}).items()},
            "created_at": _iso(inst.created_at), "updated_at": _iso(inst.updated_at),
        }

    def service_json(self, svc_row: Any) -> dict[str, Any]:
        node = self.service.nodes.get(svc_row.host)
        return {
            "host": svc_row.host, "uuid": svc_row.uuid, "binary": svc_row.binary, "disabled": bool(svc_row.disabled),
            "disabled_reason": svc_row.disabled_reason, "forced_down": bool(svc_row.forced_down),
            "node_uuid": node.uuid if node is not None else None,
            **{k: getattr(node, k) if node is not None else None
               for k in ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used",
                         "running_vms")},
        }

    @staticmethod
    def flavor_json(f: Any) -> dict[str, Any]:
        return {"name": f.name, "flavorid": f.flavorid, "vcpus": f.vcpus, "memory_mb": f.memory_mb,
                "root_gb": f.root_gb, "ephemeral_gb": f.ephemeral_gb, "swap": f.swap}

    # --- running actions --------------------------------------------------------------------------

    def run(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run one action and commit it: its changes and its notifications, or (when it raises) neither.

        Errors propagate to the apps' exception handlers (:mod:`novawatch.api.errors` maps them), with
        ``what`` noted on them for the message.
        """
        try:
            try:
                result = fn()
            except BaseException:
                self.service.abort()
                raise
            self.service.commit()
        except Exception as exc:
            exc.add_note(f"{ACTION_NOTE}{what}")
            raise
        return result

    def unavailable(self) -> str | None:
        """Why the service cannot serve (its state could not be loaded from the database), or None."""
        service = self.service
        recover = getattr(service, "recover", None)
        if recover is None or recover():
            return None
        return str(service.unavailable)

    def health(self) -> tuple[int, dict[str, Any]]:
        """(status, body) of ``GET /v1/health``: the database answers, the state is loaded, the outbox's backlog."""
        service = self.service
        body: dict[str, Any] = {"status": "ok", "services": len(service.services),
                                "instances": sum(1 for i in service.instances.values() if not i.deleted)}
        problem = self.unavailable()
        if problem is None:
            try:
                with service.repo.engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
            except Exception as exc:
                problem = f"the database does not answer: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        outbox = getattr(service, "outbox", None)
        if outbox is not None:
            body["outbox"] = outbox.status()
        if problem is not None:
            body.update(status="failing", error=clean(problem))
            return 503, body
        if outbox is not None and outbox.error is not None:
            body["status"] = "degraded"
        return 200, body

    def instance(self, uuid: str) -> Any:
        inst = self.service.instances.get(uuid)
        if inst is None or inst.deleted:
            raise HTTPException(404, f"no instance {uuid!r}; list them with GET /v1/instances")
        return inst

    def flavor(self, name: str) -> Any:
        for flavor in self.service.flavors.values():
            if flavor.name == name:
                return flavor
        raise HTTPException(400, f"no flavor named {name!r}; list them with GET /v1/flavors or create one")

    def volume_id(self, given: str | None, size: int) -> str:
        if given:
            return given
        return str(self.run("create volume", lambda: self.service.create_volume(size)).id)


def _json_response(body: Any, status: int = 200) -> Response:
    return Response(_json.encode(body), status_code=status, media_type="application/json")


#: Instance actions without arguments: URL name -> compute service method.
SIMPLE_ACTIONS = {
    "power_off": "power_off", "power_on": "power_on", "pause": "pause", "unpause": "unpause",
    "suspend": "suspend", "resume": "resume", "unrescue": "unrescue", "unlock": "unlock",
    "trigger_crash_dump": "trigger_crash_dump", "confirm_resize": "confirm_resize",
    "revert_resize": "revert_resize", "live_migration_complete": "live_migration_complete",
    "live_migration_force_complete": "live_migration_force_complete",
    "live_migration_abort": "live_migration_abort", "shelve": "shelve", "shelve_offload": "shelve_offload",
    "soft_delete": "soft_delete", "restore": "restore", "force_delete": "force_delete",
    "attach_interface": "attach_interface",
}


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

    # --- services and nodes -------------------------------------------------------------------

    @app.get("/v1/services", response_model=ServicesOut, tags=["services"])
    async def list_services() -> Response:
        """Compute services (one per host) with their node's capacity and usage."""
        rows = sorted(service.services.values(), key=lambda s: s.host)
        return _json_response({"services": [api.service_json(s) for s in rows]})

    @app.post("/v1/services", status_code=201, response_model=ServiceOut, tags=["services"],
              responses=_responses(409))
    async def create_service(body: ServiceIn) -> Response:
        """A host joins: its service and compute node are created (``service.create``, ``compute_node.create``)."""
        row = api.run("create service", lambda: service.create_service(
            body.host, vcpus=body.vcpus, memory_mb=body.memory_mb, local_gb=body.local_gb))
        return _json_response(api.service_json(row), 201)

    def _service(host: str) -> Any:
        row = service.services.get(host)
        if row is None:
            raise HTTPException(404, f"no compute service on {host!r}; list them with GET /v1/services")
        return row

    def _service_action(host: str, what: str, action: Callable[[], object]) -> Response:
        """Run ``action`` on the service of an existing ``host``; the service after it."""
        _service(host)
        api.run(what, action)
        return _json_response(api.service_json(_service(host)))

    @app.post("/v1/services/{host}/enable", response_model=ServiceOut, tags=["services"],
              responses=_responses(404, 409))
    async def enable_service(host: HostPath) -> Response:
        return _service_action(host, "enable service", lambda: service.enable_service(host))

    @app.post("/v1/services/{host}/disable", response_model=ServiceOut, tags=["services"],
              responses=_responses(404, 409))
    async def disable_service(host: HostPath, body: Annotated[DisableIn | None, Body()] = None) -> Response:
        reason = body.reason if body is not None else None
        return _service_action(host, "disable service", lambda: service.disable_service(host, reason))

    @app.post("/v1/services/{host}/force_down", response_model=ServiceOut, tags=["services"],
              responses=_responses(404, 409))
    async def force_down(host: HostPath, body: Annotated[ForceDownIn | None, Body()] = None) -> Response:
        down = body.forced_down if body is not None else True
        return _service_action(host, "force down", lambda: service.force_down_service(host, down))

    @app.delete("/v1/services/{host}", status_code=204, tags=["services"], responses=_responses(404, 409))
    async def delete_service(host: HostPath) -> Response:
        _service(host)
        api.run("delete service", lambda: service.delete_service(host))
        return Response(status_code=204)

    # --- flavors and volumes ------------------------------------------------------------------

    @app.get("/v1/flavors", response_model=FlavorsOut, tags=["flavors"])
    async def list_flavors() -> Response:
        rows = sorted(service.flavors.values(), key=lambda f: f.name)
        return _json_response({"flavors": [api.flavor_json(f) for f in rows]})

    @app.post("/v1/flavors", status_code=201, response_model=FlavorOut, tags=["flavors"],
              responses=_responses(409))
    async def create_flavor(body: FlavorIn) -> Response:
        if any(f.name == body.name for f in service.flavors.values()):
            raise HTTPException(409, f"a flavor named {body.name!r} exists; pick another name")
        row = api.run("create flavor", lambda: service.create_flavor(
            body.name, vcpus=body.vcpus, memory_mb=body.memory_mb, root_gb=body.root_gb,
            ephemeral_gb=body.ephemeral_gb, swap=body.swap))
        return _json_response(api.flavor_json(row), 201)

    @app.post("/v1/volumes", status_code=201, response_model=VolumeOut, tags=["volumes"])
    async def create_volume(body: VolumeIn) -> Response:
        vol = api.run("create volume", lambda: service.create_volume(body.size))
        return _json_response({"id": vol.id, "size": vol.size, "status": vol.status,
                               "instance_uuid": vol.instance_uuid}, 201)

    # --- instances ----------------------------------------------------------------------------

    @app.get("/v1/instances", response_model=InstancesOut, tags=["instances"])
    async def list_instances(
        host: Annotated[str | None, Query(max_length=255)] = None,
        project_id: Annotated[str | None, Query(max_length=255)] = None,
        vm_state: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Response:
        """Instances (not deleted), by uuid, filtered."""
        rows = [i for i in service.instances.values() if not i.deleted
                and (host is None or i.host == host) and (project_id is None or i.project_id == project_id)
                and (vm_state is None or i.vm_state == vm_state)]
        rows.sort(key=lambda i: i.uuid)
        page = rows[offset : offset + limit]
        return _json_response({"total": len(rows), "offset": offset, "limit": limit,
                               "instances": [api.instance_json(i) for i in page]})

    @app.get("/v1/instances/{uuid}", response_model=InstanceOut, tags=["instances"], responses=_responses(404))
    async def get_instance(uuid: UuidPath) -> Response:
        return _json_response(api.instance_json(api.instance(uuid)))

    @app.post("/v1/instances", status_code=202, response_model=InstanceOut, tags=["instances"],
              responses=_responses(400, 409))
    async def boot(body: BootIn) -> Response:
        """Boot an instance. It is ``active`` on success, ``error`` (with a fault) when it could not be built."""
        flavor = api.flavor(body.flavor)
        if body.host is not None and body.host not in service.services:
            raise HTTPException(400, f"no compute service on {body.host!r}; list them with GET /v1/services")
        inst = api.run("boot", lambda: service.boot(
            body.name, flavor, project_id=body.project_id, host=body.host, boot_volume_gb=body.boot_volume_gb,
            ports=body.ports, metadata=dict(body.metadata), tags=list(body.tags)))
        return _json_response(api.instance_json(inst), 202)

    @app.delete("/v1/instances/{uuid}", status_code=202, response_model=ActionOut, tags=["instances"],
                responses=_responses(404, 409))
    async def delete_instance(uuid: UuidPath) -> Response:
        api.instance(uuid)
        api.run("delete", lambda: service.delete(uuid))
        return _json_response({"action": "delete", "instance": None, "result": None}, 202)

    def _after(action: str, uuid: str, result: Any = None) -> Response:
        inst = service.instances.get(uuid)
        body = api.instance_json(inst) if inst is not None and not inst.deleted else None
        return _json_response({"action": action, "instance": body,
                               "result": result if isinstance(result, str) else None})

    def _simple(action: str, method: str) -> None:
        async def endpoint(uuid: UuidPath) -> Response:
            api.instance(uuid)
            result = api.run(action, lambda: getattr(service, method)(uuid))
            return _after(action, uuid, result)

        endpoint.__name__ = f"instance_{action}"
        endpoint.__doc__ = f"``{action}`` the instance (emits Nova's notifications for it)."
        app.post(f"/v1/instances/{{uuid}}/{action}", response_model=ActionOut, tags=["actions"],
                 responses=_responses(400, 404, 409), name=action)(endpoint)

    for action, method in SIMPLE_ACTIONS.items():
        _simple(action, method)

    actions = "/v1/instances/{uuid}"
    errors = _responses(400, 404, 409)

    @app.post(f"{actions}/reboot", response_model=ActionOut, tags=["actions"], responses=errors)
    async def reboot(uuid: UuidPath, body: Annotated[RebootIn | None, Body()] = None) -> Response:
        api.instance(uuid)
        hard = body.hard if body is not None else False
        return _after("reboot", uuid, api.run("reboot", lambda: service.reboot(uuid, hard=hard)))

    @app.post(f"{actions}/lock", response_model=ActionOut, tags=["actions"], responses=errors)
    async def lock(uuid: UuidPath, body: Annotated[LockIn | None, Body()] = None) -> Response:
        api.instance(uuid)
        reason = body.reason if body is not None else None
        return _after("lock", uuid, api.run("lock", lambda: service.lock(uuid, reason)))

    @app.post(f"{actions}/rescue", response_model=ActionOut, tags=["actions"], responses=errors)
    async def rescue(uuid: UuidPath, body: Annotated[RescueIn | None, Body()] = None) -> Response:
        api.instance(uuid)
        ref = body.rescue_image_ref if body is not None else None
        return _after("rescue", uuid, api.run("rescue", lambda: service.rescue(uuid, ref)))

    @app.post(f"{actions}/rebuild", response_model=ActionOut, tags=["actions"], responses=errors)
    async def rebuild(uuid: UuidPath, body: Annotated[RebuildIn | None, Body()] = None) -> Response:
        api.instance(uuid)
        ref = body.image_ref if body is not None else None
        return _after("rebuild", uuid, api.run("rebuild", lambda: service.rebuild(uuid, ref)))

    @app.post(f"{actions}/snapshot", response_model=ActionOut, tags=["actions"], responses=errors)
    async def snapshot(uuid: UuidPath) -> Response:
        """Snapshot to a new image; ``result`` is the image id."""
        api.instance(uuid)
        return _after("snapshot", uuid, api.run("snapshot", lambda: service.snapshot(uuid)))

    @app.post(f"{actions}/resize", response_model=ActionOut, tags=["actions"], responses=errors)
    async def resize(uuid: UuidPath, body: ResizeIn) -> Response:
        api.instance(uuid)
        flavor = api.flavor(body.flavor)
        return _after("resize", uuid, api.run("resize", lambda: service.resize(uuid, flavor, host=body.host)))

    def _moving(action: str, method: str) -> None:
        async def endpoint(uuid: UuidPath, body: Annotated[HostIn | None, Body()] = None) -> Response:
            api.instance(uuid)
            host = body.host if body is not None else None
            return _after(action, uuid, api.run(action, lambda: getattr(service, method)(uuid, host=host)))

        endpoint.__name__ = f"instance_{action}"
        endpoint.__doc__ = f"``{action}``, to ``host`` or wherever the scheduler finds room."
        app.post(f"{actions}/{action}", response_model=ActionOut, tags=["actions"], responses=errors,
                 name=action)(endpoint)

    for action in ("live_migrate", "evacuate", "unshelve"):
        _moving(action, action)

    @app.post(f"{actions}/tags", response_model=ActionOut, tags=["actions"], responses=errors)
    async def set_tags(uuid: UuidPath, body: TagsIn) -> Response:
        api.instance(uuid)
        return _after("tags", uuid, api.run("set tags", lambda: service.set_tags(uuid, list(body.tags))))

    @app.post(f"{actions}/metadata", response_model=ActionOut, tags=["actions"], responses=errors)
    async def update_metadata(uuid: UuidPath, body: MetadataIn) -> Response:
        api.instance(uuid)
        return _after("metadata", uuid, api.run("update metadata", lambda: service.update_metadata(
            uuid, dict(body.metadata), replace=body.replace)))

    @app.post(f"{actions}/attach_volume", response_model=ActionOut, tags=["actions"], responses=errors)
    async def attach_volume(uuid: UuidPath, body: Annotated[AttachVolumeIn | None, Body()] = None) -> Response:
        """Attach a volume (a new one of ``size`` GB when no ``volume_id`` is given)."""
        api.instance(uuid)
        b = body or AttachVolumeIn()
        volume = api.volume_id(b.volume_id, b.size)
        api.run("attach volume", lambda: service.attach_volume(uuid, volume))
        return _after("attach_volume", uuid, volume)

    @app.post(f"{actions}/detach_volume", response_model=ActionOut, tags=["actions"], responses=errors)
    async def detach_volume(uuid: UuidPath, body: DetachVolumeIn) -> Response:
        api.instance(uuid)
        api.run("detach volume", lambda: service.detach_volume(uuid, body.volume_id))
        return _after("detach_volume", uuid)

    @app.post(f"{actions}/swap_volume", response_model=ActionOut, tags=["actions"], responses=errors)
    async def swap_volume(uuid: UuidPath, body: SwapVolumeIn) -> Response:
        """Swap an attached volume for another (a new one when ``new_volume_id`` is absent)."""
        api.instance(uuid)
        new = api.volume_id(body.new_volume_id, 1)
        api.run("swap volume", lambda: service.swap_volume(uuid, body.old_volume_id, new))
        return _after("swap_volume", uuid, new)

    @app.post(f"{actions}/detach_interface", response_model=ActionOut, tags=["actions"], responses=errors)
    async def detach_interface(uuid: UuidPath, body: DetachInterfaceIn) -> Response:
        api.instance(uuid)
        api.run("detach interface", lambda: service.detach_interface(uuid, body.port_id))
        return _after("detach_interface", uuid)

    # --- the truth, for the model service -------------------------------------------------------

    @app.get("/v1/snapshot", tags=["source"])
    async def snapshot_all() -> Response:
        """Every node and instance in the ``novawatch.model/1`` snapshot form (bootstrap and audit)."""
        return _json_response(compute_snapshot(service))

    @app.get("/v1/snapshot/nodes/{uuid}", tags=["source"], responses=_responses(404))
    async def snapshot_node(uuid: UuidPath) -> Response:
        record = compute_node(service, uuid)
        if record is None:
            raise HTTPException(404, f"no compute node {uuid!r}")
        return _json_response(record)

    @app.get("/v1/snapshot/instances/{uuid}", tags=["source"], responses=_responses(404))
    async def snapshot_instance(uuid: UuidPath) -> Response:
        record = compute_instance(service, uuid)
        if record is None:
            raise HTTPException(404, f"no instance {uuid!r}")
        return _json_response(record)

    @app.get("/v1/health", tags=["service"], responses={503: {"description": "the database is unavailable"}})
    async def health() -> Response:
        """``ok``; ``degraded`` while the outbox cannot reach the bus; ``failing`` (503) without the database."""
        status, body = api.health()
        return json_response(body, status)

    error_table.install(app, lambda status, message: json_response({"error": message}, status))
    app.add_middleware(GuardMiddleware, token=token, max_body_bytes=max_body_bytes, unavailable=api.unavailable,
                       open_paths=frozenset({"/v1/health"}))
    return app
