"""Field types of versioned payloads, as msgspec type annotations.

Each alias is what a payload field is declared with; msgspec validates it on decode and
encodes it back to Nova's primitive form. Enums are ``Literal`` types holding Nova's values.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

#: A UUID in its canonical text form, kept as ``str`` so it travels to the database and model untouched.
UUID = Annotated[str, msgspec.Meta(pattern=UUID_PATTERN, description="UUID")]
#: An aware date-time; encoded the way Nova writes it (``2012-10-29T13:42:11Z``).
DateTime = datetime
#: An IPv4 or IPv6 address as text; payloads holding one call :func:`check_ip` in ``__post_init__``.
IPAddress = Annotated[str, msgspec.Meta(description="IP address")]
#: A JSON object with arbitrary values (Nova's ``DictOfNullableStringsField`` and friends).
AnyDict = dict[str, Any]
StringDict = dict[str, str]
NullableStringDict = dict[str, str | None]
StringList = list[str]

NotificationPriority = Literal["audit", "critical", "debug", "info", "error", "sample", "warn"]
NotificationPhase = Literal["start", "end", "error", "progress"]
NotificationSource = Literal[
    "nova-compute", "nova-api", "nova-conductor", "nova-scheduler", "nova-network",
    "nova-consoleauth", "nova-cells", "nova-console", "nova-metadata",
]

InstanceState = Literal[
    "active", "building", "paused", "suspended", "stopped", "rescued", "resized",
    "soft-delete", "deleted", "error", "shelved", "shelved_offloaded",
]
INSTANCE_STATES: tuple[str, ...] = InstanceState.__args__  # type: ignore[attr-defined]

InstanceTaskState = Literal[
    "scheduling", "block_device_mapping", "networking", "spawning", "image_snapshot",
    "image_snapshot_pending", "image_pending_upload", "image_uploading", "image_backup",
    "updating_password", "resize_prep", "resize_migrating", "resize_migrated", "resize_finish",
    "resize_reverting", "resize_confirming", "rebooting", "reboot_pending", "reboot_started",
    "rebooting_hard", "reboot_pending_hard", "reboot_started_hard", "pausing", "unpausing",
    "suspending", "resuming", "powering-off", "powering-on", "rescuing", "unrescuing",
    "rebuilding", "rebuild_block_device_mapping", "rebuild_spawning", "migrating", "deleting",
    "soft-deleting", "restoring", "shelving", "shelving_image_pending_upload",
    "shelving_image_uploading", "shelving_offloading", "unshelving",
]
TASK_STATES: tuple[str, ...] = InstanceTaskState.__args__  # type: ignore[attr-defined]

InstancePowerState = Literal["pending", "running", "paused", "shutdown", "crashed", "suspended"]
POWER_STATES: tuple[str, ...] = InstancePowerState.__args__  # type: ignore[attr-defined]


def check_ip(value: str | None) -> None:
    """Raise ``ValueError`` naming the value unless it is an IPv4/IPv6 address (or None)."""
    if value is not None:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None


def nova_time(value: datetime | None) -> datetime | None:
    """Normalise a date-time to what Nova puts on the wire: UTC, whole seconds."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset():
        value = value.astimezone(UTC)
    return value.replace(microsecond=0) if value.microsecond else value
