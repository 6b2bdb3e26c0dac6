"""The model takes what Nova sends (issue 12 item 4): legacy halves of shared event types, captured
notifications without priority, message id or timestamp, enum values a newer Nova added."""

from __future__ import annotations

import json
from typing import Any

from modelkit import UUIDS, instance, legacy, sample

from novawatch.model import Consumer, to_snapshot
from novawatch.model.outcome import APPLIED, IGNORED, REJECTED


def shared_legacy(event_type: str, payload: dict[str, Any], publisher: str) -> bytes:
    return json.dumps({"event_type": event_type, "payload": payload, "priority": "INFO",
                       "publisher_id": publisher, "message_id": event_type, "timestamp": "2026-01-01 00:00:01.0"
                       }).encode()


def test_legacy_halves_of_shared_event_types_are_ignored_not_rejected() -> None:
    model = Consumer()
    docs = [
        shared_legacy("scheduler.select_destinations.start", {"request_spec": {"num_instances": 1}}, "scheduler.h"),
        shared_legacy("keypair.create.end", {"tenant_id": "t", "user_id": "u", "key_name": "k"}, "api.h"),
        shared_legacy("aggregate.delete.start", {"aggregate_id": 3}, "aggregate.3"),
    ]
    assert [model.process(doc) for doc in docs] == [IGNORED] * 3
    assert [model.process(doc, legacy=True) for doc in docs] == [IGNORED] * 3  # as the legacy topic says
    assert model.stats.rejected == 0
    versioned = json.dumps(sample("scheduler-select_destinations-start")).encode()
    assert model.process(versioned) == IGNORED
    assert model.process(versioned, legacy=True) == REJECTED  # an envelope on the legacy topic
    (letter,) = model.dead_letters
    assert "came on the legacy topic 'notifications'" in letter.reason


def test_captured_notifications_without_priority_id_or_timestamp_are_applied_in_arrival_order() -> None:
    model = Consumer()
    docs = []
    for event_type, state in (("instance.create.end", "active"), ("instance.pause.end", "paused")):
        doc = json.loads(instance(event_type, UUIDS[0], state=state))
        for field in ("priority", "message_id", "timestamp"):
            doc.pop(field, None)
        docs.append(json.dumps(doc).encode())
    assert [model.process(doc) for doc in docs] == [APPLIED, APPLIED]
    assert to_snapshot(model.cluster).instances[0].state == "paused"


def test_an_unknown_vm_state_is_kept_and_the_model_stays_consistent() -> None:
    model = Consumer()
    uuid = UUIDS[0]
    assert model.process(instance("instance.create.end", uuid, when=1)) == APPLIED
    assert model.process(instance("instance.update", uuid, when=2, state="hibernated", power_state="dozing",
                                  task_state="napping")) == APPLIED
    inst = to_snapshot(model.cluster).instances[0]
    assert (inst.state, inst.power_state, inst.task_state) == ("hibernated", "dozing", "napping")
    assert model.cluster.store.instances_by_state == {"hibernated": {uuid}}
    # A legacy notification with a state this reader does not know keeps the power state it knew.
    assert model.process(legacy("compute.instance.update", uuid, when=3, state="frozen")) == APPLIED
    inst = to_snapshot(model.cluster).instances[0]
    assert (inst.state, inst.power_state) == ("frozen", "dozing")
    assert model.process(instance("instance.power_off.end", uuid, when=4, state="stopped",
                                  power_state="shutdown")) == APPLIED
    assert model.cluster.store.instances_by_state == {"stopped": {uuid}}
    assert model.cluster.store.check() == []
    assert model.stats.rejected == 0
