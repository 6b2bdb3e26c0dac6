"""Change events (issue 15): the model says what each step changed, and a mirror kept from those events
alone equals the model after every step, as an informer's store and its handlers agree."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

import msgspec
import pytest
from modelkit import NODES, UUIDS, instance, service

from novawatch.model import Consumer, from_snapshot
from novawatch.model.audit import audit, repair
from novawatch.model.changes import AUDIT, INSTANCE, NODE, NOTIFICATION, Change, Update
from novawatch.model.cluster import ClusterModel
from novawatch.model.outcome import APPLIED, DUPLICATE, IGNORED, REJECTED
from novawatch.simulate import Config
from novawatch.snapshot import Snapshot, SnapshotSource, build
from simkit import simulate_collected


class Mirror:
    """What a listener can know from updates alone: every node and instance record, by uuid."""

    def __init__(self, cluster: ClusterModel) -> None:
        store = cluster.store
        self.records: dict[tuple[str, str], Any] = {}
        self.cluster = cluster
        self.updates: list[Update] = []
        for node in store.nodes.values():
            self.records[(NODE, node.uuid)] = store.node_record(node)
        for inst in store.instances.values():
            self.records[(INSTANCE, inst.uuid)] = store.instance_record(inst)
        self.close = cluster.changes.subscribe(self.apply)

    def apply(self, update: Update) -> None:
        self.updates.append(update)
        for change in update.changes:
            key = (change.kind, change.key)
            assert self.records.get(key) == change.old, f"{change.op} of {key}: the old record is not the last told"
            if change.new is None:
                del self.records[key]
            else:
                self.records[key] = change.new

    def matches(self) -> bool:
        store = self.cluster.store
        truth = {(NODE, n.uuid): store.node_record(n) for n in store.nodes.values()}
        truth.update({(INSTANCE, i.uuid): store.instance_record(i) for i in store.instances.values()})
        return truth == self.records


@cache
def simulation(notification_format: str) -> tuple[Snapshot, tuple[bytes, ...], bytes]:
    return simulate_collected(Config(hosts=4, instances=10, actions=120, seed=11, failure_rate=0.1,
                                     notification_format=notification_format))


@pytest.mark.parametrize("notification_format", ["versioned", "unversioned", "both"])
def test_a_mirror_kept_from_change_events_equals_the_model_after_every_notification(
    notification_format: str,
) -> None:
    initial, bodies, _truth = simulation(notification_format)
    consumer = Consumer(from_snapshot(initial))
    mirror = Mirror(consumer.cluster)
    changed = 0
    for number, body in enumerate(bodies, 1):
        outcome = consumer.process(body, number)
        update = mirror.updates[-1]
        assert update.cause == NOTIFICATION and update.notification is not None
        assert update.notification.outcome == outcome and update.notification.event_type
        assert mirror.matches(), f"after notification {number} ({update.notification.event_type})"
        changed += bool(update.changes)
    assert len(mirror.updates) == len(bodies)  # one update per notification, whatever it did
    assert changed > len(bodies) // 4
    assert consumer.cluster.store.check() == []


def test_an_instance_moving_hosts_changes_it_and_both_nodes_with_old_and_new_records() -> None:
    consumer = _two_hosts()
    mirror = Mirror(consumer.cluster)
    consumer.process(instance("instance.create.end", UUIDS[0], when=1, host="a", flavor=(2, 2048, 10, 0, 0)))
    (create,) = mirror.updates
    assert [(c.kind, c.op) for c in create.changes] == [(INSTANCE, "add"), (NODE, "update")]
    assert create.changes[1].old.memory_mb_used == 0 and create.changes[1].new.memory_mb_used == 2048
    consumer.process(instance("instance.live_migration_post.end", UUIDS[0], when=2, host="b",
                              flavor=(2, 2048, 10, 0, 0)))
    move = mirror.updates[-1].changes
    assert [(c.kind, c.key, c.op) for c in move] == [(INSTANCE, UUIDS[0], "update"), (NODE, NODES[0], "update"),
                                                     (NODE, NODES[1], "update")]
    assert (move[0].old.host, move[0].new.host) == ("a", "b")
    assert (move[1].new.running_vms, move[2].new.running_vms) == (0, 1)
    consumer.process(instance("instance.delete.end", UUIDS[0], when=3, host="b", state="deleted"))
    delete = mirror.updates[-1].changes
    assert (delete[0].kind, delete[0].op, delete[0].new) == (INSTANCE, "delete", None)
    assert mirror.matches()


def test_every_outcome_is_told_with_the_head_of_its_notification() -> None:
    consumer = _two_hosts()
    mirror = Mirror(consumer.cluster)
    created = instance("instance.create.end", UUIDS[1], when=1, mid="m-1", host="a")
    outcomes = [consumer.process(doc) for doc in (
        created, created,  # applied, then a duplicate
        b'{"event_type": "flavor.create", "publisher_id": "x", "payload": {}}',  # not in the catalog's shape
        b'{"event_type": "no.such.event", "publisher_id": "x", "payload": {}}',  # unknown: ignored
        b'{"event_type": "instance.create.end", "payload": 3, "publisher_id": "p", "message_id": "m-3"}',
    )]
    assert outcomes == [APPLIED, DUPLICATE, REJECTED, IGNORED, REJECTED]
    told = [u.notification for u in mirror.updates]
    assert [n.outcome for n in told if n is not None] == outcomes
    first, duplicate, _flavor, unknown, rejected = told
    assert first is not None and (first.message_id, first.timestamp) == ("m-1", "2026-01-01 00:00:01.000000")
    assert first.publisher_id and first.payload.data.uuid == UUIDS[1] and first.reason is None
    assert duplicate is not None and not mirror.updates[1].changes
    assert unknown is not None and unknown.event_type == "no.such.event"
    assert rejected is not None and rejected.reason and "payload" in rejected.reason
    assert (rejected.message_id, rejected.publisher_id) == ("m-3", "p")  # the head it could read


def test_nobody_listening_nothing_is_recorded_and_unsubscribing_stops_recording() -> None:
    consumer = _two_hosts()
    store = consumer.cluster.store
    assert store.recorder is None
    seen: list[Update] = []
    stop = consumer.cluster.changes.subscribe(seen.append)
    assert store.recorder is not None
    consumer.process(instance("instance.create.end", UUIDS[2], when=1, host="a"))
    stop()
    assert store.recorder is None and len(seen) == 1
    consumer.process(instance("instance.update", UUIDS[2], when=2, host="a", state="stopped"))
    assert len(seen) == 1


def test_a_listener_that_raises_is_logged_and_the_others_still_hear(caplog: pytest.LogCaptureFixture) -> None:
    consumer = _two_hosts()

    def broken(update: Update) -> None:
        raise RuntimeError("listener bug")

    consumer.cluster.changes.subscribe(broken)
    mirror = Mirror(consumer.cluster)
    with caplog.at_level(logging.ERROR, logger="novawatch.model.changes"):
        for when in (1, 2, 3):
            assert consumer.process(instance("instance.update", UUIDS[3], when=when, host="b")) == APPLIED
    assert mirror.matches() and len(mirror.updates) == 3
    assert len([r for r in caplog.records if "listener bug" in r.getMessage()]) == 1  # once, not per update


def test_an_audit_repair_is_one_update_of_exactly_what_it_changed() -> None:
    consumer = _two_hosts()
    consumer.process(instance("instance.create.end", UUIDS[4], when=1, host="a", flavor=(1, 1024, 1, 0, 0)))
    cluster = consumer.cluster
    store = cluster.store
    truth = build([store.node_record(n) for n in store.nodes.values()],
                  [msgspec.structs.replace(store.instance_record(i), host="b", node="b")
                   for i in store.instances.values()])
    mirror = Mirror(cluster)
    drift = audit(cluster, SnapshotSource(truth))
    repair(cluster, SnapshotSource(truth), drift)
    update = cluster.changes.commit(AUDIT)
    assert update is not None and update.cause == AUDIT and update.notification is None
    assert sorted((c.kind, c.key) for c in update.changes) == [(INSTANCE, UUIDS[4]), (NODE, NODES[0]),
                                                               (NODE, NODES[1])]
    assert mirror.matches()
    assert cluster.changes.commit(AUDIT) is None  # nothing more happened


def test_a_reload_is_told_as_a_reset_without_recording_each_entity() -> None:
    from novawatch.model.bootstrap import bootstrap

    initial, _bodies, _truth = simulation("versioned")
    cluster = ClusterModel()
    seen: list[Update] = []
    cluster.changes.subscribe(seen.append)
    with cluster.changes.reloading():
        assert cluster.store.recorder is None
        bootstrap(cluster, SnapshotSource(initial))
    assert [(u.reset, u.changes) for u in seen] == [(True, ())]
    assert cluster.store.recorder is not None and len(cluster.store.instances) == len(initial.instances)


def test_change_ops() -> None:
    assert [Change(NODE, "n", None, 1).op, Change(NODE, "n", 1, 2).op, Change(NODE, "n", 1, None).op] == [
        "add", "update", "delete"]


def _two_hosts() -> Consumer:
    from novawatch.snapshot import NodeRecord

    nodes = [NodeRecord(uuid=NODES[i], host=h, hypervisor_hostname=h, vcpus=8, memory_mb=16384, local_gb=100)
             for i, h in enumerate(("a", "b"))]
    consumer = Consumer(from_snapshot(build(nodes, [])))
    for when, host in ((0.1, "a"), (0.2, "b")):
        assert consumer.process(service("service.update", host, when=when)) == APPLIED
    return consumer
