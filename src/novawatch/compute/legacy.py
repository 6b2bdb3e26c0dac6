"""The unversioned ``compute.instance.*`` notifications Nova sends next to the versioned ones.

Nova's ``info_from_instance`` dict, plus the keys each event adds, converted to the catalog's legacy
payload class of the event. Versioned events without a legacy twin (lock, volume swap...) map to None.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import msgspec

from novawatch.compute.emitter import InstanceContext
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
    return "" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


def legacy_payload(event_type: str, ctx: InstanceContext) -> tuple[str, msgspec.Struct] | None:
    """(legacy event type, payload) for versioned ``event_type``, or None when Nova sends none."""
    name = legacy_event_type(event_type)
    if name is None:
        return None
    entry = spec(name)
    assert entry is not None
    inst, flavor = ctx.instance, ctx.flavor
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
        "progress": inst.progress if inst.progress is not None else "",
        "access_ip_v4": None, "access_ip_v6": None, "image_meta": {},
        "metadata": {str(k): str(v) for k, v in inst.metadata_.items()},
        "fixed_ips": [
            {"label": vif["network"]["label"], "address": ip["address"], "version": ip["version"],
             "type": ip.get("type", "fixed"), "vif_mac": vif["address"], "floating_ips": [], "meta": {}}
            for vif, ip in fixed_ips(ctx.network_info)
        ],
    }
    values = ctx.values
    if name in ("compute.instance.update", "compute.instance.exists"):
        # Nova builds these without the network info.
        del info["fixed_ips"]
    if name == "compute.instance.create.end":
        info["message"] = "Success"
    if ctx.fault is not None:
        info.update(message=str(ctx.fault), code=int(getattr(ctx.fault, "code", 500)), exception=str(ctx.fault))
    if "_old_states" in values:
        old_vm, old_task = values["_old_states"]
        end = inst.updated_at or datetime(1970, 1, 1)
        info.update(old_state=old_vm, old_task_state=old_task, new_task_state=inst.task_state,
                    audit_period_beginning=_iso(end.replace(day=1, hour=0, minute=0, second=0, microsecond=0)),
                    audit_period_ending=_iso(end))
    if name == "compute.instance.exists":
        end = inst.updated_at or datetime(1970, 1, 1)
        info.update(audit_period_beginning=_iso(end.replace(day=1, hour=0, minute=0, second=0, microsecond=0)),
                    audit_period_ending=_iso(end))
    if values.get("old_display_name"):
        # Nova adds it to compute.instance.update only when the name changed.
        info["old_display_name"] = values["old_display_name"]
    if "volume_id" in values:
        info["volume_id"] = values["volume_id"]
    new_flavor = values.get("_new_flavor")
    if new_flavor is not None:
        info.update(new_instance_type=new_flavor.name, new_instance_type_id=new_flavor.id)
    if "rescue_image_ref" in values:
        info["rescue_image_name"] = None
    if "image_name" in _fields(entry.payload):
        info["image_name"] = None
    wanted = _fields(entry.payload)
    return name, msgspec.convert({k: v for k, v in info.items() if k in wanted}, entry.payload)
