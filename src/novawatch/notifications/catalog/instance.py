"""``instance.*``: the versioned notifications about a server and the payloads nested in them.

``InstancePayload`` holds what every instance notification carries; it is never sent on its own. Each
concrete subclass has its own version history, so each declares its own ``SINCE``: a field that joined
``InstancePayload`` late is optional in the base class and re-declared as required by every subclass
that already had it at its ``MAJOR.0`` (or at the first version it was published with).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from novawatch.notifications.catalog.common import AuditPeriodPayload, ExceptionPayload
from novawatch.notifications.catalog.flavor import FlavorPayload
from novawatch.notifications.catalog.keypair import KeypairPayload
from novawatch.notifications.catalog.table import event
from novawatch.objects import NovaObject, Payload, Since, register
from novawatch.objects.fields import (
    UUID,
    DiskConfig,
    InstancePowerState,
    InstanceState,
    InstanceTaskState,
    Int32,
    IPAddress,
    MACAddress,
    check_ip,
)

_UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


# --- payloads nested in instance payloads ---------------------------------------------------------


@register
class IpPayload(Payload, kw_only=True):
    """One fixed IP of one of the instance's ports."""

    VERSION = "1.0"

    address: IPAddress
    device_name: str | None
    label: str
    mac: MACAddress
    meta: dict[str, str]
    port_uuid: UUID | None
    version: Int32

    def __post_init__(self) -> None:
        check_ip(self.address)


@register
class BlockDevicePayload(Payload, kw_only=True):
    """A volume attached to the instance (Nova lists only mappings that have a volume)."""

    VERSION = "1.0"
    SCHEMA = {
        name: ("bdm", name) for name in ("device_name", "boot_index", "delete_on_termination", "volume_id", "tag")
    }

    boot_index: Int32 | None
    delete_on_termination: bool = False
    device_name: str | None
    tag: str | None
    volume_id: UUID


@register
class SharePayload(Payload, kw_only=True):
    """A Manila share mapped to the instance."""

    VERSION = "1.0"
    SCHEMA = {
        "share_mapping_uuid": ("share", "uuid"),
        "share_id": ("share", "share_id"),
        "status": ("share", "status"),
        "tag": ("share", "tag"),
    }

    # Nova's code leaves it out as possibly sensitive, but its published samples carry it.
    export_location: str | Unset = _UNSET
    share_id: UUID
    share_mapping_uuid: UUID
    status: str
    tag: str


@register
class InstanceStateUpdatePayload(Payload, kw_only=True):
    """The vm and task states before and after the change an ``instance.update`` reports."""

    VERSION = "1.0"

    new_task_state: str | None
    old_state: str | None
    old_task_state: str | None
    state: str | None


# --- the instance payloads ------------------------------------------------------------------------


class InstancePayload(Payload, kw_only=True):
    """What every instance notification carries; the base of the concrete payloads below."""

    VERSION = "1.9"
    SCHEMA = {
        "uuid": ("instance", "uuid"),
        "user_id": ("instance", "user_id"),
        "tenant_id": ("instance", "project_id"),
        "reservation_id": ("instance", "reservation_id"),
        "display_name": ("instance", "display_name"),
        "display_description": ("instance", "display_description"),
        "host_name": ("instance", "hostname"),
        "host": ("instance", "host"),
        "node": ("instance", "node"),
        "os_type": ("instance", "os_type"),
        "architecture": ("instance", "architecture"),
        "availability_zone": ("instance", "availability_zone"),
        "image_uuid": ("instance", "image_ref"),
        "key_name": ("instance", "key_name"),
        "kernel_id": ("instance", "kernel_id"),
        "ramdisk_id": ("instance", "ramdisk_id"),
        "created_at": ("instance", "created_at"),
        "launched_at": ("instance", "launched_at"),
        "terminated_at": ("instance", "terminated_at"),
        "deleted_at": ("instance", "deleted_at"),
        "updated_at": ("instance", "updated_at"),
        "state": ("instance", "vm_state"),
        "power_state": ("instance", "power_state"),
        "task_state": ("instance", "task_state"),
        "progress": ("instance", "progress"),
        "metadata": ("instance", "metadata"),
        "locked": ("instance", "locked"),
        "auto_disk_config": ("instance", "auto_disk_config"),
    }
    SINCE = {
        "locked": Since(1, default=False),
        "display_description": Since(1),
        "auto_disk_config": Since(2, default="MANUAL"),
        "key_name": Since(3),
        "block_devices": Since(4),
        "updated_at": Since(5),
        "request_id": Since(6),
        "action_initiator_user": Since(7),
        "action_initiator_project": Since(7),
        "locked_reason": Since(8),
        "shares": Since(9),
    }

    # Fields in Nova's wire order (alphabetical): msgspec decodes fields that arrive in declaration
    # order without searching for them, and this is the payload every instance notification carries.
    action_initiator_project: str | Unset | None = _UNSET
    action_initiator_user: str | Unset | None = _UNSET
    architecture: str | None
    auto_disk_config: DiskConfig | Unset = _UNSET
    availability_zone: str | None
    # None: Nova was told not to look the block devices up (not "no volumes").
    block_devices: list[NovaObject[BlockDevicePayload]] | Unset | None = _UNSET
    created_at: datetime | None
    deleted_at: datetime | None
    display_description: str | Unset | None = _UNSET
    display_name: str | None
    flavor: NovaObject[FlavorPayload]
    host: str | None
    host_name: str | None
    image_uuid: str | None
    ip_addresses: list[NovaObject[IpPayload]]
    kernel_id: str | None
    key_name: str | Unset | None = _UNSET
    launched_at: datetime | None
    locked: bool | Unset = _UNSET
    locked_reason: str | Unset | None = _UNSET
    metadata: dict[str, str]
    node: str | None
    os_type: str | None
    power_state: InstancePowerState | None
    progress: Int32 | None
    ramdisk_id: str | None
    request_id: str | Unset | None = _UNSET
    reservation_id: str | None
    shares: list[NovaObject[SharePayload]] | Unset | None = _UNSET
    state: InstanceState | None
    task_state: InstanceTaskState | None
    tenant_id: str | None
    terminated_at: datetime | None
    updated_at: datetime | Unset | None = _UNSET
    user_id: str | None
    uuid: UUID


class InstanceActionPayload(InstancePayload, kw_only=True):
    """An action on an instance (pause, reboot, live migration ...), with the fault if it failed."""

    VERSION = "1.9"

    fault: NovaObject[ExceptionPayload] | None


class InstanceActionVolumePayload(InstanceActionPayload, kw_only=True):
    """``instance.volume_attach``/``volume_detach``: the action and the volume."""

    VERSION = "1.7"
    SINCE = {
        "key_name": Since(1),
        "block_devices": Since(2),
        "updated_at": Since(3),
        "request_id": Since(4),
        "action_initiator_user": Since(5),
        "action_initiator_project": Since(5),
        "locked_reason": Since(6),
        "shares": Since(7),
    }

    auto_disk_config: DiskConfig
    display_description: str | None
    locked: bool
    volume_id: UUID


class InstanceActionVolumeSwapPayload(InstanceActionPayload, kw_only=True):
    """``instance.volume_swap``: the action and the volume swapped out and in."""

    VERSION = "1.9"

    new_volume_id: UUID
    old_volume_id: UUID


class InstanceCreatePayload(InstanceActionPayload, kw_only=True):
    """``instance.create``: first published at 1.2, with keypairs, tags and trusted certificates added since."""

    VERSION = "1.13"
    SINCE = {
        "keypairs": Since(3, factory=list),
        "key_name": Since(4),
        "block_devices": Since(5),
        "tags": Since(6, factory=list),
        "updated_at": Since(7),
        "request_id": Since(8),
        "trusted_image_certificates": Since(9),
        "action_initiator_user": Since(10),
        "action_initiator_project": Since(10),
        "instance_name": Since(11),
        "locked_reason": Since(12),
        "shares": Since(13),
    }

    auto_disk_config: DiskConfig
    display_description: str | None
    instance_name: str | Unset | None = _UNSET
    keypairs: list[NovaObject[KeypairPayload]] | Unset = _UNSET
    locked: bool
    tags: list[str] | Unset = _UNSET
    trusted_image_certificates: list[str] | Unset | None = _UNSET


class InstanceActionResizePrepPayload(InstanceActionPayload, kw_only=True):
    """``instance.resize_prep``: the action and the flavor being resized to."""

    VERSION = "1.4"
    SINCE = {
        "request_id": Since(1),
        "action_initiator_user": Since(2),
        "action_initiator_project": Since(2),
        "locked_reason": Since(3),
        "shares": Since(4),
    }

    auto_disk_config: DiskConfig
    block_devices: list[NovaObject[BlockDevicePayload]] | None
    display_description: str | None
    key_name: str | None
    locked: bool
    new_flavor: NovaObject[FlavorPayload] | None
    updated_at: datetime | None


class InstanceActionRescuePayload(InstanceActionPayload, kw_only=True):
    """``instance.rescue``: the action and the rescue image."""

    VERSION = "1.4"
    SINCE = {
        "request_id": Since(1),
        "action_initiator_user": Since(2),
        "action_initiator_project": Since(2),
        "locked_reason": Since(3),
        "shares": Since(4),
    }

    auto_disk_config: DiskConfig
    block_devices: list[NovaObject[BlockDevicePayload]] | None
    display_description: str | None
    key_name: str | None
    locked: bool
    rescue_image_ref: UUID | None
    updated_at: datetime | None


class InstanceActionRebuildPayload(InstanceActionPayload, kw_only=True):
    """``instance.rebuild`` and ``rebuild_scheduled``: first published at 1.7, with the trusted certificates."""

    VERSION = "1.10"
    SINCE = {
        "action_initiator_user": Since(8),
        "action_initiator_project": Since(8),
        "locked_reason": Since(9),
        "shares": Since(10),
    }

    auto_disk_config: DiskConfig
    block_devices: list[NovaObject[BlockDevicePayload]] | None
    display_description: str | None
    key_name: str | None
    locked: bool
    request_id: str | None
    trusted_image_certificates: list[str] | None
    updated_at: datetime | None


class InstanceActionSnapshotPayload(InstanceActionPayload, kw_only=True):
    """``instance.snapshot``: first published at 1.6, with the id of the snapshot image."""

    VERSION = "1.10"
    SINCE = {
        "request_id": Since(7),
        "action_initiator_user": Since(8),
        "action_initiator_project": Since(8),
        "locked_reason": Since(9),
        "shares": Since(10),
    }

    auto_disk_config: DiskConfig
    block_devices: list[NovaObject[BlockDevicePayload]] | None
    display_description: str | None
    key_name: str | None
    locked: bool
    snapshot_image_id: UUID
    updated_at: datetime | None


class InstanceActionSharePayload(InstanceActionPayload, kw_only=True):
    """``instance.share_attach``/``share_detach``: the action and the share."""

    VERSION = "1.0"
    SINCE = {}

    action_initiator_project: str | None
    action_initiator_user: str | None
    auto_disk_config: DiskConfig
    block_devices: list[NovaObject[BlockDevicePayload]] | None
    display_description: str | None
    key_name: str | None
    locked: bool
    locked_reason: str | None
    request_id: str | None
    share_id: UUID
    shares: list[NovaObject[SharePayload]] | None
    updated_at: datetime | None


class InstanceUpdatePayload(InstancePayload, kw_only=True):
    """``instance.update``: the instance, its state change, the audit period and its tags."""

    VERSION = "2.1"
    SINCE = {"shares": Since(1)}

    action_initiator_project: str | None
    action_initiator_user: str | None
    audit_period: NovaObject[AuditPeriodPayload]
    auto_disk_config: DiskConfig
    block_devices: list[NovaObject[BlockDevicePayload]] | None
    display_description: str | None
    key_name: str | None
    locked: bool
    locked_reason: str | None
    old_display_name: str | None
    request_id: str | None
    state_update: NovaObject[InstanceStateUpdatePayload]
    tags: list[str]
    updated_at: datetime | None


class InstanceExistsPayload(InstancePayload, kw_only=True):
    """``instance.exists``: the periodic usage audit of an instance."""

    VERSION = "2.1"
    SINCE = {"shares": Since(1)}

    action_initiator_project: str | None
    action_initiator_user: str | None
    audit_period: NovaObject[AuditPeriodPayload]
    auto_disk_config: DiskConfig
    block_devices: list[NovaObject[BlockDevicePayload]] | None
    display_description: str | None
    key_name: str | None
    locked: bool
    locked_reason: str | None
    request_id: str | None
    updated_at: datetime | None


# --- the events -------------------------------------------------------------------------------------

_START_END = ("start", "end")
_START_END_ERROR = ("start", "end", "error")

#: Actions sent with ``InstanceActionPayload``, with their phases (``None``: no phase) and the sender.
_ACTIONS: dict[str, tuple[tuple[str | None, ...], str]] = {
    "delete": (_START_END, "nova-compute"),
    "soft_delete": (_START_END, "nova-compute"),
    "pause": (_START_END, "nova-compute"),
    "unpause": (_START_END, "nova-compute"),
    "suspend": (_START_END, "nova-compute"),
    "resume": (_START_END, "nova-compute"),
    "power_on": (_START_END, "nova-compute"),
    "power_off": (_START_END, "nova-compute"),
    "reboot": (_START_END_ERROR, "nova-compute"),
    "shutdown": (_START_END, "nova-compute"),
    "resize": (_START_END_ERROR, "nova-compute"),
    "resize_finish": (_START_END, "nova-compute"),
    "resize_confirm": (_START_END, "nova-compute"),
    "resize_revert": (_START_END, "nova-compute"),
    "interface_attach": (_START_END_ERROR, "nova-compute"),
    "interface_detach": (_START_END, "nova-compute"),
    "shelve": (_START_END, "nova-compute"),
    "shelve_offload": (_START_END, "nova-compute"),
    "unshelve": (_START_END, "nova-compute"),
    "restore": (_START_END, "nova-compute"),
    "trigger_crash_dump": (_START_END, "nova-compute"),
    "unrescue": (_START_END, "nova-compute"),
    "live_migration_pre": (_START_END, "nova-compute"),
    "live_migration_post": (_START_END, "nova-compute"),
    "live_migration_post_dest": (_START_END, "nova-compute"),
    "live_migration_rollback": (_START_END, "nova-compute"),
    "live_migration_rollback_dest": (_START_END, "nova-compute"),
    "live_migration_abort": (_START_END, "nova-compute"),
    "live_migration_force_complete": (_START_END, "nova-compute"),
    "evacuate": ((None,), "nova-api"),
    "lock": ((None,), "nova-api"),
    "unlock": ((None,), "nova-api"),
}

#: Actions with a payload of their own.
_SPECIAL: dict[str, tuple[type[InstancePayload], tuple[str | None, ...], str]] = {
    "create": (InstanceCreatePayload, _START_END_ERROR, "nova-compute"),
    "rebuild": (InstanceActionRebuildPayload, _START_END_ERROR, "nova-compute"),
    "rebuild_scheduled": (InstanceActionRebuildPayload, (None,), "nova-conductor"),
    "rescue": (InstanceActionRescuePayload, _START_END, "nova-compute"),
    "resize_prep": (InstanceActionResizePrepPayload, _START_END, "nova-compute"),
    "snapshot": (InstanceActionSnapshotPayload, _START_END, "nova-compute"),
    "volume_attach": (InstanceActionVolumePayload, _START_END_ERROR, "nova-compute"),
    "volume_detach": (InstanceActionVolumePayload, _START_END, "nova-compute"),
    "volume_swap": (InstanceActionVolumeSwapPayload, _START_END_ERROR, "nova-compute"),
    "share_attach": (InstanceActionSharePayload, _START_END_ERROR, "nova-api"),
    "share_detach": (InstanceActionSharePayload, _START_END_ERROR, "nova-api"),
    "update": (InstanceUpdatePayload, (None,), "nova-compute"),
    "exists": (InstanceExistsPayload, (None,), "nova-compute"),
}


def _register_events() -> None:
    table: dict[str, tuple[type[InstancePayload], tuple[str | None, ...], str]] = {
        action: (InstanceActionPayload, phases, source) for action, (phases, source) in _ACTIONS.items()
    }
    table.update(_SPECIAL)
    for action, (payload, phases, source) in table.items():
        for phase in phases:
            name = f"instance.{action}.{phase}" if phase else f"instance.{action}"
            event(name, payload, priority="ERROR" if phase == "error" else "INFO", source=source)


_register_events()
