"""Actions of the compute service: state machines, resources, records and notifications, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from computehelpers import Cloud, boot
from sqlalchemy import func, select

from novawatch import hooks
from novawatch.compute import db
from novawatch.compute.core import ComputeError, InvalidState
from novawatch.compute.invariants import violations


def _states(cloud: Cloud, uuid: str) -> tuple[str | None, str | None, str | None]:
    inst = cloud.service.instance(uuid)
    return inst.vm_state, inst.task_state, inst.power_state


def _faults(cloud: Cloud) -> int:
    cloud.service.commit()
    return int(cloud.service.repo.session.scalar(select(func.count()).select_from(db.InstanceFault)) or 0)


def test_boot_places_claims_and_notifies(cloud: Cloud) -> None:
    inst = cloud.service.boot("vm", cloud.service.flavor_by_name("m1.small"))
    assert _states(cloud, inst.uuid) == ("active", None, "running")
    assert inst.host is not None and inst.node == inst.host and inst.launched_at is not None
    node = cloud.service.nodes[inst.host]
    assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used, node.running_vms) == (1, 2048, 20, 1)
    vifs = inst.info_cache.network_info
    assert len(vifs) == 1 and vifs[0]["network"]["label"] == "private"
    events = cloud.versioned()
    assert events[events.index("instance.create.start") + 1] == "compute_node.update"
    assert events[-1] == "instance.create.end"
    assert violations(cloud.service) == []


def test_boot_without_room_errors_cleanly(cloud: Cloud) -> None:
    huge = cloud.service.create_flavor("huge", vcpus=64, memory_mb=10**6, root_gb=10**4)
    cloud.take()
    inst = cloud.service.boot("big", huge)
    assert _states(cloud, inst.uuid) == ("error", None, "pending")
    assert inst.host is None
    # No node has room: Placement finds no candidate, so the scheduler gives up before it notifies (as Nova's).
    assert cloud.versioned() == ["instance.update", "compute_task.build_instances.error"]
    assert _faults(cloud) == 1


def test_boot_when_every_host_with_room_is_down_notifies_the_scheduler_start(cloud: Cloud) -> None:
    for host in list(cloud.service.services):
        cloud.service.force_down_service(host, True)
    cloud.take()
    inst = cloud.service.boot("vm", cloud.service.flavor_by_name("m1.small"))
    assert _states(cloud, inst.uuid) == ("error", None, "pending")
    # Placement offered candidates, the scheduler's filters refused them all: a start and no end.
    assert cloud.versioned() == ["scheduler.select_destinations.start", "instance.update",
                                 "compute_task.build_instances.error"]


def test_boot_failure_is_recorded_and_releases_the_claim(cloud: Cloud) -> None:
    cloud.service.failures.per_action["boot"] = 1.0
    inst = cloud.service.boot("vm", cloud.service.flavor_by_name("m1.small"))
    assert _states(cloud, inst.uuid) == ("error", None, "pending")
    assert inst.host is None
    assert all(n.vcpus_used == 0 for n in cloud.service.nodes.values())
    events = cloud.versioned()
    assert "instance.create.error" in events and "instance.create.end" not in events
    assert _faults(cloud) == 1


SIMPLE = [
    # action, setup actions, expected (vm, task, power) after
    ("power_off", [], ("stopped", None, "shutdown")),
    ("power_on", ["power_off"], ("active", None, "running")),
    ("pause", [], ("paused", None, "paused")),
    ("unpause", ["pause"], ("active", None, "running")),
    ("suspend", [], ("suspended", None, "suspended")),
    ("resume", ["suspend"], ("active", None, "running")),
    ("rescue", [], ("rescued", None, "running")),
    ("unrescue", ["rescue"], ("active", None, "running")),
    ("reboot", [], ("active", None, "running")),
    ("snapshot", [], ("active", None, "running")),
    ("shelve", [], ("shelved", None, "shutdown")),
    ("shelve_offload", ["shelve"], ("shelved_offloaded", None, "shutdown")),
    ("unshelve", ["shelve", "shelve_offload"], ("active", None, "running")),
    ("unshelve", ["shelve"], ("active", None, "running")),
    ("soft_delete", [], ("soft-delete", None, "shutdown")),
    ("restore", ["soft_delete"], ("active", None, "running")),
    ("rebuild", [], ("active", None, "running")),
]


@pytest.mark.parametrize(("action", "setup", "after"), SIMPLE, ids=[f"{a}<-{'+'.join(s)}" for a, s, _ in SIMPLE])
def test_state_machine(cloud: Cloud, action: str, setup: list[str], after: tuple[str, ...]) -> None:
    inst = boot(cloud)
    for step in setup:
        getattr(cloud.service, step)(inst.uuid)
    cloud.take()
    getattr(cloud.service, action)(inst.uuid)
    assert _states(cloud, inst.uuid) == after
    assert violations(cloud.service) == []
    events = cloud.versioned()
    assert events and all(e.startswith(("instance.", "compute_node.", "scheduler.")) for e in events), events


def test_shelve_offload_frees_the_host_and_unshelve_claims_again(cloud: Cloud) -> None:
    svc = cloud.service
    inst = boot(cloud)
    svc.shelve(inst.uuid)
    svc.shelve_offload(inst.uuid)
    assert inst.host is None and inst.node is None
    assert sum(n.running_vms or 0 for n in svc.nodes.values()) == 0
    svc.unshelve(inst.uuid)
    assert inst.host is not None and svc.nodes[inst.host].running_vms == 1


def test_invalid_state_is_refused_without_notifications(cloud: Cloud) -> None:
    inst = boot(cloud)
    cloud.take()
    with pytest.raises(InvalidState):
        cloud.service.unpause(inst.uuid)
    cloud.service.lock(inst.uuid, "maintenance")
    assert inst.locked and inst.locked_reason == "maintenance"
    cloud.take()
    with pytest.raises(InvalidState):
        cloud.service.pause(inst.uuid)
    assert cloud.take() == []
    cloud.service.unlock(inst.uuid)
    assert not inst.locked and inst.locked_reason is None


def test_an_image_that_is_not_a_uuid_is_refused_before_anything_happens(cloud: Cloud) -> None:
    small = cloud.service.flavor_by_name("m1.small")
    inst = boot(cloud)
    cloud.take()
    count = len(cloud.service.instances)
    with pytest.raises(ComputeError, match="image 'cirros' is not an image id"):
        cloud.service.boot("vm", small, image_ref="cirros")
    with pytest.raises(ComputeError, match="image 'x' is not an image id"):
        cloud.service.rebuild(inst.uuid, "x")
    with pytest.raises(ComputeError, match="image 'y' is not an image id"):
        cloud.service.rescue(inst.uuid, "y")
    assert cloud.take() == [] and len(cloud.service.instances) == count
    # Any spelling uuid.UUID reads is stored (and sent) in canonical form.
    booted = cloud.service.boot("vm", small, image_ref="{155D900F-4E14-4E4C-A73D-069CBF4541E6}")
    assert booted.image_ref == "155d900f-4e14-4e4c-a73d-069cbf4541e6"


def test_failed_pause_records_a_fault_and_keeps_the_state(cloud: Cloud) -> None:
    inst = boot(cloud)
    cloud.service.failures.per_action["pause"] = 1.0
    cloud.take()
    cloud.service.pause(inst.uuid)
    assert _states(cloud, inst.uuid) == ("active", None, "running")
    assert cloud.versioned() == ["instance.update", "instance.pause.start", "instance.update", "compute.exception"]
    assert _faults(cloud) == 1


def test_resize_confirm_and_revert(cloud: Cloud) -> None:
    svc = cloud.service
    medium = svc.flavor_by_name("m1.medium")
    small = svc.flavor_by_name("m1.small")
    inst = boot(cloud)
    source = inst.host
    svc.resize(inst.uuid, medium)
    assert inst.vm_state == "resized" and inst.host != source and inst.instance_type_id == medium.id
    assert source is not None
    assert svc.nodes[source].vcpus_used == 1 and svc.nodes[inst.host or ""].vcpus_used == 2
    assert violations(svc) == []
    svc.revert_resize(inst.uuid)
    assert inst.vm_state == "active" and inst.host == source and inst.instance_type_id == small.id
    assert sum(n.vcpus_used for n in svc.nodes.values()) == 1
    svc.resize(inst.uuid, medium)
    svc.confirm_resize(inst.uuid)
    assert inst.vm_state == "active" and inst.host != source
    assert sum(n.vcpus_used for n in svc.nodes.values()) == 2
    assert violations(svc) == []


def test_live_migration_complete_and_abort(cloud: Cloud) -> None:
    svc = cloud.service
    inst = boot(cloud)
    source = inst.host
    svc.live_migrate(inst.uuid)
    assert inst.task_state == "migrating" and inst.host == source
    assert violations(svc) == []
    svc.live_migration_abort(inst.uuid)
    assert inst.task_state is None and inst.host == source and inst.uuid not in svc.migrations
    svc.live_migrate(inst.uuid)
    svc.live_migration_complete(inst.uuid)
    assert inst.task_state is None and inst.host != source
    assert sum(n.running_vms or 0 for n in svc.nodes.values()) == 1
    assert violations(svc) == []


def test_evacuate_needs_the_host_down(cloud: Cloud) -> None:
    svc = cloud.service
    inst = boot(cloud)
    source = inst.host or ""
    with pytest.raises(InvalidState):
        svc.evacuate(inst.uuid)
    svc.force_down_service(source)
    svc.evacuate(inst.uuid)
    assert inst.host not in (None, source) and inst.vm_state == "active"
    assert svc.nodes[source].vcpus_used == 0
    assert violations(svc) == []


def test_volumes_attach_detach_and_swap(cloud: Cloud) -> None:
    svc = cloud.service
    inst = boot(cloud)
    vol, new = svc.create_volume(10), svc.create_volume(10)
    svc.attach_volume(inst.uuid, vol.id)
    assert vol.status == "in-use" and [b.volume_id for b in svc.bdms[inst.uuid]] == [vol.id]
    svc.failures.per_action["swap_volume"] = 1.0
    cloud.take()
    svc.swap_volume(inst.uuid, vol.id, new.id)
    assert cloud.versioned() == ["instance.volume_swap.start", "instance.volume_swap.error", "compute.exception"]
    assert [b.volume_id for b in svc.bdms[inst.uuid]] == [vol.id]
    assert (vol.status, new.status) == ("in-use", "available")
    svc.failures.per_action["swap_volume"] = 0.0
    svc.swap_volume(inst.uuid, vol.id, new.id)
    assert cloud.versioned() == ["instance.volume_swap.start", "instance.volume_swap.end"]
    assert [b.volume_id for b in svc.bdms[inst.uuid]] == [new.id]
    assert (vol.status, new.status) == ("available", "in-use")
    svc.detach_volume(inst.uuid, new.id)
    assert svc.bdms[inst.uuid] == [] and new.status == "available"


def test_swap_payload_names_both_volumes(cloud: Cloud) -> None:
    svc = cloud.service
    inst = boot(cloud)
    vol, new = svc.create_volume(10), svc.create_volume(10)
    svc.attach_volume(inst.uuid, vol.id)
    cloud.take()
    svc.swap_volume(inst.uuid, vol.id, new.id)
    end = cloud.memory.sent[-1].notification
    assert end.event_type == "instance.volume_swap.end"
    data = end.payload.data
    assert (data.old_volume_id, data.new_volume_id) == (vol.id, new.id)
    assert [b.data.volume_id for b in data.block_devices] == [new.id]


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def pre(self, *args: Any, **kwargs: Any) -> None:
        pass

    def post(self, rv: Any, instance: Any, network_info: list[dict[str, Any]]) -> None:
        self.seen.append((instance.uuid, len(network_info)))


@pytest.fixture
def nw_hook() -> Iterator[_Recorder]:
    recorder = _Recorder()
    hooks.register(hooks.NW_INFO_HOOK, recorder, "test-recorder")
    try:
        yield recorder
    finally:
        hooks.unregister_all()


def test_network_info_hook_sees_every_change(cloud: Cloud, nw_hook: _Recorder) -> None:
    svc = cloud.service
    inst = boot(cloud)
    port = svc.attach_interface(inst.uuid)
    assert port is not None
    svc.detach_interface(inst.uuid, port)
    svc.live_migrate(inst.uuid)
    svc.live_migration_complete(inst.uuid)
    assert nw_hook.seen == [(inst.uuid, 1), (inst.uuid, 2), (inst.uuid, 1), (inst.uuid, 1)]


def test_service_lifecycle(cloud: Cloud) -> None:
    svc = cloud.service
    svc.create_service("host-9")
    assert cloud.versioned() == ["service.create", "compute_node.create"]
    svc.disable_service("host-9", "maintenance")
    svc.disable_service("host-9", "maintenance")  # Nova notifies again: the fields were assigned
    assert cloud.versioned() == ["service.update", "service.update"]
    assert svc.services["host-9"].disabled_reason == "maintenance"
    svc.force_down_service("host-9")
    svc.enable_service("host-9")
    svc.force_down_service("host-9", False)
    assert cloud.versioned() == ["service.update", "service.update", "service.update"]
    inst = boot(cloud, host="host-9")
    assert inst.host == "host-9"
    with pytest.raises(InvalidState):
        svc.delete_service("host-9")
    svc.delete(inst.uuid)
    cloud.take()
    svc.delete_service("host-9")
    assert cloud.versioned() == ["compute_node.delete", "service.delete"]
    assert "host-9" not in svc.services and "host-9" not in svc.nodes


def test_disabled_and_down_hosts_are_not_scheduled(cloud: Cloud) -> None:
    svc = cloud.service
    svc.disable_service("host-1")
    svc.force_down_service("host-2")
    for _ in range(3):
        assert boot(cloud).host == "host-3"


def test_delete_releases_everything(cloud: Cloud) -> None:
    svc = cloud.service
    inst = boot(cloud, volume=10)
    vol = svc.bdms[inst.uuid][0].volume_id
    svc.delete(inst.uuid)
    assert inst.uuid not in svc.instances and inst.deleted and inst.vm_state == "deleted"
    assert vol not in svc.volumes.by_id  # delete_on_termination
    assert all(n.vcpus_used == 0 and n.running_vms == 0 for n in svc.nodes.values())
    svc.commit()
    assert svc.repo.session.scalar(select(func.count()).select_from(db.InstanceAction)) == 2


def test_tags_and_metadata(cloud: Cloud) -> None:
    inst = boot(cloud)
    cloud.service.set_tags(inst.uuid, ["web", "prod"])
    cloud.service.update_metadata(inst.uuid, {"owner": "ops"})
    assert inst.tags == ["prod", "web"] and inst.metadata_ == {"owner": "ops"}
    update = cloud.memory.sent[-1].notification
    assert update.event_type == "instance.update"
    assert update.payload.data.tags == ["prod", "web"] and update.payload.data.metadata == {"owner": "ops"}


def test_deleting_a_resized_instance_confirms_the_resize_first(cloud: Cloud) -> None:
    svc = cloud.service
    inst = boot(cloud)
    svc.resize(inst.uuid, svc.flavor_by_name("m1.medium"))
    cloud.take()
    svc.delete(inst.uuid)
    events = cloud.versioned()
    assert events.index("instance.resize_confirm.end") < events.index("instance.delete.start")
    assert all(n.vcpus_used == 0 for n in svc.nodes.values()) and svc.migrations == {}
