"""Field types of versioned payloads, as msgspec type annotations.

Each alias is what a payload field is declared with; msgspec validates it on decode and
encodes it back to Nova's primitive form. Integers carry the bounds of the database column Nova keeps
them in; enums are ``Literal`` types holding Nova's values (what a value outside them becomes: see
:mod:`novawatch.objects.lenient`).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import typing
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

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


class EnumFormat:
    """What an enum field (a ``Literal`` of Nova's values) becomes in a payload's lenient twin
    (:mod:`novawatch.objects.lenient`): ``Annotated[str, EnumFormat(...)]``, any text.

    Nova extends its enums in minor versions, so a value this reader does not know is kept rather than
    rejected; :func:`novawatch.objects.enums.unknown_values` finds the values not in ``values``.
    """

    __slots__ = ("known", "name", "values")

    def __init__(self, name: str, values: tuple[str, ...]) -> None:
        self.name = name
        self.values = values
        #: ``values`` plus what an optional field holds when it has none.
        self.known: frozenset[object] = frozenset((None, msgspec.UNSET, *values))


def shorten(value: object, limit: int = 64) -> str:
    """``repr`` of a value for a message: escaped (one line, printable) and cut at ``limit`` characters."""
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit] + "..."
    return repr(value)


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
DiskConfig = Literal["MANUAL", "AUTO"]
MonitorMetricType = Literal[
    "cpu.frequency", "cpu.user.time", "cpu.kernel.time", "cpu.idle.time", "cpu.iowait.time",
    "cpu.user.percent", "cpu.kernel.percent", "cpu.idle.percent", "cpu.iowait.percent", "cpu.percent",
    "numa.membw.max", "numa.membw.current",
]
CPUAllocationPolicy = Literal["dedicated", "shared", "mixed"]
CPUThreadAllocationPolicy = Literal["prefer", "isolate", "require"]
CPUEmulatorThreadsPolicy = Literal["share", "isolate"]
PCINUMAAffinityPolicy = Literal["required", "legacy", "preferred", "socket"]
Architecture = Literal[
    "alpha", "armv6", "armv7l", "armv7b", "aarch64", "cris", "i686", "ia64", "lm32", "m68k", "microblaze",
    "microblazeel", "mips", "mipsel", "mips64", "mips64el", "openrisc", "parisc", "parisc64", "ppc", "ppcle",
    "ppc64", "ppc64le", "ppcemb", "s390", "s390x", "sh4", "sh4eb", "sparc", "sparc64", "unicore32", "x86_64",
    "xtensa", "xtensaeb",
]
BlockDeviceType = Literal["cdrom", "disk", "floppy", "fs", "lun"]
BlockDeviceEncryptionFormatType = Literal["plain", "luks", "luksv2"]
ConfigDrivePolicy = Literal["optional", "mandatory"]
DiskBus = Literal["fdc", "ide", "sata", "scsi", "usb", "virtio", "xen", "lxc", "uml"]
FirmwareType = Literal["uefi", "bios"]
HVType = Literal[
    "baremetal", "bhyve", "docker", "fake", "hyperv", "ironic", "kqemu", "kvm", "lxc", "lxd", "openvz",
    "parallels", "phyp", "qemu", "test", "uml", "vbox", "vz", "vmware", "xen", "zvm", "prsm",
]
ImageSignatureHashType = Literal["SHA-224", "SHA-256", "SHA-384", "SHA-512"]
ImageSignatureKeyType = Literal[
    "DSA", "ECC_SECP384R1", "ECC_SECP521R1", "ECC_SECT409K1", "ECC_SECT409R1", "ECC_SECT571K1",
    "ECC_SECT571R1", "RSA-PSS",
]
InputBus = Literal["usb", "virtio"]
OSType = Literal["linux", "windows"]
RNGModel = Literal["virtio"]
TPMModel = Literal["tpm-tis", "tpm-crb"]
TPMVersion = Literal["1.2", "2.0"]
MemEncryptionModel = Literal["amd-sev", "amd-sev-es", "amd-sev-snp", "intel-tdx"]
MaxPhysAddrMode = Literal["passthrough", "emulate"]
SCSIModel = Literal["buslogic", "ibmvscsi", "lsilogic", "lsisas1068", "lsisas1078", "virtio-scsi", "vmpvscsi"]
SecureBoot = Literal["required", "disabled", "optional"]
VideoModel = Literal["cirrus", "qxl", "vga", "vmvga", "xen", "virtio", "gop", "none", "bochs"]
VIFModel = Literal[
    "virtio", "ne2k_pci", "pcnet", "rtl8139", "e1000", "e1000e", "netfront", "spapr-vlan", "lan9118", "igb",
    "sriov", "vmxnet", "vmxnet3",
]
VIOMMUModel = Literal["intel", "smmuv3", "virtio", "auto"]
VMMode = Literal["hvm", "xen", "uml", "exe"]
WatchdogAction = Literal["none", "pause", "poweroff", "reset", "disabled"]
PointerModel = Literal["usbtablet"]
SoundModel = Literal["sb16", "es1370", "pcspk", "ac97", "ich6", "ich9", "usb", "virtio"]
USBControllerModel = Literal["none", "nec-xhci", "qemu-xhci"]


def enum_names() -> dict[Any, str]:
    """The enum types above by value, with their names (``Literal`` types are equal when their values are)."""
    return {value: name for name, value in globals().items()
            if typing.get_origin(value) is Literal and name[0].isupper()}
