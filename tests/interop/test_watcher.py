"""python-watcher's own compute data model, fed the same stream as novawatch's: mapping, states, differences."""

from __future__ import annotations

import copy
import json
import uuid as uuidlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from novawatch import snapshot
from novawatch.snapshot import InstanceRecord, NodeRecord

pytestmark = pytest.mark.watcher

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "nova-notification-samples"
A = "178b0921-8f85-4257-88b6-2e743b5a975c"  # the samples' own instance
B = "22222222-0000-4000-8000-000000000002"
C = "33333333-0000-4000-8000-000000000003"
NODE = "44444444-0000-4000-8000-000000000004"


def _sample(name: str, n: int, **data: Any) -> dict[str, Any]:
    doc: dict[str, Any] = copy.deepcopy(json.loads((SAMPLES / f"{name}.json").read_text()))
    doc["payload"]["nova_object.data"].update(data)
    doc["message_id"] = str(uuidlib.UUID(int=n))
    doc["timestamp"] = f"2030-01-01 00:00:{n:02d}.000000"
    return doc


def _write_inputs(tmp: Path) -> tuple[Path, Path]:
    """A hand-made initial snapshot (host "compute" with instance C) and a stream built from Nova's samples."""
    initial = snapshot.build(
        [NodeRecord(uuid=NODE, host="compute", hypervisor_hostname="fake-mini", vcpus=16, memory_mb=32768,
                    local_gb=500)],
        [InstanceRecord(uuid=C, host="compute", node="fake-mini", project_id="6f70656e737461636b20342065766572",
                        display_name="c", state="active", power_state="running", vcpus=1, memory_mb=512,
                        disk_gb=1)],
    )
    stream = [
        _sample("instance-create-end", 1),
        _sample("instance-power_off-end", 2),
        _sample("instance-shelve_offload-end", 3),  # Watcher ignores it: A stays "stopped" on "compute"
        _sample("instance-create-end", 4, uuid=B),
        _sample("instance-soft_delete-end", 5, uuid=B),  # Watcher deletes B; the contract keeps it
        _sample("instance-power_off-end", 6, uuid=C),
        _sample("service-update", 7, host="compute", disabled=True, disabled_reason="maintenance"),
    ]
    snapshot.write(tmp / "initial.json", initial)
    (tmp / "stream.jsonl").write_text("".join(json.dumps(m) + "\n" for m in stream))
    return tmp / "initial.json", tmp / "stream.jsonl"


def test_watcher_model_on_nova_samples(tmp_path: Path, check: ModuleType, watcher_python: Path) -> None:
    initial, stream = _write_inputs(tmp_path)
    watcher = check.run_watcher(watcher_python, initial, stream)
    assert watcher["watcher_version"] == check.WATCHER_VERSION
    assert watcher["instances"][A]["host"] == "compute" and watcher["instances"][A]["state"] == "stopped"
    assert B not in watcher["instances"]
    assert watcher["instances"][C]["host"] == "compute" and watcher["instances"][C]["state"] == "stopped"
    assert watcher["nodes"][NODE]["status"] == "disabled"
    assert watcher["nodes"][NODE]["disabled_reason"] == "maintenance"
    assert watcher["counts"]["handled"] == 6 and watcher["counts"]["requeued"] == []

    report = check.check(initial, stream, None, watcher_python)
    found = {(d["uuid"], d["field"], d["kind"]) for d in report["differences"]}
    assert found == {
        (A, "host", "ignored:instance.shelve_offload.end"),
        (A, "state", "ignored:instance.shelve_offload.end"),
        (B, "presence", "soft-deleted-removed"),
    }, report["lines"]


def test_watcher_check_on_a_simulated_stream(tmp_path: Path, check: ModuleType, watcher_python: Path) -> None:
    initial, stream, truth = check.simulate(tmp_path, hosts=5, instances=20, actions=400, seed=5)
    report = check.check(initial, stream, truth, watcher_python)
    # novawatch's model is the truth; every way Watcher's differs has a known reason.
    nw = check.novawatch_model(initial, stream)
    assert json.dumps(nw, sort_keys=True) == json.dumps(json.loads(truth.read_text()), sort_keys=True)
    assert "unexplained" not in report["kinds"], report["lines"]
    different = {d["uuid"] for d in report["differences"] if d["entity"] == "instance"}
    watcher = report["watcher"]["instances"]
    agreeing = [u for u, i in report["novawatch"]["instances"].items() if u not in different]
    assert agreeing, "Watcher and novawatch agree on no instance at all"
    for uuid in agreeing:
        assert watcher[uuid]["host"] == report["novawatch"]["instances"][uuid]["host"]
        assert watcher[uuid]["state"] == report["novawatch"]["instances"][uuid]["state"]


def test_check_script_runs(tmp_path: Path, check: ModuleType, watcher_python: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    initial, stream = _write_inputs(tmp_path)
    assert check.main(["--initial", str(initial), "--stream", str(stream), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "3 differences from novawatch's model:" in out and "soft-deleted-removed" in out
    assert json.loads((tmp_path / "r.json").read_text())["kinds"]["soft-deleted-removed"] == 1
