"""Image metadata, nested in request specs: ``ImageMetaPayload`` and its ``ImageMetaPropsPayload``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self

import msgspec

from novawatch.objects import NovaObject, Payload, register
from novawatch.objects.fields import (
    UUID,
    Architecture,
    BlockDeviceEncryptionFormatType,
    BlockDeviceType,
    ConfigDrivePolicy,
    CPUAllocationPolicy,
    CPUThreadAllocationPolicy,
    DiskBus,
    FirmwareType,
    HVType,
    ImageSignatureHashType,
    ImageSignatureKeyType,
    InputBus,
    Int32,
    Int64,
    MaxPhysAddrMode,
    MemEncryptionModel,
    OSType,
    PCINUMAAffinityPolicy,
    PointerModel,
    RNGModel,
    SCSIModel,
    SecureBoot,
    SoundModel,
    TPMModel,
    TPMVersion,
    USBControllerModel,
    VideoModel,
    VIFModel,
    VIOMMUModel,
    VMMode,
    WatchdogAction,
)

_UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


class ImageMetaPropsPayload(Payload, kw_only=True):
    """The image's properties (Nova's ``ImageMetaProps``), each sent only when the image sets it.

    Every field is optional at every version, so there is no ``SINCE``: a property's absence means
    "not set on the image", not "older sender". 1.20 as Nova 34 sends it (1.20 added ``intel-tdx`` to
    ``hw_mem_encryption_model``); Nova's older published samples say 1.19, which a reader also accepts.
    """

    VERSION = "1.20"

    @classmethod
    def populate(cls, sources: Mapping[str, object], /, **values: Any) -> Self:
        """Copy the properties the source sets (missing or None ones are left out, as Nova does)."""
        props = sources["image_meta_props"]
        for field in _PROP_NAMES:
            value = getattr(props, field, None)
            if value is not None:
                values.setdefault(field, value)
        return cls(**values)

    hw_architecture: Architecture | Unset = _UNSET
    hw_emulation_architecture: Architecture | Unset = _UNSET
    hw_auto_disk_config: str | Unset = _UNSET
    hw_boot_menu: bool | Unset = _UNSET
    hw_cdrom_bus: DiskBus | Unset = _UNSET
    hw_cpu_cores: Int32 | Unset = _UNSET
    hw_cpu_sockets: Int32 | Unset = _UNSET
    hw_cpu_max_cores: Int32 | Unset = _UNSET
    hw_cpu_max_sockets: Int32 | Unset = _UNSET
    hw_cpu_max_threads: Int32 | Unset = _UNSET
    hw_cpu_policy: CPUAllocationPolicy | Unset = _UNSET
    hw_cpu_thread_policy: CPUThreadAllocationPolicy | Unset = _UNSET
    hw_cpu_realtime_mask: str | Unset = _UNSET
    hw_cpu_threads: Int32 | Unset = _UNSET
    hw_device_id: Int32 | Unset = _UNSET
    hw_disk_bus: DiskBus | Unset = _UNSET
    hw_disk_type: str | Unset = _UNSET
    hw_floppy_bus: DiskBus | Unset = _UNSET
    hw_firmware_type: FirmwareType | Unset = _UNSET
    hw_firmware_stateless: bool | Unset = _UNSET
    hw_input_bus: InputBus | Unset = _UNSET
    hw_ipxe_boot: bool | Unset = _UNSET
    hw_locked_memory: bool | Unset = _UNSET
    hw_machine_type: str | Unset = _UNSET
    hw_mem_encryption: bool | Unset = _UNSET
    hw_mem_encryption_model: MemEncryptionModel | Unset = _UNSET
    hw_mem_page_size: str | Unset = _UNSET
    hw_numa_nodes: Int32 | Unset = _UNSET
    hw_numa_cpus: list[list[Int32]] | Unset = _UNSET
    hw_numa_mem: list[Int32] | Unset = _UNSET
    hw_pci_numa_affinity_policy: PCINUMAAffinityPolicy | Unset = _UNSET
    hw_pointer_model: PointerModel | Unset = _UNSET
    hw_pmu: bool | Unset = _UNSET
    hw_qemu_guest_agent: bool | Unset = _UNSET
    hw_rescue_bus: DiskBus | Unset = _UNSET
    hw_rescue_device: BlockDeviceType | Unset = _UNSET
    hw_rng_model: RNGModel | Unset = _UNSET
    hw_time_hpet: bool | Unset = _UNSET
    hw_serial_port_count: Int32 | Unset = _UNSET
    hw_scsi_model: SCSIModel | Unset = _UNSET
    hw_video_model: VideoModel | Unset = _UNSET
    hw_video_ram: Int32 | Unset = _UNSET
    hw_vif_model: VIFModel | Unset = _UNSET
    hw_viommu_model: VIOMMUModel | Unset = _UNSET
    hw_vm_mode: VMMode | Unset = _UNSET
    hw_watchdog_action: WatchdogAction | Unset = _UNSET
    hw_vif_multiqueue_enabled: bool | Unset = _UNSET
    hw_tpm_model: TPMModel | Unset = _UNSET
    hw_tpm_version: TPMVersion | Unset = _UNSET
    hw_ephemeral_encryption: bool | Unset = _UNSET
    hw_ephemeral_encryption_format: BlockDeviceEncryptionFormatType | Unset = _UNSET
    hw_virtio_packed_ring: bool | Unset = _UNSET
    hw_maxphysaddr_mode: MaxPhysAddrMode | Unset = _UNSET
    hw_maxphysaddr_bits: Int32 | Unset = _UNSET
    hw_sound_model: SoundModel | Unset = _UNSET
    hw_usb_model: USBControllerModel | Unset = _UNSET
    hw_redirected_usb_ports: Int32 | Unset = _UNSET
    img_bittorrent: bool | Unset = _UNSET
    img_bdm_v2: bool | Unset = _UNSET
    img_block_device_mapping: list[dict[str, str | None]] | Unset = _UNSET
    img_cache_in_nova: bool | Unset = _UNSET
    img_compression_level: Int32 | Unset = _UNSET
    img_hv_requested_version: str | Unset = _UNSET
    img_hv_type: HVType | Unset = _UNSET
    img_config_drive: ConfigDrivePolicy | Unset = _UNSET
    img_linked_clone: bool | Unset = _UNSET
    img_mappings: list[dict[str, str | None]] | Unset = _UNSET
    img_owner_id: str | Unset = _UNSET
    img_root_device_name: str | Unset = _UNSET
    img_use_agent: bool | Unset = _UNSET
    img_version: Int32 | Unset = _UNSET
    img_signature: str | Unset = _UNSET
    img_signature_hash_method: ImageSignatureHashType | Unset = _UNSET
    img_signature_certificate_uuid: UUID | Unset = _UNSET
    img_signature_key_type: ImageSignatureKeyType | Unset = _UNSET
    img_hide_hypervisor_id: bool | Unset = _UNSET
    os_admin_user: str | Unset = _UNSET
    os_command_line: str | Unset = _UNSET
    os_distro: str | Unset = _UNSET
    os_require_quiesce: bool | Unset = _UNSET
    os_secure_boot: SecureBoot | Unset = _UNSET
    os_skip_agent_inject_files_at_boot: bool | Unset = _UNSET
    os_skip_agent_inject_ssh: bool | Unset = _UNSET
    os_type: OSType | Unset = _UNSET
    traits_required: list[str] | Unset = _UNSET


_PROP_NAMES: tuple[str, ...] = tuple(f.name for f in msgspec.structs.fields(ImageMetaPropsPayload))
ImageMetaPropsPayload.SCHEMA = {name: ("image_meta_props", name) for name in _PROP_NAMES}
register(ImageMetaPropsPayload)


@register
class ImageMetaPayload(Payload, kw_only=True):
    """An image as Glance describes it, with its properties."""

    VERSION = "1.0"
    SCHEMA = {
        name: ("image_meta", name)
        for name in (
            "id", "name", "status", "visibility", "protected", "checksum", "owner", "size", "virtual_size",
            "container_format", "disk_format", "created_at", "updated_at", "tags", "direct_url", "min_ram",
            "min_disk",
        )
    }

    id: UUID | None
    name: str | None
    status: str | None
    visibility: str | None
    protected: bool | None
    checksum: str | None
    owner: str | None
    size: Int64 | None
    virtual_size: Int64 | None
    container_format: str | None
    disk_format: str | None
    created_at: datetime | None
    updated_at: datetime | None
    tags: list[str] | None
    direct_url: str | None
    min_ram: Int32 | None
    min_disk: Int32 | None
    properties: NovaObject[ImageMetaPropsPayload]
