"""``novawatch model replay`` and ``novawatch model audit``, end to end with ``novawatch simulate``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from novawatch.cli import main

SIM_ARGS = ["--hosts", "5", "--instances", "20", "--actions", "300", "--seed", "3", "--failure-rate", "0.05",
            "--no-progress"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulate run: stream.jsonl, initial.json, truth.json."""
    d = tmp_path_factory.mktemp("sim")
    code = main(["simulate", *SIM_ARGS, "--stream", str(d / "stream.jsonl"), "--initial", str(d / "initial.json"),
                 "--truth", str(d / "truth.json")])
    assert code == 0
    return d


def test_replay_onto_initial_gives_the_truth_byte_for_byte(
    sim: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.json"
    capsys.readouterr()
    code = main(["model", "replay", str(sim / "stream.jsonl"), "--initial", str(sim / "initial.json"),
                 "--out", str(out)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0].startswith("applied ") and ", ignored " in lines[0] and lines[0].endswith(", rejected 0")
    total = sum(1 for line in (sim / "stream.jsonl").read_bytes().splitlines() if line.strip())
    counts = lines[0].replace(",", "").split()
    assert int(counts[1]) + int(counts[3]) == total
    assert out.read_bytes() == (sim / "truth.json").read_bytes()


def test_replay_with_reported_usage_and_without_initial(
    sim: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.json"
    assert main(["model", "replay", str(sim / "stream.jsonl"), "--out", str(out), "--reported"]) == 0
    doc = json.loads(out.read_bytes())
    assert doc["format"] == "novawatch.model/1"
    assert any("reported" in node for node in doc["nodes"]) or doc["nodes"] == []


def test_replay_counts_and_shows_rejections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stream = tmp_path / "stream.jsonl"
    good = {"event_type": "service.update", "priority": "INFO", "publisher_id": "nova-compute:h",
            "payload": {"nova_object.name": "ServiceStatusPayload", "nova_object.namespace": "nova",
                        "nova_object.version": "1.1",
                        "nova_object.data": {"host": "h", "binary": "nova-compute", "topic": "compute",
                                             "report_count": 1, "disabled": False, "disabled_reason": None,
                                             "availability_zone": None, "last_seen_up": None,
                                             "forced_down": False, "version": 66, "uuid": None}}}
    flavor = {"event_type": "keypair.create.end", "priority": "INFO", "publisher_id": "nova-api:h", "payload": {}}
    stream.write_text("\n".join([json.dumps(good), '{"event_type": "instance.update", "payl', "",
                                 json.dumps(flavor), json.dumps({**good, "event_type": "aggregate.nope"})]) + "\n")
    out = tmp_path / "model.json"
    assert main(["model", "replay", str(stream), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].startswith("applied 1, ignored 1 ")
    assert captured.out.splitlines()[0].endswith("rejected 2")
    assert f"rejected {stream}:2 -: not valid JSON" in captured.err
    assert f"rejected {stream}:4 keypair.create.end" in captured.err


def test_replay_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "replay", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "m.json")]) == 2
    assert "cannot read stream" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "other/1"}')
    (tmp_path / "s.jsonl").write_text("")
    assert main(["model", "replay", str(tmp_path / "s.jsonl"), "--initial", str(bad), "--out",
                 str(tmp_path / "m.json")]) == 2
    assert "snapshot" in capsys.readouterr().err


def test_audit_prints_drift_and_repairs(sim: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = (sim / "stream.jsonl").read_bytes().splitlines()
    kept = tmp_path / "kept.jsonl"
    # The last notifications are the last word on their entities: without them the model is behind.
    kept.write_bytes(b"\n".join(lines[:-40]) + b"\n")
    model = tmp_path / "model.json"
    assert main(["model", "replay", str(kept), "--initial", str(sim / "initial.json"), "--out", str(model)]) == 0
    capsys.readouterr()
    fixed = tmp_path / "fixed.json"
    code = main(["model", "audit", str(model), "--source", str(sim / "truth.json"), "--repair", str(fixed)])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert any(line.startswith(("instance ", "node ")) for line in out)
    assert any(" drifted (" in line for line in out)
    assert fixed.read_bytes() == (sim / "truth.json").read_bytes()
    assert main(["model", "audit", str(fixed), "--source", str(sim / "truth.json")]) == 0
    assert capsys.readouterr().out.startswith("0 drifted")


def test_model_replay_runs_as_a_program(sim: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.json"
    proc = subprocess.run(
        [sys.executable, "-m", "novawatch.cli", "model", "replay", str(sim / "stream.jsonl"), "--initial",
         str(sim / "initial.json"), "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == (sim / "truth.json").read_bytes()


def test_model_replay_starts_without_what_only_other_commands_use(sim: Path, tmp_path: Path) -> None:
    """Start-up is part of a replay's time: the table and bar library, asyncio and the configuration's
    loader are imported by the commands that use them, not by every command."""
    out = tmp_path / "model.json"
    script = ("import sys; from novawatch.cli import main; code = main(sys.argv[1:]); "
              "print(sorted(m for m in ('rich', 'asyncio', 'novawatch.config', 'fastapi', 'sqlalchemy', 'aio_pika')"
              " if m in sys.modules)); sys.exit(code)")
    proc = subprocess.run(
        [sys.executable, "-c", script, "model", "replay", str(sim / "stream.jsonl"), "--initial",
         str(sim / "initial.json"), "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"
    assert out.read_bytes() == (sim / "truth.json").read_bytes()
