"""``compute_node.*``: specified by Nova's hypervisor-notification spec, never shipped by Nova.

``ComputeNodePayload`` and ``ComputeNodeDeletePayload`` are version 1.0 exactly as the spec defines them.
"""

from __future__ import annotations

from novawatch.notifications.catalog.table import event
from novawatch.objects import Payload
from novawatch.objects.fields import UUID, Count32, Int32, IPAddress, check_ip

#: The fields whose change makes a ``compute_node.update`` worth sending (the spec's note).
NOTIFY_ON_CHANGE = (
    "vcpus", "memory_mb", "local_gb", "vcpus_used", "local_gb_used", "hypervisor_hostname",
    "disk_available_least", "running_vms", "current_workload",
)


class ComputeNodePayload(Payload, kw_only=True):
    VERSION = "1.0"
    SCHEMA = {
        name: ("compute_node", name)
        for name in (
            "id", "uuid", "host", "vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used",
            "local_gb_used", "hypervisor_type", "hypervisor_version", "hypervisor_hostname",
            "free_ram_mb", "free_disk_gb", "current_workload", "running_vms", "disk_available_least",
            "host_ip",
        )
    }

    id: Int32
    uuid: UUID
    host: str | None
    vcpus: Count32
    memory_mb: Count32
    local_gb: Count32
    vcpus_used: Count32
    memory_mb_used: Count32
    local_gb_used: Count32
    hypervisor_type: str
    hypervisor_version: Int32
    hypervisor_hostname: str | None
    free_ram_mb: Int32 | None
    free_disk_gb: Int32 | None
    current_workload: Count32 | None
    running_vms: Count32 | None
    disk_available_least: Int32 | None
    host_ip: IPAddress | None

    def __post_init__(self) -> None:
        check_ip(self.host_ip)


class ComputeNodeDeletePayload(Payload, kw_only=True):
    VERSION = "1.0"
    SCHEMA = {"id": ("compute_node", "id"), "uuid": ("compute_node", "uuid")}

    id: Int32
    uuid: UUID


event("compute_node.create", ComputeNodePayload)
event("compute_node.update", ComputeNodePayload)
event("compute_node.delete", ComputeNodeDeletePayload)
