"""The unversioned notifications Nova sends next to the versioned ones (``notification_format = both``).

``compute.instance.*``: Nova's ``info_from_instance`` dict, plus the keys each event adds, converted to
the catalog's legacy payload class of the event (versioned events without a legacy twin, lock or volume
swap, map to None). Also the scheduler's legacy request spec and the conductor's ``compute_task.<task>``.
What goes in them follows Nova 34's code: ``fixed_ips`` only where Nova hands the network info over,
``progress`` ``''`` while it is 0, ``image_meta`` from the image properties the instance keeps in its
system metadata, ``exists`` audit periods as ``str(datetime)``.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import msgspec

from novawatch.compute import db, images
from novawatch.compute.emitter import InstanceContext, Scheduling
from novawatch.compute.network import fixed_ips
from novawatch.notifications.catalog import spec

#: Versioned action names whose legacy name differs (``instance.X`` -> ``compute.instance.Y``).
_RENAMED = {
    "resize_prep": "resize.prep",
    "resize_finish": "finish_resize",
    "resize_confirm": "resize.confirm",
    "resize_revert": "resize.revert",
    "live_migration_pre": "live_migration.pre",
    "live_migration_post": "live_migration._post",
    "live_migration_post_dest": "live_migration.post.dest",
    "live_migration_rollback": "live_migration._rollback",
    "live_migration_rollback_dest": "live_migration.rollback.dest",
    "live_migration_abort": "live.migration.abort",
    "live_migration_force_complete": "live.migration.force.complete",
    "rebuild_scheduled": "rebuild.scheduled",
}

#: Legacy volume notifications have no phase and are sent once, when the action is done.
_VOLUME = {"instance.volume_attach.end": "compute.instance.volume.attach",
           "instance.volume_detach.end": "compute.instance.volume.detach"}

#: The legacy events Nova sends with the instance's network info (``fixed_ips``); the others have none.
WITH_NETWORK_INFO = frozenset(f"compute.instance.{e}" for e in (
    "create.end", "rebuild.end", "rescue.start", "rescue.end", "unrescue.start", "unrescue.end",
    "resize.confirm.end", "resize.start", "resize.end", "finish_resize.start", "finish_resize.end",
    "create_ip.end", "delete_ip.end", "live_migration.pre.start", "live_migration.pre.end",
    "live_migration._post.start", "live_migration._post.end", "live_migration.post.dest.start",
    "live_migration.post.dest.end", "live_migration.rollback.dest.start", "live_migration.rollback.dest.end",
))

#: The legacy events that name the image (``image_name``): the image booted, or rebuilt with.
_WITH_IMAGE_NAME = frozenset({"compute.instance.create.start", "compute.instance.rebuild.start",
                              "compute.instance.rebuild.end"})


@functools.cache
def legacy_event_type(event_type: str) -> str | None:
    """The legacy event type Nova sends with versioned ``event_type``, or None."""
    if event_type in _VOLUME:
        return _VOLUME[event_type]
    parts = event_type.split(".")
    if parts[0] != "instance" or len(parts) not in (2, 3):
        return None
    action = _RENAMED.get(parts[1], parts[1])
    name = ".".join(["compute.instance", action, *parts[2:]])
    entry = spec(name)
    return name if entry is not None and not entry.versioned else None


@functools.cache
def _fields(cls: type[msgspec.Struct]) -> frozenset[str]:
    return frozenset(f.name for f in msgspec.structs.fields(cls))


def _iso(moment: datetime | None) -> str:
    """Nova's ``utils.strtime``, or ``''`` for no date."""
    return "" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _image_name(image_ref: str | None) -> str | None:
    return images.lookup(image_ref).name if image_ref else None


def instance_payload(event_type: str, ctx: InstanceContext) -> tuple[str, msgspec.Struct] | None:
    """(legacy event type, payload) for versioned ``event_type``, or None when Nova sends none."""
    name = legacy_event_type(event_type)
    if name is None:
        return None
    entry = spec(name)
    assert entry is not None
    inst, flavor = ctx.view(), ctx.flavor
    created = inst.created_at.replace(tzinfo=UTC) if inst.created_at is not None else None
    info: dict[str, Any] = {
        "tenant_id": inst.project_id, "user_id": inst.user_id, "instance_id": inst.uuid,
        "display_name": inst.display_name, "reservation_id": inst.reservation_id, "hostname": inst.hostname,
        "instance_type": flavor.name, "instance_type_id": flavor.id, "instance_flavor_id": flavor.flavorid,
        "architecture": inst.architecture, "memory_mb": inst.memory_mb, "disk_gb": inst.root_gb + inst.ephemeral_gb,
        "vcpus": inst.vcpus, "root_gb": inst.root_gb, "ephemeral_gb": inst.ephemeral_gb, "host": inst.host,
        "node": inst.node, "availability_zone": inst.availability_zone, "cell_name": "",
        "created_at": "" if created is None else str(created), "terminated_at": _iso(inst.terminated_at),
        "deleted_at": _iso(inst.deleted_at), "launched_at": _iso(inst.launched_at),
        "image_ref_url": f"http://images.novawatch/images/{inst.image_ref}" if inst.image_ref else "",
        "os_type": inst.os_type, "kernel_id": inst.kernel_id, "ramdisk_id": inst.ramdisk_id,
        "state": inst.vm_state, "state_description": inst.task_state or "",
        # Nova's legacy code sends an empty string while the progress is 0 (or unset).
        "progress": int(inst.progress) if inst.progress else "",
        "access_ip_v4": None, "access_ip_v6": None,
        "image_meta": images.image_meta(inst.system_metadata or {}),
        "metadata": {str(k): str(v) for k, v in inst.metadata_.items()},
    }
    if name in WITH_NETWORK_INFO:
        info["fixed_ips"] = [
            {"label": vif["network"]["label"], "address": ip["address"], "version": ip["version"],
             "type": ip.get("type", "fixed"), "vif_mac": vif["address"], "floating_ips": [], "meta": {}}
            for vif, ip in fixed_ips(ctx.network_info)
        ]
    values = ctx.values
    if name == "compute.instance.create.end":
        info["message"] = "Success"
    if ctx.fault is not None:
        info.update(message=str(ctx.fault), code=int(getattr(ctx.fault, "code", 500)), exception=str(ctx.fault))
    end = inst.updated_at or datetime(1970, 1, 1)
    if "_old_states" in values:
        old_vm, old_task = values["_old_states"]
        info.update(old_state=old_vm, old_task_state=old_task, new_task_state=inst.task_state,
                    audit_period_beginning=_iso(_month_start(end)), audit_period_ending=_iso(end))
    if name == "compute.instance.exists":
        # notify_usage_exists passes the period as datetimes, which the serializer turns into str().
        info.update(audit_period_beginning=str(_month_start(end)), audit_period_ending=str(end))
    if values.get("old_display_name"):
        # Nova adds it to compute.instance.update only when the name changed.
        info["old_display_name"] = values["old_display_name"]
    if "volume_id" in values:
        info["volume_id"] = values["volume_id"]
    new_flavor = values.get("_new_flavor")
    if new_flavor is not None and name == "compute.instance.resize.prep.end":
        info.update(new_instance_type=new_flavor.name, new_instance_type_id=new_flavor.id)
    if "rescue_image_ref" in values:
        info["rescue_image_name"] = _image_name(values["rescue_image_ref"] or inst.image_ref) or ""
    if name in _WITH_IMAGE_NAME:
        info["image_name"] = _image_name(inst.image_ref)
    wanted = _fields(entry.payload)
    return name, msgspec.convert({k: v for k, v in info.items() if k in wanted}, entry.payload)


#: The request context Nova's legacy request spec carries inside ``pci_requests`` (its object's state, dumped
#: as is): every key Nova 34 puts there, with the values a plain API request has.
_CONTEXT_KEYS = (
    "domain_id", "user_domain_id", "project_domain_id", "auth_token", "user_name", "project_name", "domain_name",
    "system_scope", "user_domain_name", "project_domain_name",
)
_SERVICE_KEYS = (
    "service_token", "service_user_id", "service_user_name", "service_user_domain_id", "service_user_domain_name",
    "service_project_id", "service_project_name", "service_project_domain_id", "service_project_domain_name",
)


def _context(req: Scheduling) -> dict[str, Any]:
    out: dict[str, Any] = {"user_id": req.user_id, "project_id": req.project_id}
    out.update(dict.fromkeys(_CONTEXT_KEYS))
    roles = ["reader", "member", "admin"] if req.is_admin else ["reader", "member"]
    out.update({"_is_admin": req.is_admin, "is_admin_project": True, "read_only": False, "show_deleted": False,
                "resource_uuid": None, "roles": roles})
    out.update(dict.fromkeys(_SERVICE_KEYS))
    out.update({"service_roles": [], "request_id": req.request_id, "global_request_id": None,
                "_read_deleted": "no", "remote_address": "127.0.0.1", "timestamp": _iso(req.created_at),
                "service_catalog": [], "quota_class": None, "db_connection": None, "mq_connection": None,
                "cell_uuid": None, "user_auth_plugin": None, "_enginefacade_context": {}})
    return out


def _image(req: Scheduling) -> dict[str, Any]:
    image = req.image
    if image is None:
        return {"status": "active", "size": req.volume_gb * 1024**3, "min_ram": 0, "min_disk": 0, "properties": {}}
    return {"id": image.id, "name": image.name, "status": image.status, "visibility": image.visibility,
            "protected": image.protected, "size": image.size, "container_format": image.container_format,
            "disk_format": image.disk_format, "created_at": _iso(image.created_at),
            "updated_at": _iso(image.created_at), "tags": list(image.tags), "min_ram": image.min_ram,
            "min_disk": image.min_disk, "properties": image.props()}


def _instance_properties(req: Scheduling) -> dict[str, Any]:
    inst, flavor = req.instance, req.flavor
    pci = {"_changed_fields": ["requests"], "_context": _context(req), "VERSION": "1.1", "_obj_requests": []}
    return {"numa_topology": None, "pci_requests": pci, "project_id": inst.project_id, "user_id": req.user_id,
            "availability_zone": req.availability_zone, "uuid": inst.uuid, "root_gb": flavor.root_gb,
            "ephemeral_gb": flavor.ephemeral_gb, "memory_mb": flavor.memory_mb, "vcpus": flavor.vcpus}


def request_spec(req: Scheduling) -> dict[str, Any]:
    """Nova's legacy request spec (``RequestSpec.to_legacy_request_spec_dict``), JSON-ready."""
    flavor = req.flavor
    return {
        "num_instances": 1,
        "image": _image(req),
        "instance_properties": _instance_properties(req),
        "instance_type": {
            "id": flavor.id, "name": flavor.name, "memory_mb": flavor.memory_mb, "vcpus": flavor.vcpus,
            "root_gb": flavor.root_gb, "ephemeral_gb": flavor.ephemeral_gb, "flavorid": flavor.flavorid,
            "swap": flavor.swap, "rxtx_factor": flavor.rxtx_factor, "vcpu_weight": flavor.vcpu_weight,
            "disabled": flavor.disabled, "is_public": flavor.is_public,
            "extra_specs": {str(k): str(v) for k, v in flavor.extra_specs.items()},
            "description": flavor.description, "created_at": _iso(flavor.created_at), "updated_at": None,
            "deleted_at": None, "deleted": False,
        },
    }


def _reason(exc: BaseException) -> str:
    # The exception as Nova's JSON serializer renders a NovaException: the text of its dict.
    return repr({"kwargs": {"reason": "", "code": int(getattr(exc, "code", 500))}, "message": str(exc),
                 "class": type(exc).__name__})


class Legacy:
    """The :class:`~novawatch.compute.emitter.LegacyFormat` of Nova 34."""

    def instance(self, event_type: str, ctx: InstanceContext) -> tuple[str, msgspec.Struct] | None:
        return instance_payload(event_type, ctx)

    def request_spec(self, req: Scheduling) -> dict[str, Any]:
        return request_spec(req)

    def compute_task(self, inst: db.Instance, req: Scheduling | None, task: str,
                     exc: BaseException) -> msgspec.Struct:
        from novawatch.notifications.catalog.compute_task import LegacyComputeTaskPayload

        return LegacyComputeTaskPayload(
            request_spec=None if req is None else request_spec(req),
            instance_properties=None if req is None else _instance_properties(req),
            instance_id=inst.uuid, state=inst.vm_state, method=task, reason=_reason(exc))
