"""The handler table applied to notifications built from Nova's samples."""

from __future__ import annotations

import json

import pytest
from modelkit import NODES, UUIDS, VOLS, compute_node, instance, sample, samples_dir, service

from novawatch.model import ClusterModel, Consumer, from_snapshot, to_snapshot
from novawatch.model.handlers import HANDLERS
from novawatch.model.outcome import APPLIED, DUPLICATE, IGNORED, REJECTED, STALE
from novawatch.notifications.catalog import events
from novawatch.snapshot import InstanceRecord, NodeRecord, Snapshot, SnapshotSource, dumps

U0, U1 = UUIDS[0], UUIDS[1]


def consumer_with_nodes(*hosts: str, source: SnapshotSource | None = None) -> Consumer:
    consumer = Consumer(ClusterModel(source))
    for i, host in enumerate(hosts):
        assert consumer.process(compute_node("compute_node.create", NODES[i], host, when=0.001 * (i + 1))) == APPLIED
    return consumer


def snap(consumer: Consumer) -> Snapshot:
    assert consumer.cluster.store.check() == []
    return to_snapshot(consumer.cluster)


def only_instance(consumer: Consumer) -> InstanceRecord:
    (inst,) = snap(consumer).instances
    return inst


def node_by_host(consumer: Consumer, host: str) -> NodeRecord:
    return next(n for n in snap(consumer).nodes if n.host == host)


def test_every_sample_is_accepted() -> None:
    consumer = Consumer()
    for path in sorted(samples_dir().glob("*.json")):
        outcome = consumer.process(path.read_bytes(), path.name)
        assert outcome != REJECTED, list(consumer.dead_letters)


def test_every_catalog_instance_and_node_event_has_a_handler() -> None:
    needed = [e.event_type for e in events() if e.event_type.split(".")[0] in ("instance", "service", "compute_node")]
    assert needed, "catalog is empty"
    assert [e for e in needed if e not in HANDLERS] == []


def test_events_the_model_does_not_need_are_ignored() -> None:
    consumer = Consumer()
    for name in ("flavor-create", "keypair-create-end", "aggregate-create-end", "metrics-update"):
        assert consumer.process(json.dumps(sample(name)).encode()) == IGNORED
    # Known to the model's table but about a non-compute service.
    assert consumer.process(service("service.update", "sched", binary="nova-scheduler")) == IGNORED
    assert consumer.stats.not_needed == 5 and consumer.stats.rejected == 0


def test_create_places_instance_and_derives_node_usage() -> None:
    consumer = consumer_with_nodes("compute", "other")
    consumer.process(instance("instance.create.end", U0, when=1, flavor=(2, 4096, 20, 10, 1536), volumes=[VOLS[0]]))
    inst = only_instance(consumer)
    assert (inst.host, inst.node, inst.vcpus, inst.memory_mb, inst.disk_gb) == ("compute", "compute", 2, 4096, 32)
    assert (inst.state, inst.power_state, inst.task_state, inst.locked) == ("active", "running", None, False)
    assert inst.volumes == [VOLS[0]]
    node = node_by_host(consumer, "compute")
    assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used, node.running_vms) == (2, 4096, 32, 1)
    assert node_by_host(consumer, "other").running_vms == 0


def test_booted_from_volume_has_no_local_root_disk() -> None:
    consumer = consumer_with_nodes("compute")
    consumer.process(instance("instance.create.end", U0, when=1, flavor=(1, 512, 20, 5, 0), boot_volume=VOLS[0]))
    inst = only_instance(consumer)
    assert inst.disk_gb == 5 and inst.volumes == [VOLS[0]]
    # Later notifications without block devices keep what the model knows (still booted from volume).
    consumer.process(instance("instance.pause.end", U0, when=2, state="paused", flavor=(1, 512, 20, 5, 0),
                              block_devices_null=True))
    assert only_instance(consumer).disk_gb == 5 and only_instance(consumer).volumes == [VOLS[0]]


def test_block_devices_null_keeps_volumes_and_empty_list_clears_them() -> None:
    consumer = consumer_with_nodes("compute")
    consumer.process(instance("instance.volume_attach.end", U0, when=1, volumes=[VOLS[1], VOLS[0]]))
    assert only_instance(consumer).volumes == [VOLS[0], VOLS[1]]
    consumer.process(instance("instance.update", U0, when=2, block_devices_null=True))
    assert only_instance(consumer).volumes == [VOLS[0], VOLS[1]]
    consumer.process(instance("instance.volume_swap.end", U0, when=3, volumes=[VOLS[2], VOLS[0]]))
    assert only_instance(consumer).volumes == [VOLS[0], VOLS[2]]
    consumer.process(instance("instance.volume_detach.end", U0, when=4, volumes=[]))
    assert only_instance(consumer).volumes == []


@pytest.mark.parametrize("event_type", [
    "instance.live_migration_post_dest.end", "instance.resize_finish.end", "instance.rebuild.end",
    "instance.evacuate", "instance.unshelve.end",
])
def test_instance_moves_between_hosts(event_type: str) -> None:
    consumer = consumer_with_nodes("src", "dst")
    consumer.process(instance("instance.create.end", U0, when=1, host="src", flavor=(2, 2048, 10, 0, 0)))
    consumer.process(instance(event_type, U0, when=2, host="dst", flavor=(4, 4096, 10, 0, 0)))
    assert (node_by_host(consumer, "src").running_vms, node_by_host(consumer, "src").vcpus_used) == (0, 0)
    dst = node_by_host(consumer, "dst")
    assert (dst.running_vms, dst.vcpus_used, dst.memory_mb_used, dst.local_gb_used) == (1, 4, 4096, 10)


def test_resize_revert_and_live_migration_rollback_return_to_source() -> None:
    consumer = consumer_with_nodes("src", "dst")
    consumer.process(instance("instance.resize_finish.end", U0, when=1, host="dst", state="resized",
                              flavor=(4, 4096, 10, 0, 0)))
    consumer.process(instance("instance.resize_revert.end", U0, when=2, host="src", flavor=(2, 2048, 10, 0, 0)))
    assert node_by_host(consumer, "src").vcpus_used == 2 and node_by_host(consumer, "dst").running_vms == 0
    consumer.process(instance("instance.live_migration_rollback.end", U0, when=3, host="src"))
    assert only_instance(consumer).host == "src"


def test_shelve_offload_leaves_the_host() -> None:
    consumer = consumer_with_nodes("compute")
    consumer.process(instance("instance.shelve.end", U0, when=1, state="shelved", power_state="shutdown"))
    assert node_by_host(consumer, "compute").running_vms == 1
    consumer.process(instance("instance.shelve_offload.end", U0, when=2, host=None, node=None,
                              state="shelved_offloaded", power_state="shutdown"))
    inst = only_instance(consumer)
    assert (inst.host, inst.node, inst.state) == (None, None, "shelved_offloaded")
    assert node_by_host(consumer, "compute").running_vms == 0


def test_state_fields_follow_the_payload() -> None:
    consumer = consumer_with_nodes("compute")
    consumer.process(instance("instance.lock", U0, when=1, locked=True))
    assert only_instance(consumer).locked is True
    consumer.process(instance("instance.power_off.start", U0, when=2, task_state="powering-off"))
    assert only_instance(consumer).task_state == "powering-off"
    consumer.process(instance("instance.power_off.end", U0, when=3, state="stopped", power_state="shutdown",
                              locked=True))
    inst = only_instance(consumer)
    assert (inst.state, inst.power_state, inst.task_state, inst.locked) == ("stopped", "shutdown", None, True)
    assert consumer.cluster.store.instances_by_state == {"stopped": {U0}}


def test_soft_deleted_instances_stay_and_restore() -> None:
    consumer = consumer_with_nodes("compute")
    consumer.process(instance("instance.soft_delete.end", U0, when=1, state="soft-delete", power_state="shutdown"))
    assert only_instance(consumer).state == "soft-delete"
    consumer.process(instance("instance.restore.end", U0, when=2))
    assert only_instance(consumer).state == "active"


def test_delete_leaves_a_tombstone_that_late_updates_cannot_pass() -> None:
    consumer = consumer_with_nodes("compute")
    consumer.process(instance("instance.create.end", U0, when=1))
    assert consumer.process(instance("instance.delete.end", U0, when=3, state="deleted")) == APPLIED
    assert snap(consumer).instances == []
    assert node_by_host(consumer, "compute").running_vms == 0
    assert consumer.process(instance("instance.update", U0, when=2)) == STALE
    assert consumer.process(instance("instance.update", U0, when=4)) == STALE
    assert snap(consumer).instances == []


def test_delete_before_create_arrives_keeps_it_deleted() -> None:
    consumer = consumer_with_nodes("compute")
    consumer.process(instance("instance.delete.end", U0, when=3, state="deleted"))
    assert consumer.process(instance("instance.create.end", U0, when=1)) == STALE
    assert snap(consumer).instances == []


def test_older_notifications_do_not_move_the_model_backwards() -> None:
    consumer = consumer_with_nodes("a", "b")
    consumer.process(instance("instance.live_migration_post_dest.end", U0, when=5, host="b"))
    assert consumer.process(instance("instance.live_migration_pre.start", U0, when=4, host="a",
                                     task_state="migrating")) == STALE
    inst = only_instance(consumer)
    assert (inst.host, inst.task_state) == ("b", None)
    assert consumer.stats.stale == 1


def test_equal_or_missing_timestamps_apply_in_arrival_order() -> None:
    consumer = consumer_with_nodes("compute")
    consumer.process(instance("instance.pause.end", U0, when=5, state="paused"))
    assert consumer.process(instance("instance.unpause.end", U0, when=5)) == APPLIED
    assert only_instance(consumer).state == "active"
    assert consumer.process(instance("instance.pause.end", U0, state="paused")) == APPLIED
    assert only_instance(consumer).state == "paused"


def test_iso_timestamps_are_ordered_like_oslo_ones() -> None:
    consumer = consumer_with_nodes("compute")
    doc = json.loads(instance("instance.pause.end", U0, state="paused"))
    doc["timestamp"] = "2026-01-01T00:00:05+00:00"
    consumer.process(json.dumps(doc).encode())
    assert consumer.process(instance("instance.unpause.end", U0, when=4)) == STALE
    assert consumer.process(instance("instance.unpause.end", U0, when=6)) == APPLIED


def test_duplicates_are_dropped_by_message_id() -> None:
    consumer = consumer_with_nodes("compute")
    first = instance("instance.pause.end", U0, when=1, state="paused", mid="m-1")
    assert consumer.process(first) == APPLIED
    consumer.process(instance("instance.unpause.end", U0, when=2, mid="m-2"))
    assert consumer.process(first) == DUPLICATE
    assert only_instance(consumer).state == "active"
    assert consumer.stats.duplicate == 1 and consumer.stats.ignored == 1


def test_unknown_instance_is_fetched_from_the_source() -> None:
    record = InstanceRecord(uuid=U1, host="compute", node="compute", project_id="p", display_name="from-source",
                            state="active", power_state="running", vcpus=8, memory_mb=8192, disk_gb=80,
                            volumes=[VOLS[5]])
    source = SnapshotSource(Snapshot(instances=[record]))
    consumer = consumer_with_nodes("compute", source=source)
    consumer.process(instance("instance.update", U1, when=1, block_devices_null=True, flavor=(8, 8192, 80, 0, 0),
                              name="from-source"))
    inst = only_instance(consumer)
    assert inst.volumes == [VOLS[5]] and inst.display_name == "from-source"
    assert consumer.cluster.fetched == 1


def test_unknown_instance_without_source_is_built_from_the_payload() -> None:
    consumer = Consumer()
    assert consumer.process(instance("instance.power_on.end", U0, when=1, host="nowhere")) == APPLIED
    assert only_instance(consumer).host == "nowhere"
    # The node shows up later and gets the usage of the instance already on its host.
    consumer.process(compute_node("compute_node.create", NODES[0], "nowhere", when=2))
    assert node_by_host(consumer, "nowhere").running_vms == 1


def test_unknown_node_of_a_service_is_fetched_from_the_source() -> None:
    record = NodeRecord(uuid=NODES[7], host="h7", hypervisor_hostname="h7", vcpus=8)
    consumer = Consumer(ClusterModel(SnapshotSource(Snapshot(nodes=[record]))))
    consumer.process(service("service.update", "h7", when=1, disabled=True, reason="maintenance"))
    node = node_by_host(consumer, "h7")
    assert (node.uuid, node.status, node.disabled_reason, node.vcpus) == (NODES[7], "disabled", "maintenance", 8)


def test_service_state_arriving_before_its_node_is_kept() -> None:
    consumer = Consumer()
    consumer.process(service("service.create", "new", when=1))
    consumer.process(service("service.update", "new", when=2, forced_down=True, disabled=True, reason="r"))
    consumer.process(compute_node("compute_node.create", NODES[0], "new", when=3))
    node = node_by_host(consumer, "new")
    assert (node.state, node.status, node.disabled_reason) == ("down", "disabled", "r")


def test_service_updates_set_state_and_status() -> None:
    consumer = consumer_with_nodes("compute")
    consumer.process(service("service.update", "compute", when=1, disabled=True, reason="maintenance"))
    node = node_by_host(consumer, "compute")
    assert (node.state, node.status, node.disabled_reason) == ("up", "disabled", "maintenance")
    consumer.process(service("service.update", "compute", when=2, forced_down=True))
    node = node_by_host(consumer, "compute")
    assert (node.state, node.status) == ("down", "enabled")
    assert consumer.process(service("service.update", "compute", when=1.5)) == STALE


def test_compute_node_update_changes_capacity_and_reported_usage() -> None:
    consumer = consumer_with_nodes("compute")
    consumer.process(compute_node("compute_node.update", NODES[0], "compute", when=1, vcpus=64, memory_mb=1024,
                                  local_gb=50, used=(3, 512, 7, 2)))
    node = node_by_host(consumer, "compute")
    assert (node.vcpus, node.memory_mb, node.local_gb) == (64, 1024, 50)
    assert node.reported == {"vcpus_used": 3, "memory_mb_used": 512, "local_gb_used": 7, "running_vms": 2}
    # Reported usage is kept apart from the usage derived from the model's instances.
    assert node.vcpus_used == 0


def test_compute_node_and_service_delete_remove_the_node_for_good() -> None:
    consumer = consumer_with_nodes("a", "b")
    consumer.process(compute_node("compute_node.delete", NODES[0], "a", when=1))
    assert [n.host for n in snap(consumer).nodes] == ["b"]
    assert consumer.process(compute_node("compute_node.update", NODES[0], "a", when=0.5)) == STALE
    consumer.process(service("service.delete", "b", when=2))
    assert snap(consumer).nodes == []
    assert consumer.process(compute_node("compute_node.update", NODES[1], "b", when=3)) == STALE


def test_snapshot_round_trip_through_bootstrap() -> None:
    consumer = consumer_with_nodes("a", "b")
    consumer.process(instance("instance.create.end", U0, when=1, host="a", volumes=[VOLS[1], VOLS[0]]))
    consumer.process(instance("instance.create.end", U1, when=1, host="b", boot_volume=VOLS[2]))
    consumer.process(compute_node("compute_node.update", NODES[0], "a", when=2, used=(1, 512, 1, 1)))
    first = snap(consumer)
    again = to_snapshot(from_snapshot(first))
    assert dumps(again) == dumps(first)
