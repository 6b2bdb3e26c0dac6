"""``compute_node.*``: specified by Nova's hypervisor-notification spec, never shipped by Nova.

``ComputeNodePayload`` and ``ComputeNodeDeletePayload`` are version 1.0 exactly as the spec defines them.
"""

from __future__ import annotations

from novawatch.notifications.catalog.table import event
from novawatch.objects import Payload
from novawatch.objects.fields import UUID, IPAddress, check_ip

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

    id: int
    uuid: UUID
    host: str | None
    vcpus: int
    memory_mb: int
    local_gb: int
    vcpus_used: int
    memory_mb_used: int
    local_gb_used: int
    hypervisor_type: str
    hypervisor_version: int
    hypervisor_hostname: str | None
    free_ram_mb: int | None
    free_disk_gb: int | None
    current_workload: int | None
    running_vms: int | None
    disk_available_least: int | None
    host_ip: IPAddress | None

    def __post_init__(self) -> None:
        check_ip(self.host_ip)


class ComputeNodeDeletePayload(Payload, kw_only=True):
    VERSION = "1.0"
    SCHEMA = {"id": ("compute_node", "id"), "uuid": ("compute_node", "uuid")}

    id: int
    uuid: UUID


event("compute_node.create", ComputeNodePayload)
event("compute_node.update", ComputeNodePayload)
event("compute_node.delete", ComputeNodeDeletePayload)
