"""Field types of versioned payloads, as msgspec type annotations.

Each alias is what a payload field is declared with; msgspec validates it on decode and
encodes it back to Nova's primitive form. Integers carry the bounds of the database column Nova keeps
them in; enums are text with Nova's values, checked by :class:`EnumFormat` (an unknown one is noted,
not rejected).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
MAC_PATTERN = r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$"


class TextFormat:
    """A format of text fields that :class:`~novawatch.objects.base.NovaObject` checks, not msgspec.

    The same uuids and MAC addresses come back in notification after notification, and a set lookup
    costs a fraction of msgspec's regular-expression call; so each distinct value is matched once and
    remembered (up to ``limit`` values, then the memory starts afresh).
    """

    __slots__ = ("_match", "known", "limit", "name")

    def __init__(self, name: str, pattern: str, limit: int = 1 << 16) -> None:
        self.name = name
        self.limit = limit
        self._match = re.compile(pattern).fullmatch
        #: Values already found good; absent (None, UNSET) values of optional fields are always good.
        self.known: set[object] = {None, msgspec.UNSET}

    def check(self, fields: tuple[str, ...], values: tuple[object, ...]) -> None:
        """Remember each value that matches; ``ValueError`` naming the first field that does not."""
        known = self.known
        for field, value in zip(fields, values, strict=False):
            if value in known:
                continue
            if not isinstance(value, str) or self._match(value) is None:
                raise ValueError(f"Expected {self.name}, got {shorten(value)} (field `{field}`)")
            if len(known) >= self.limit:
                known.clear()
                known.update((None, msgspec.UNSET))
            known.add(value)


class EnumFormat(TextFormat):
    """Nova's enum field: text from a set of values that Nova extends in minor versions.

    A value this reader does not know is kept as text, not rejected (a newer Nova may send it within a
    major version this reader knows); :meth:`check` notes it for the decoder to report as a warning.
    """

    __slots__ = ("values",)

    def __init__(self, name: str, values: tuple[str, ...]) -> None:
        self.name = name
        self.limit = 0
        self.values = values
        self.known = {None, msgspec.UNSET, *values}

    def check(self, fields: tuple[str, ...], values: tuple[object, ...]) -> None:
        """Note each unknown value (``fields`` are ``Payload.field`` names); never raises."""
        for field, value in zip(fields, values, strict=False):
            if value not in self.known:
                note(f"unknown {self.name} value {shorten(value)} in `{field}`, kept as text")


def shorten(value: object, limit: int = 64) -> str:
    """``repr`` of a value for a message: escaped (one line, printable) and cut at ``limit`` characters."""
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit] + "..."
    return repr(value)


class _Notes(threading.local):
    def __init__(self) -> None:
        self.items: list[str] = []


#: What decoding noted in this thread (unknown enum values) and nobody has taken yet; bounded.
NOTES = _Notes()
MAX_NOTES = 32


def note(text: str) -> None:
    """Record a warning about the notification being decoded in this thread (dropped past ``MAX_NOTES``)."""
    items = NOTES.items
    if len(items) < MAX_NOTES:
        items.append(text)


def take_notes() -> list[str]:
    """The warnings noted in this thread since the last call, oldest first; forgets them."""
    items = NOTES.items
    if not items:
        return []
    NOTES.items = []
    return items


UUID_FORMAT = TextFormat("a UUID", UUID_PATTERN)
MAC_FORMAT = TextFormat("a MAC address", MAC_PATTERN)

#: A UUID in its canonical text form, kept as ``str`` so it travels to the database and model untouched.
UUID = Annotated[str, msgspec.Meta(description="UUID"), UUID_FORMAT]
#: An aware date-time; encoded the way Nova writes it (``2012-10-29T13:42:11Z``).
DateTime = datetime
#: An IPv4 or IPv6 address as text; payloads holding one call :func:`check_ip` in ``__post_init__``.
IPAddress = Annotated[str, msgspec.Meta(description="IP address")]
#: A MAC address (Nova's ``MACAddressField``): six colon-separated hex octets.
MACAddress = Annotated[str, msgspec.Meta(description="MAC address"), MAC_FORMAT]
#: A JSON object with arbitrary values (Nova's ``DictOfNullableStringsField`` and friends).
AnyDict = dict[str, Any]
StringDict = dict[str, str]
NullableStringDict = dict[str, str | None]
StringList = list[str]

# Nova's IntegerField has no bounds of its own: what bounds a value is the database column it comes from.
_INT32 = 1 << 31
_INT64 = 1 << 63
#: Nova's ``Integer`` columns (32-bit signed, ``nova.db.constants.MAX_INT``): most integers Nova notifies.
Int32 = Annotated[int, msgspec.Meta(ge=-_INT32, le=_INT32 - 1, description="integer (32-bit)")]
#: A size or count in an ``Integer`` column that Nova never lets go negative (flavor sizes, node capacity
#: and usage, instance counts).
Count32 = Annotated[int, msgspec.Meta(ge=0, le=_INT32 - 1, description="non-negative integer (32-bit)")]
#: Nova's ``BigInteger`` columns (image sizes, volume usage counters) and 64-bit counters (metric values).
Int64 = Annotated[int, msgspec.Meta(ge=-_INT64, le=_INT64 - 1, description="integer (64-bit)")]

NotificationPriority = Annotated[str, EnumFormat("NotificationPriority", (
    "audit", "critical", "debug", "info", "error", "sample", "warn",
))]
NotificationPhase = Annotated[str, EnumFormat("NotificationPhase", ("start", "end", "error", "progress"))]
NotificationSource = Annotated[str, EnumFormat("NotificationSource", (
    "nova-compute", "nova-api", "nova-conductor", "nova-scheduler", "nova-network", "nova-consoleauth",
    "nova-cells", "nova-console", "nova-metadata",
))]

INSTANCE_STATES: tuple[str, ...] = (
    "active", "building", "paused", "suspended", "stopped", "rescued", "resized", "soft-delete", "deleted", "error",
    "shelved", "shelved_offloaded",
)
InstanceState = Annotated[str, EnumFormat("InstanceState", INSTANCE_STATES)]

TASK_STATES: tuple[str, ...] = (
    "scheduling", "block_device_mapping", "networking", "spawning", "image_snapshot", "image_snapshot_pending",
    "image_pending_upload", "image_uploading", "image_backup", "updating_password", "resize_prep",
    "resize_migrating", "resize_migrated", "resize_finish", "resize_reverting", "resize_confirming", "rebooting",
    "reboot_pending", "reboot_started", "rebooting_hard", "reboot_pending_hard", "reboot_started_hard", "pausing",
    "unpausing", "suspending", "resuming", "powering-off", "powering-on", "rescuing", "unrescuing", "rebuilding",
    "rebuild_block_device_mapping", "rebuild_spawning", "migrating", "deleting", "soft-deleting", "restoring",
    "shelving", "shelving_image_pending_upload", "shelving_image_uploading", "shelving_offloading", "unshelving",
)
InstanceTaskState = Annotated[str, EnumFormat("InstanceTaskState", TASK_STATES)]

POWER_STATES: tuple[str, ...] = (
    "pending", "running", "paused", "shutdown", "crashed", "suspended",
)
InstancePowerState = Annotated[str, EnumFormat("InstancePowerState", POWER_STATES)]


def check_ip(value: str | None) -> None:
    """Raise ``ValueError`` naming the value unless it is an IPv4/IPv6 address (or None)."""
    if value is not None:
        # inet_pton is ~20x cheaper than ipaddress and settles the common cases on the decode hot path;
        # ipaddress has the last word on what it rejects (scoped IPv6 addresses, for one).
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in value else socket.AF_INET, value)
            return
        except (OSError, ValueError):
            pass
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

# Enums of the catalog's payloads, with the values Nova 34 allows.
DiskConfig = Annotated[str, EnumFormat("DiskConfig", ("MANUAL", "AUTO"))]
MonitorMetricType = Annotated[str, EnumFormat("MonitorMetricType", (
    "cpu.frequency", "cpu.user.time", "cpu.kernel.time", "cpu.idle.time", "cpu.iowait.time", "cpu.user.percent",
    "cpu.kernel.percent", "cpu.idle.percent", "cpu.iowait.percent", "cpu.percent", "numa.membw.max",
    "numa.membw.current",
))]
CPUAllocationPolicy = Annotated[str, EnumFormat("CPUAllocationPolicy", ("dedicated", "shared", "mixed"))]
CPUThreadAllocationPolicy = Annotated[str, EnumFormat("CPUThreadAllocationPolicy", ("prefer", "isolate", "require"))]
CPUEmulatorThreadsPolicy = Annotated[str, EnumFormat("CPUEmulatorThreadsPolicy", ("share", "isolate"))]
PCINUMAAffinityPolicy = Annotated[str, EnumFormat("PCINUMAAffinityPolicy", (
    "required", "legacy", "preferred", "socket",
))]
Architecture = Annotated[str, EnumFormat("Architecture", (
    "alpha", "armv6", "armv7l", "armv7b", "aarch64", "cris", "i686", "ia64", "lm32", "m68k", "microblaze",
    "microblazeel", "mips", "mipsel", "mips64", "mips64el", "openrisc", "parisc", "parisc64", "ppc", "ppcle",
    "ppc64", "ppc64le", "ppcemb", "s390", "s390x", "sh4", "sh4eb", "sparc", "sparc64", "unicore32", "x86_64",
    "xtensa", "xtensaeb",
))]
BlockDeviceType = Annotated[str, EnumFormat("BlockDeviceType", ("cdrom", "disk", "floppy", "fs", "lun"))]
BlockDeviceEncryptionFormatType = Annotated[str, EnumFormat("BlockDeviceEncryptionFormatType", (
    "plain", "luks", "luksv2",
))]
ConfigDrivePolicy = Annotated[str, EnumFormat("ConfigDrivePolicy", ("optional", "mandatory"))]
DiskBus = Annotated[str, EnumFormat("DiskBus", ("fdc", "ide", "sata", "scsi", "usb", "virtio", "xen", "lxc", "uml"))]
FirmwareType = Annotated[str, EnumFormat("FirmwareType", ("uefi", "bios"))]
HVType = Annotated[str, EnumFormat("HVType", (
    "baremetal", "bhyve", "docker", "fake", "hyperv", "ironic", "kqemu", "kvm", "lxc", "lxd", "openvz", "parallels",
    "phyp", "qemu", "test", "uml", "vbox", "vz", "vmware", "xen", "zvm", "prsm",
))]
ImageSignatureHashType = Annotated[str, EnumFormat("ImageSignatureHashType", (
    "SHA-224", "SHA-256", "SHA-384", "SHA-512",
))]
ImageSignatureKeyType = Annotated[str, EnumFormat("ImageSignatureKeyType", (
    "DSA", "ECC_SECP384R1", "ECC_SECP521R1", "ECC_SECT409K1", "ECC_SECT409R1", "ECC_SECT571K1", "ECC_SECT571R1",
    "RSA-PSS",
))]
InputBus = Annotated[str, EnumFormat("InputBus", ("usb", "virtio"))]
OSType = Annotated[str, EnumFormat("OSType", ("linux", "windows"))]
RNGModel = Annotated[str, EnumFormat("RNGModel", ("virtio",))]
TPMModel = Annotated[str, EnumFormat("TPMModel", ("tpm-tis", "tpm-crb"))]
TPMVersion = Annotated[str, EnumFormat("TPMVersion", ("1.2", "2.0"))]
MemEncryptionModel = Annotated[str, EnumFormat("MemEncryptionModel", (
    "amd-sev", "amd-sev-es", "amd-sev-snp", "intel-tdx",
))]
MaxPhysAddrMode = Annotated[str, EnumFormat("MaxPhysAddrMode", ("passthrough", "emulate"))]
SCSIModel = Annotated[str, EnumFormat("SCSIModel", (
    "buslogic", "ibmvscsi", "lsilogic", "lsisas1068", "lsisas1078", "virtio-scsi", "vmpvscsi",
))]
SecureBoot = Annotated[str, EnumFormat("SecureBoot", ("required", "disabled", "optional"))]
VideoModel = Annotated[str, EnumFormat("VideoModel", (
    "cirrus", "qxl", "vga", "vmvga", "xen", "virtio", "gop", "none", "bochs",
))]
VIFModel = Annotated[str, EnumFormat("VIFModel", (
    "virtio", "ne2k_pci", "pcnet", "rtl8139", "e1000", "e1000e", "netfront", "spapr-vlan", "lan9118", "igb",
    "sriov", "vmxnet", "vmxnet3",
))]
VIOMMUModel = Annotated[str, EnumFormat("VIOMMUModel", ("intel", "smmuv3", "virtio", "auto"))]
VMMode = Annotated[str, EnumFormat("VMMode", ("hvm", "xen", "uml", "exe"))]
WatchdogAction = Annotated[str, EnumFormat("WatchdogAction", ("none", "pause", "poweroff", "reset", "disabled"))]
PointerModel = Annotated[str, EnumFormat("PointerModel", ("usbtablet",))]
SoundModel = Annotated[str, EnumFormat("SoundModel", (
    "sb16", "es1370", "pcspk", "ac97", "ich6", "ich9", "usb", "virtio",
))]
USBControllerModel = Annotated[str, EnumFormat("USBControllerModel", ("none", "nec-xhci", "qemu-xhci"))]
