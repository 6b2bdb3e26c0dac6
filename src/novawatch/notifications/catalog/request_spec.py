"""The scheduler's request spec (``scheduler.select_destinations.*``, nested in ``compute_task.*``)."""

from __future__ import annotations

import msgspec

from novawatch.notifications.catalog.flavor import FlavorPayload
from novawatch.notifications.catalog.image import ImageMetaPayload
from novawatch.notifications.catalog.server_group import ServerGroupPayload
from novawatch.notifications.catalog.table import event
from novawatch.objects import NovaObject, Payload, Since, register
from novawatch.objects.fields import (
    UUID,
    CPUAllocationPolicy,
    CPUEmulatorThreadsPolicy,
    CPUThreadAllocationPolicy,
    Int32,
    PCINUMAAffinityPolicy,
)


@register
class VirtCPUTopologyPayload(Payload, kw_only=True):
    """Sockets, cores and threads of a guest NUMA cell."""

    VERSION = "1.0"
    SCHEMA = {name: ("virt_cpu_topology", name) for name in ("sockets", "cores", "threads")}

    sockets: Int32 | None = 1
    cores: Int32 | None = 1
    threads: Int32 | None = 1


@register
class InstanceNUMACellPayload(Payload, kw_only=True):
    """One guest NUMA cell: its CPUs, memory, page size and pinning."""

    VERSION = "1.2"
    SCHEMA = {
        name: ("numa_cell", name)
        for name in (
            "id", "cpuset", "pcpuset", "cpuset_reserved", "memory", "pagesize", "cpu_pinning_raw", "cpu_policy",
            "cpu_thread_policy",
        )
    }
    SINCE = {"pcpuset": Since(1, factory=list)}

    id: Int32
    # Sets of CPU ids in Nova; sent as JSON arrays.
    cpuset: list[Int32]
    pcpuset: list[Int32] | msgspec.UnsetType = msgspec.UNSET
    cpuset_reserved: list[Int32] | None
    memory: Int32
    pagesize: Int32 | None
    cpu_topology: NovaObject[VirtCPUTopologyPayload] | None
    cpu_pinning_raw: dict[str, Int32] | None
    cpu_policy: CPUAllocationPolicy | None
    cpu_thread_policy: CPUThreadAllocationPolicy | None


@register
class InstanceNUMATopologyPayload(Payload, kw_only=True):
    """The guest NUMA topology the instance asks for."""

    VERSION = "1.0"
    SCHEMA = {
        "instance_uuid": ("numa_topology", "instance_uuid"),
        "emulator_threads_policy": ("numa_topology", "emulator_threads_policy"),
    }

    instance_uuid: UUID
    cells: list[NovaObject[InstanceNUMACellPayload]]
    emulator_threads_policy: CPUEmulatorThreadsPolicy | None


@register
class InstancePCIRequestPayload(Payload, kw_only=True):
    """One PCI device request."""

    VERSION = "1.1"
    SCHEMA = {
        name: ("pci_request", name) for name in ("count", "spec", "alias_name", "request_id", "numa_policy")
    }

    count: Int32
    spec: list[dict[str, str | None]]
    alias_name: str | None
    request_id: UUID | None
    numa_policy: PCINUMAAffinityPolicy | None


@register
class InstancePCIRequestsPayload(Payload, kw_only=True):
    """The PCI device requests of an instance."""

    VERSION = "1.0"
    SCHEMA = {"instance_uuid": ("pci_requests", "instance_uuid")}

    instance_uuid: UUID
    requests: list[NovaObject[InstancePCIRequestPayload]]


@register
class CellMappingPayload(Payload, kw_only=True):
    """A cell that a requested destination names."""

    VERSION = "2.0"
    SCHEMA = {name: ("cell", name) for name in ("uuid", "name", "disabled")}

    uuid: UUID
    name: str | None
    disabled: bool = False


@register
class DestinationPayload(Payload, kw_only=True):
    """A destination requested for the instance (host, node, cell, aggregates)."""

    VERSION = "1.0"
    SCHEMA = {"aggregates": ("destination", "aggregates")}

    # Nova sets host, node and cell only when the destination has them, and leaves them out otherwise.
    host: str | msgspec.UnsetType = msgspec.UNSET
    node: str | msgspec.UnsetType | None = msgspec.UNSET
    cell: NovaObject[CellMappingPayload] | msgspec.UnsetType | None = msgspec.UNSET
    aggregates: list[str] | None = None


@register
class SchedulerRetriesPayload(Payload, kw_only=True):
    """How often scheduling was tried and on which hosts."""

    VERSION = "1.0"
    SCHEMA = {"num_attempts": ("retry", "num_attempts")}

    num_attempts: Int32
    hosts: list[str]


@register
class RequestSpecPayload(Payload, kw_only=True):
    """What the scheduler was asked to place: flavor, image, NUMA and PCI needs, hints and constraints."""

    VERSION = "1.1"
    SCHEMA = {
        name: ("request_spec", name)
        for name in (
            "ignore_hosts", "instance_uuid", "project_id", "user_id", "availability_zone", "num_instances",
            "scheduler_hints",
        )
    }
    SINCE = {
        "force_hosts": Since(1),
        "force_nodes": Since(1),
        "ignore_hosts": Since(1),
        "instance_group": Since(1),
        "requested_destination": Since(1),
        "retry": Since(1),
        "scheduler_hints": Since(1),
        "security_groups": Since(1, factory=list),
    }

    instance_uuid: UUID
    project_id: str | None
    user_id: str | None
    availability_zone: str | None
    flavor: NovaObject[FlavorPayload] | None
    force_hosts: str | msgspec.UnsetType | None = msgspec.UNSET
    force_nodes: str | msgspec.UnsetType | None = msgspec.UNSET
    ignore_hosts: list[str] | msgspec.UnsetType | None = msgspec.UNSET
    # Declared by Nova since 1.1 but never filled (``image`` is): absent on the wire, hence optional.
    image_meta: NovaObject[ImageMetaPayload] | msgspec.UnsetType | None = msgspec.UNSET
    instance_group: NovaObject[ServerGroupPayload] | msgspec.UnsetType | None = msgspec.UNSET
    image: NovaObject[ImageMetaPayload] | None
    numa_topology: NovaObject[InstanceNUMATopologyPayload] | None
    pci_requests: NovaObject[InstancePCIRequestsPayload] | None
    num_instances: Int32 = 1
    requested_destination: NovaObject[DestinationPayload] | msgspec.UnsetType | None = msgspec.UNSET
    retry: NovaObject[SchedulerRetriesPayload] | msgspec.UnsetType | None = msgspec.UNSET
    scheduler_hints: dict[str, list[str]] | msgspec.UnsetType | None = msgspec.UNSET
    security_groups: list[str] | msgspec.UnsetType = msgspec.UNSET


for _phase in ("start", "end"):
    event(f"scheduler.select_destinations.{_phase}", RequestSpecPayload, source="nova-scheduler")
