"""The resource tracker: capacity under allocation ratios, and compute_node.update only on a listed change."""

from __future__ import annotations

from computehelpers import Cloud, boot

from novawatch.compute.invariants import violations
from novawatch.compute.resource_tracker import ResourceTracker, Usage
from novawatch.notifications.catalog.compute_node import NOTIFY_ON_CHANGE


def test_compute_node_update_only_when_a_listed_field_changes(cloud: Cloud) -> None:
    svc = cloud.service
    inst = boot(cloud)
    for action in (svc.pause, svc.unpause, svc.lock, svc.unlock, svc.reboot, svc.snapshot):
        action(inst.uuid)
    assert "compute_node.update" not in cloud.take()
    svc.delete(inst.uuid)
    updates = [s.notification for s in cloud.memory.sent if s.notification.event_type == "compute_node.update"]
    assert len(updates) == 1
    data = updates[0].payload.data
    node = svc.nodes[data.host]
    assert (data.vcpus_used, data.memory_mb_used, data.running_vms) == (0, 0, 0) == (
        node.vcpus_used, node.memory_mb_used, node.running_vms)


def test_allocation_ratios_bound_the_scheduler(cloud: Cloud) -> None:
    svc = cloud.service
    # 3 hosts x 4 vCPUs x 4.0 = 48 vCPUs, but 3 x 8192 MB RAM at ratio 1.0 = 12 m1.small (2048 MB).
    placed = [boot(cloud) for _ in range(14)]
    running = [i for i in placed if i.vm_state == "active"]
    assert len(running) == 12
    assert all(i.vm_state == "error" and i.host is None for i in placed if i not in running)
    assert violations(svc) == []
    assert all(n.memory_mb_used <= n.memory_mb * n.ram_allocation_ratio for n in svc.nodes.values())


def test_tracker_notifies_on_changes_of_watched_fields_only() -> None:
    sent: list[tuple[str, tuple[object, ...]]] = []

    class Node:
        uuid = "n1"
        host = hypervisor_hostname = "h"
        vcpus, memory_mb, local_gb = 4, 1024, 100
        cpu_allocation_ratio = ram_allocation_ratio = disk_allocation_ratio = 1.0
        vcpus_used = memory_mb_used = local_gb_used = 0
        running_vms = current_workload = free_ram_mb = free_disk_gb = disk_available_least = 0

    tracker = ResourceTracker(lambda event, node: sent.append(
        (event, tuple(getattr(node, f) for f in NOTIFY_ON_CHANGE))))
    node = Node()
    tracker.add_node(node, created=True)  # type: ignore[arg-type]
    tracker.claim(node, "a", Usage(1, 512, 10))  # type: ignore[arg-type]
    with tracker.batch():
        tracker.drop(node.uuid, "a")
        tracker.claim(node, "a", Usage(1, 512, 10))  # type: ignore[arg-type]
    tracker.report(node)  # type: ignore[arg-type]
    assert [e for e, _ in sent] == ["compute_node.create", "compute_node.update"]
    assert sent[-1][1] != sent[0][1]
    assert not tracker.fits(node, Usage(4, 512, 10))  # type: ignore[arg-type]
