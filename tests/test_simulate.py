"""``novawatch simulate``: deterministic files, and the compute service's books after many random actions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from novawatch import snapshot
from novawatch.cli import main
from novawatch.compute import db
from novawatch.compute.invariants import violations
from novawatch.notifications import Notification, decode
from novawatch.notifications.catalog.compute_node import NOTIFY_ON_CHANGE
from novawatch.simulate import DEFAULT_MIX, Config, Simulation, parse_mix


def _simulate(tmp: Path, name: str, *extra: str, actions: int = 400) -> dict[str, bytes]:
    files = {k: tmp / f"{name}.{k}" for k in ("stream", "initial", "truth")}
    code = main(["simulate", "--hosts", "8", "--instances", "20", "--actions", str(actions), "--seed", "7",
                 "--failure-rate", "0.05", "--no-progress", "--stream", str(files["stream"]),
                 "--initial", str(files["initial"]), "--truth", str(files["truth"]), *extra])
    assert code == 0
    return {k: p.read_bytes() for k, p in files.items()}


def test_same_arguments_same_bytes(tmp_path: Path) -> None:
    one = _simulate(tmp_path, "one")
    two = _simulate(tmp_path, "two")
    assert one == two
    lines = one["stream"].splitlines()
    assert len(lines) > 1000
    stamps = []
    for line in lines:
        n = decode(line)  # every notification passes the catalog
        assert isinstance(n.message_id, str) and isinstance(n.timestamp, str)
        stamps.append(n.timestamp)
    assert len(set(stamps)) == len(stamps) and stamps == sorted(stamps)  # own timestamp each, microsecond steps
    initial, truth = snapshot.loads(one["initial"]), snapshot.loads(one["truth"])
    assert len(initial.nodes) == 8 and len(initial.instances) == 20
    assert truth.format == "novawatch.model/1"


def test_format_changes_the_stream_not_the_truth(tmp_path: Path) -> None:
    both = _simulate(tmp_path, "both")
    versioned = _simulate(tmp_path, "v", "--format", "versioned")
    legacy = _simulate(tmp_path, "u", "--format", "unversioned")
    assert both["truth"] == versioned["truth"] == legacy["truth"]
    assert b'"compute.instance.' not in versioned["stream"]
    # Legacy only: compute.instance.*, and the scheduler's and conductor's legacy dicts; no nova_object anywhere.
    assert b'"nova_object.' not in legacy["stream"]
    assert all(decode(line).event_type.startswith(("compute.instance.", "scheduler.", "compute_task."))
               for line in legacy["stream"].splitlines())


def test_same_seed_same_truth_on_sqlite_and_postgresql(tmp_path: Path, postgres: str) -> None:
    lite = _simulate(tmp_path, "lite", actions=1500)
    pg = _simulate(tmp_path, "pg", "--db", postgres, actions=1500)
    assert lite["truth"] == pg["truth"]
    assert lite["initial"] == pg["initial"]
    assert lite["stream"] == pg["stream"]


def test_bad_mix_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_mix("boot=3, delete=1") == {"boot": 3.0, "delete": 1.0}
    with pytest.raises(ValueError, match="explode"):
        parse_mix("explode=1")
    assert main(["simulate", "--mix", "boot=x", "--no-progress"]) == 2
    assert "bad weight" in capsys.readouterr().err


class _Watcher:
    """A driver that checks the stream as it flows: decodes, the compute_node.update rule, last states."""

    def __init__(self) -> None:
        self.sent = 0
        self.node_values: dict[str, tuple[Any, ...]] = {}
        self.last_state: dict[str, tuple[Any, ...]] = {}
        self.bad_updates: list[str] = []

    def send(self, topic: str, notification: Notification[Any], body: bytes) -> None:
        self.sent += 1
        n = decode(body)
        kind = n.event_type
        if kind in ("compute_node.create", "compute_node.update"):
            data = n.payload.data
            values = tuple(getattr(data, f) for f in NOTIFY_ON_CHANGE)
            if kind == "compute_node.update" and self.node_values.get(data.uuid) == values:
                self.bad_updates.append(f"{data.host}: {values}")
            self.node_values[data.uuid] = values
        elif kind.startswith("instance.") and kind not in ("instance.exists", "instance.live_migration_post.end"):
            # live_migration_post.end is the source's stale copy of the instance, as in Nova.
            data = n.payload.data
            self.last_state[data.uuid] = (data.state, data.task_state, data.power_state, data.host)


@pytest.fixture
def touched() -> Iterator[set[str]]:
    """Uuids of instances whose vm/task/power state or host was assigned."""
    seen: set[str] = set()

    def listener(target: db.Instance, value: Any, old: Any, initiator: Any) -> None:
        seen.add(target.uuid)

    attrs = (db.Instance.vm_state, db.Instance.task_state, db.Instance.power_state, db.Instance.host)
    for attr in attrs:
        event.listen(attr, "set", listener)
    try:
        yield seen
    finally:
        for attr in attrs:
            event.remove(attr, "set", listener)


@pytest.mark.slow
def test_ten_thousand_random_actions_keep_the_books(touched: set[str]) -> None:
    watcher = _Watcher()
    mix = dict.fromkeys(DEFAULT_MIX, 1.0) | {"boot": 8.0, "delete": 4.0, "service_force_down": 0.3}
    sim = Simulation(Config(hosts=30, instances=150, actions=10_000, seed=11, failure_rate=0.05, mix=mix),
                     [watcher])
    try:
        sim.setup()
        sim.start()
        svc = sim.service
        unreported: list[str] = []
        for done in range(1, sim.config.actions + 1):
            touched.clear()
            sim.step()
            for uuid in touched:
                inst = svc.instances.get(uuid)
                if inst is None:
                    continue
                now = (inst.vm_state, inst.task_state, inst.power_state, inst.host)
                if watcher.last_state.get(uuid) != now:
                    unreported.append(f"action {done}: {uuid} is {now}, last notified {watcher.last_state.get(uuid)}")
            if done % 500 == 0:
                assert violations(svc) == [], f"after {done} actions"
                svc.commit()
        stats = sim.finish()
        assert unreported == []
        assert watcher.bad_updates == []
        assert violations(svc) == []
        assert stats.total_actions == 10_000 and stats.faults > 100
        assert set(stats.actions) >= {"boot", "delete", "resize", "live_migrate", "evacuate", "swap_volume",
                                      "attach_interface", "unshelve", "service_create"}
        truth = sim.truth()
        for node in truth.nodes:
            cap = svc.nodes[node.host]
            assert node.vcpus_used <= cap.vcpus * cap.cpu_allocation_ratio
            assert node.memory_mb_used <= cap.memory_mb * cap.ram_allocation_ratio
            assert node.local_gb_used <= cap.local_gb * cap.disk_allocation_ratio
    finally:
        sim.close()


def test_replaying_the_stream_on_the_initial_snapshot_gives_the_truth(tmp_path: Path) -> None:
    """The whole contract end to end: the data model, fed --initial and --stream, ends at --truth."""
    files = _simulate(tmp_path, "e2e", actions=1500)
    out = tmp_path / "model.json"
    code = main(["model", "replay", str(tmp_path / "e2e.stream"), "--initial", str(tmp_path / "e2e.initial"),
                 "--out", str(out)])
    assert code == 0
    truth, model = snapshot.loads(files["truth"]), snapshot.read(out)
    assert model.instances == truth.instances
    for mine, theirs in zip(model.nodes, truth.nodes, strict=True):
        theirs.reported = mine.reported  # the model may add what compute_node.* last reported
        assert mine == theirs
