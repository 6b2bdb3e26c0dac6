"""Legacy (unversioned) ``compute.instance.*`` notifications: plain dicts with no ``nova_object`` envelope.

Nova builds them from the instance (``info_from_instance``) and adds a few keys per event. Types are as
lenient as Nova is: date-times are strings (``created_at`` is ``str()`` of an aware date-time,
``2012-10-29 13:42:11+00:00``; the others ``%Y-%m-%dT%H:%M:%S.%f`` or ``""`` when unset), ``progress``
is an integer or ``""``. Keys novawatch does not know are ignored.
"""

from __future__ import annotations

from typing import Any

import msgspec

from novawatch.notifications.catalog.table import event
from novawatch.objects.fields import Count32, Int32

_UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


class LegacyInstancePayload(msgspec.Struct, kw_only=True):
    """The instance info dict every ``compute.instance.*`` notification carries.

    ``message``, ``code`` and ``exception`` are there when Nova reports a fault (``*.error``);
    ``fixed_ips`` when the event had the network info at hand.
    """

    tenant_id: str | None
    user_id: str | None
    instance_id: str
    display_name: str | None
    reservation_id: str | None
    hostname: str | None
    instance_type: str
    instance_type_id: Int32 | None
    instance_flavor_id: str
    architecture: str | None
    memory_mb: Count32
    disk_gb: Count32
    vcpus: Count32
    root_gb: Count32
    ephemeral_gb: Count32
    host: str | None
    node: str | None
    availability_zone: str | None
    cell_name: str
    created_at: str
    terminated_at: str
    deleted_at: str
    launched_at: str
    image_ref_url: str | None
    os_type: str | None
    kernel_id: str | None
    ramdisk_id: str | None
    state: str | None
    state_description: str
    progress: Int32 | str
    access_ip_v4: str | None
    access_ip_v6: str | None
    image_meta: dict[str, Any]
    metadata: dict[str, str]
    fixed_ips: list[dict[str, Any]] | Unset = _UNSET
    message: str | Unset = _UNSET
    code: Int32 | Unset = _UNSET
    # The exception object itself, as oslo.messaging's serializer renders it.
    exception: Any = _UNSET


class LegacyInstanceImagePayload(LegacyInstancePayload, kw_only=True):
    """``compute.instance.create.*`` and ``rebuild.*``: with the name of the image booted from."""

    image_name: str | Unset | None = _UNSET


class LegacyInstanceRescuePayload(LegacyInstancePayload, kw_only=True):
    """``compute.instance.rescue.*``: with the name of the rescue image."""

    rescue_image_name: str | Unset | None = _UNSET


class LegacyInstanceResizePrepPayload(LegacyInstancePayload, kw_only=True):
    """``compute.instance.resize.prep.*``: with the flavor being resized to."""

    new_instance_type: str | Unset = _UNSET
    new_instance_type_id: Int32 | Unset | None = _UNSET


class LegacyInstanceVolumePayload(LegacyInstancePayload, kw_only=True):
    """``compute.instance.volume.attach``/``detach``: with the volume."""

    volume_id: str


class LegacyInstanceUpdatePayload(LegacyInstancePayload, kw_only=True):
    """``compute.instance.update``: with the state change and the current audit period."""

    old_state: str | None
    old_task_state: str | None
    new_task_state: str | None
    audit_period_beginning: str
    audit_period_ending: str
    old_display_name: str | Unset | None = _UNSET


class LegacyInstanceExistsPayload(LegacyInstancePayload, kw_only=True):
    """``compute.instance.exists``: with the audit period it covers."""

    audit_period_beginning: str
    audit_period_ending: str


_SE = ("start", "end")

#: Event suffix (after ``compute.instance.``) -> phases (None: no phase) and payload class.
_EVENTS: dict[str, tuple[tuple[str | None, ...], type[LegacyInstancePayload]]] = {
    "create": (("start", "end", "error"), LegacyInstanceImagePayload),
    "create_ip": (_SE, LegacyInstancePayload),
    "delete_ip": (_SE, LegacyInstancePayload),
    "delete": (_SE, LegacyInstancePayload),
    "soft_delete": (_SE, LegacyInstancePayload),
    "force_delete": (_SE, LegacyInstancePayload),
    "evacuate": ((None,), LegacyInstancePayload),
    "exists": ((None,), LegacyInstanceExistsPayload),
    "update": ((None,), LegacyInstanceUpdatePayload),
    "finish_resize": (_SE, LegacyInstancePayload),
    "live.migration.abort": (_SE, LegacyInstancePayload),
    "live.migration.force.complete": (_SE, LegacyInstancePayload),
    "live_migration.pre": (_SE, LegacyInstancePayload),
    "live_migration._post": (_SE, LegacyInstancePayload),
    "live_migration.post.dest": (_SE, LegacyInstancePayload),
    "live_migration._rollback": (_SE, LegacyInstancePayload),
    "live_migration.rollback.dest": (_SE, LegacyInstancePayload),
    "pause": (_SE, LegacyInstancePayload),
    "unpause": (_SE, LegacyInstancePayload),
    "power_off": (_SE, LegacyInstancePayload),
    "power_on": (_SE, LegacyInstancePayload),
    "reboot": (("start", "end", "error"), LegacyInstancePayload),
    "rebuild": (("start", "end", "error", "scheduled"), LegacyInstanceImagePayload),
    "rescue": (_SE, LegacyInstanceRescuePayload),
    "unrescue": (_SE, LegacyInstancePayload),
    "resize": (("start", "end", "error"), LegacyInstancePayload),
    "resize.prep": (_SE, LegacyInstanceResizePrepPayload),
    "resize.confirm": (_SE, LegacyInstancePayload),
    "resize.revert": (_SE, LegacyInstancePayload),
    "restore": (_SE, LegacyInstancePayload),
    "resume": (_SE, LegacyInstancePayload),
    "suspend": (_SE, LegacyInstancePayload),
    "shelve": (_SE, LegacyInstancePayload),
    "shelve_offload": (_SE, LegacyInstancePayload),
    "unshelve": (_SE, LegacyInstancePayload),
    "shutdown": (_SE, LegacyInstancePayload),
    "snapshot": (_SE, LegacyInstancePayload),
    "trigger_crash_dump": (_SE, LegacyInstancePayload),
    "volume.attach": ((None,), LegacyInstanceVolumePayload),
    "volume.detach": ((None,), LegacyInstanceVolumePayload),
}

#: Every legacy event type in the catalog.
LEGACY_EVENT_TYPES: tuple[str, ...] = tuple(
    f"compute.instance.{suffix}.{phase}" if phase else f"compute.instance.{suffix}"
    for suffix, (phases, _payload) in _EVENTS.items()
    for phase in phases
)

for _suffix, (_phases, _payload) in _EVENTS.items():
    for _phase in _phases:
        event(
            f"compute.instance.{_suffix}.{_phase}" if _phase else f"compute.instance.{_suffix}",
            _payload,
            priority="ERROR" if _phase == "error" else "INFO",
            source="compute",
        )
