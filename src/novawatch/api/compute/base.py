"""What the compute service's routers share: :class:`ComputeAPI` (one action run and committed, rows as
JSON), the field types of request bodies, and the error responses the OpenAPI document shows.

Every router of the compute service (``api/compute/<resource>.py``) has the same shape: its request and
response schemas beside its routes, and ``router(api: ComputeAPI) -> APIRouter``, whose endpoints close over
``api``. Errors are raised, not answered: the one table of :mod:`novawatch.api.errors` maps them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import msgspec
from fastapi import HTTPException, Path
from fastapi.responses import Response
from pydantic import BaseModel, Field

from novawatch.api.common import clean
from novawatch.api.errors import ACTION_NOTE

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


class ErrorOut(BaseModel):
    error: str


def respond(body: Any, status: int = 200) -> Response:
    """``body`` (plain data or records) as JSON, encoded by msgspec."""
    return Response(_json.encode(body), status_code=status, media_type="application/json")


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
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
            "created_at": iso(inst.created_at), "updated_at": iso(inst.updated_at),
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
