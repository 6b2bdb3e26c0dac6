"""Convergence: replaying what the compute service emitted onto its initial snapshot gives its truth.

Each seed runs ``simulate`` once (10,000 actions, failures injected, ``notification_format=both``); the
versioned-only and legacy-only streams are its two halves (the simulation draws the workload from its own
RNG, so the format does not change the truth: ``test_formats_emitted_directly`` checks that against
``--format versioned``/``unversioned`` runs).

Legacy-only cannot give the exact truth, by Nova's design rather than the model's: Nova's legacy
``compute.instance.*`` payloads (``nova.notifications.base.info_from_instance``) carry no power state, lock,
swap or block devices, and Nova sends no legacy notification for service or compute node changes, lock,
unlock or volume swap. Those tests compare every field the legacy format carries, and check that the rest
differs only in those fields.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import pytest

from novawatch.model import Auditor, Consumer, audit_snapshots, from_snapshot, to_snapshot
from novawatch.notifications import NotificationFormat
from novawatch.simulate import Config
from novawatch.snapshot import InstanceRecord, Snapshot, SnapshotSource, dumps, loads
from simkit import simulate_collected

pytestmark = pytest.mark.slow

SEEDS = (1, 2, 3, 4, 5)
ACTIONS = 10_000

#: Instance fields a legacy notification carries (or that follow from what it carries).
LEGACY_FIELDS = ("uuid", "host", "node", "project_id", "display_name", "state", "power_state", "task_state",
                 "vcpus", "memory_mb")
#: What only versioned notifications can tell (see the module docstring).
LEGACY_BLIND = {("instance", "locked"), ("instance", "disk_gb"), ("instance", "volumes"), ("node", "missing"),
                ("node", "unexpected"), ("node", "status"), ("node", "disabled_reason"), ("node", "state"),
                ("node", "local_gb_used"), ("node", "vcpus"), ("node", "memory_mb"), ("node", "local_gb")}


@dataclass(frozen=True)
class Run:
    initial: Snapshot
    stream: tuple[bytes, ...]
    truth: bytes


def simulate(seed: int, actions: int = ACTIONS, fmt: str = "both") -> Run:
    return Run(*simulate_collected(Config(hosts=20, instances=200, actions=actions, seed=seed, failure_rate=0.05,
                                          notification_format=fmt)))


@cache
def run(seed: int) -> Run:
    return simulate(seed)


def versioned(stream: tuple[bytes, ...]) -> list[bytes]:
    return [doc for doc in stream if not doc.startswith(b'{"event_type":"compute.')]


def legacy(stream: tuple[bytes, ...]) -> list[bytes]:
    return [doc for doc in stream if doc.startswith(b'{"event_type":"compute.')]


def replay(initial: Snapshot, stream: list[bytes]) -> tuple[Consumer, bytes]:
    consumer = Consumer(from_snapshot(initial))
    stats = consumer.process_all(stream)
    assert stats.rejected == 0, list(consumer.dead_letters)[:3]
    assert consumer.cluster.store.check() == []
    return consumer, dumps(to_snapshot(consumer.cluster, reported=False))


def reordered(stream: list[bytes], seed: int, window: float = 3.0) -> list[bytes]:
    """Each notification moved by up to ``window`` seconds of notification time."""
    rng = random.Random(seed)

    def moment(doc: bytes) -> float:
        return datetime.fromisoformat(json.loads(doc)["timestamp"]).timestamp() + rng.uniform(0, window)

    keyed = sorted((moment(doc), i, doc) for i, doc in enumerate(stream))
    assert [i for _, i, _ in keyed] != list(range(len(stream)))
    return [doc for _, _, doc in keyed]


def twice(stream: list[bytes], seed: int) -> list[bytes]:
    """Every notification delivered twice: the copy right after it, or a little later, or much later."""
    rng = random.Random(seed)
    out: list[bytes] = []
    late: list[bytes] = []
    for doc in stream:
        out.append(doc)
        roll = rng.random()
        if roll < 0.4:
            out.append(doc)
        elif roll < 0.8:
            out.insert(max(0, len(out) - rng.randrange(1, 50)), doc)
        else:
            late.append(doc)
    return out + late


def legacy_view(data: bytes) -> list[tuple[Any, ...]]:
    snapshot = Snapshot(instances=[InstanceRecord(**r) for r in json.loads(data)["instances"]])
    return [tuple(getattr(i, f) for f in LEGACY_FIELDS) for i in snapshot.instances]


def check_legacy(initial: Snapshot, stream: list[bytes], truth: bytes) -> None:
    consumer, got = replay(initial, stream)
    assert legacy_view(got) == legacy_view(truth)
    drift = audit_snapshots(to_snapshot(consumer.cluster, reported=False), _loads(truth))
    blind = {(d.kind, f.field) for d in drift for f in d.fields} | {(d.kind, d.problem) for d in drift if not d.fields}
    assert blind <= LEGACY_BLIND, blind - LEGACY_BLIND


def _loads(data: bytes) -> Snapshot:
    return loads(data)


@pytest.mark.parametrize("seed", SEEDS)
def test_both_formats_give_the_truth(seed: int) -> None:
    r = run(seed)
    assert replay(r.initial, list(r.stream))[1] == r.truth


@pytest.mark.parametrize("seed", SEEDS)
def test_versioned_only_gives_the_truth(seed: int) -> None:
    r = run(seed)
    assert replay(r.initial, versioned(r.stream))[1] == r.truth


@pytest.mark.parametrize("seed", SEEDS)
def test_legacy_only_gives_every_field_legacy_carries(seed: int) -> None:
    r = run(seed)
    check_legacy(r.initial, legacy(r.stream), r.truth)


@pytest.mark.parametrize("seed", SEEDS)
def test_reordered_streams_give_the_truth(seed: int) -> None:
    r = run(seed)
    assert replay(r.initial, reordered(list(r.stream), seed))[1] == r.truth
    assert replay(r.initial, reordered(versioned(r.stream), seed))[1] == r.truth
    check_legacy(r.initial, reordered(legacy(r.stream), seed), r.truth)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_notification_delivered_twice_gives_the_truth(seed: int) -> None:
    r = run(seed)
    consumer, got = replay(r.initial, twice(list(r.stream), seed))
    assert got == r.truth
    # Every copy of a notification the model uses is dropped as a duplicate (the others are not needed).
    assert consumer.stats.duplicate == len(r.stream) - consumer.stats.not_needed // 2
    assert replay(r.initial, twice(versioned(r.stream), seed))[1] == r.truth
    check_legacy(r.initial, twice(legacy(r.stream), seed), r.truth)


@pytest.mark.parametrize("seed", SEEDS)
def test_drops_are_found_by_audit_and_repaired(seed: int) -> None:
    r = run(seed)
    rng = random.Random(seed)
    # Versioned only: with both formats, each notification's legacy twin would make up for most losses.
    stream = versioned(r.stream)
    kept = [doc for doc in stream if rng.random() >= 0.01]
    assert len(kept) < len(stream)
    consumer, got = replay(r.initial, kept)
    truth = SnapshotSource(_loads(r.truth))
    auditor = Auditor(consumer.cluster, truth)
    drift = auditor.run(fix=False)
    # Some drops are harmless (a later notification carries the same state); then audit must find nothing.
    assert bool(drift) == (got != r.truth) and auditor.drift_count == len(drift)
    expected = audit_snapshots(_loads(got), truth.snapshot)
    assert [d.uuid for d in drift] == [d.uuid for d in expected]
    auditor.run(fix=True)
    assert dumps(to_snapshot(consumer.cluster, reported=False)) == r.truth
    assert auditor.run() == [] and auditor.drift_count == 0


@pytest.mark.parametrize("fmt", [NotificationFormat.VERSIONED, NotificationFormat.UNVERSIONED])
def test_formats_emitted_directly(fmt: NotificationFormat) -> None:
    r = simulate(SEEDS[0], fmt=fmt.value)
    both = run(SEEDS[0])
    assert r.truth == both.truth
    if fmt is NotificationFormat.VERSIONED:
        assert replay(r.initial, list(r.stream))[1] == r.truth
    else:
        check_legacy(r.initial, list(r.stream), r.truth)
