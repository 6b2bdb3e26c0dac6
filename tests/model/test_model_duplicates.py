"""Message ids (issue 13 item 6): the same id with the same content is a duplicate; reused for other content,
the notification is applied (its timestamp orders it as any other) and counted, never dropped."""

from __future__ import annotations

import json

from modelkit import UUIDS, instance

from novawatch.model import Consumer, to_snapshot
from novawatch.model.ordering import NEW, REUSED, SAME, RecentIds, fingerprint
from novawatch.model.outcome import APPLIED, DUPLICATE, STALE


def state_of(model: Consumer) -> tuple[str, str]:
    (inst,) = to_snapshot(model.cluster).instances
    return inst.state, inst.power_state


def test_a_redelivery_is_a_duplicate() -> None:
    model = Consumer()
    doc = instance("instance.create.end", UUIDS[0], when=1, mid="m-1")
    assert model.process(doc) == APPLIED
    assert model.process(doc) == DUPLICATE
    assert (model.stats.duplicate, model.stats.reused_ids) == (1, 0)


def test_issue_reproduction_newer_content_under_a_reused_id_is_applied_and_counted() -> None:
    model = Consumer()
    assert model.process(instance("instance.create.end", UUIDS[0], when=1, mid="m-1")) == APPLIED
    power_off = instance("instance.power_off.end", UUIDS[0], when=2, mid="m-1", state="stopped",
                         power_state="shutdown")
    assert model.process(power_off) == APPLIED
    assert state_of(model) == ("stopped", "shutdown")
    stats = model.stats
    assert (stats.applied, stats.duplicate, stats.reused_ids) == (2, 0, 1)
    assert model.last_note == "message id 'm-1' reused for other content: applied"
    assert "1 message ids reused for other content (applied)" in stats.summary()
    # The id now stands for the newer content: a redelivery of that is a duplicate.
    assert model.process(power_off) == DUPLICATE


def test_other_content_at_the_same_time_under_the_same_id_is_applied() -> None:
    model = Consumer()
    assert model.process(instance("instance.update", UUIDS[0], when=1, mid="m-1", name="a")) == APPLIED
    renamed = instance("instance.update", UUIDS[0], when=1, mid="m-1", name="a-longer-name")
    assert model.process(renamed) == APPLIED
    assert to_snapshot(model.cluster).instances[0].display_name == "a-longer-name"
    assert model.stats.reused_ids == 1


def test_an_older_notification_under_a_reused_id_is_ordered_like_any_other() -> None:
    model = Consumer()
    assert model.process(instance("instance.pause.end", UUIDS[0], when=5, mid="m-1", state="paused",
                                  power_state="paused")) == APPLIED
    assert model.process(instance("instance.update", UUIDS[0], when=1, mid="m-1")) == STALE
    assert state_of(model) == ("paused", "paused")
    assert (model.stats.stale, model.stats.reused_ids) == (1, 1)


def test_recent_ids_tell_redeliveries_from_reuse() -> None:
    recent = RecentIds(capacity=2)
    one = fingerprint("2026-01-01 00:00:01.000000", 100)
    assert recent.seen("a", one) == NEW
    assert recent.seen("a", one) == SAME
    assert recent.seen("a", fingerprint("2026-01-01 00:00:02.000000", 100)) == REUSED
    assert recent.seen("a", fingerprint("2026-01-01 00:00:02.000000", 100)) == SAME
    assert recent.seen("a", fingerprint("2026-01-01 00:00:02.000000", 101)) == REUSED
    assert recent.seen("a", fingerprint(None, 101)) == REUSED
    assert recent.seen("b", one) == NEW and recent.seen("c", one) == NEW
    assert recent.seen("a", one) == NEW  # forgotten: the oldest of three with room for two
    assert len(recent) == 2


def test_an_envelope_and_its_plain_form_are_not_taken_for_each_other_silently() -> None:
    model = Consumer()
    plain = instance("instance.update", UUIDS[0], when=1, mid="m-1")
    envelope = json.dumps({"oslo.version": "2.0", "oslo.message": plain.decode()}).encode()
    assert model.process(plain) == APPLIED
    # Another size: counted as reused and applied again (idempotent: same timestamp, same content).
    assert model.process(envelope) == APPLIED
    assert model.stats.reused_ids == 1
    assert model.process(envelope) == DUPLICATE
