"""novawatch's compute service against Nova 34's own code, step by step (interop/nova/parity.py).

The Nova capture is the session's (``nova_capture_file``: Nova's functional-test cloud ran the workload once);
the same steps run on novawatch's compute service, and every step's notifications are compared: the event
types in emission order (versioned and legacy interleaved), and each payload's object names, versions, keys
and value types.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.nova


@pytest.fixture(scope="module")
def capture(nova_check: ModuleType, nova_capture_file: Path) -> dict[str, Any]:
    result: dict[str, Any] = nova_check.read_capture(nova_capture_file)
    return result


@pytest.fixture(scope="module")
def parity(nova_check: ModuleType) -> ModuleType:
    module: ModuleType = nova_check.parity_module()
    return module


@pytest.fixture(scope="module")
def ours(parity: ModuleType, capture: dict[str, Any]) -> dict[str, Any]:
    run: dict[str, Any] = parity.run_novawatch(capture["ids"])
    return run


def _events(run: dict[str, Any], name: str) -> list[str]:
    step = next(s for s in run["steps"] if s["name"] == name)
    return [f"{'V' if r['topic'].startswith('versioned') else 'L'} {r['message']['event_type']}"
            for r in run["notifications"][step["first"]:step["end"]]]


def test_novawatch_sends_what_nova_sends_in_every_step(parity: ModuleType, capture: dict[str, Any],
                                                       ours: dict[str, Any]) -> None:
    report = parity.report(capture, ours)
    assert report["differences"] == []
    assert report["known_differences"] == {}  # no exception needed
    assert [s["name"] for s in report["steps"]] == [s["name"] for s in capture["steps"]]
    assert all(not s.get("error") for s in ours["steps"]), [s for s in ours["steps"] if s.get("error")]
    for step in report["steps"]:
        assert step["nova"] == step["novawatch"] > 0, step["name"]
    assert report["notifications"]["nova"] > 650


def test_the_differences_the_issue_named_are_measured(capture: dict[str, Any], ours: dict[str, Any]) -> None:
    """What issue 14 found by hand, seen in Nova's own run and in novawatch's (not only "no differences")."""
    for run in (capture, ours):
        rebuild = _events(run, "rebuild vm-d with image other")
        assert "V scheduler.select_destinations.start" in rebuild and "V instance.rebuild_scheduled" in rebuild
        assert "L compute.instance.rebuild.scheduled" in rebuild
        failed = _events(run, "live-migrate vm-c, which fails (rolled back)")
        assert failed[-2:] == ["L compute.instance.live_migration._rollback.end",
                               "V instance.live_migration_rollback.end"]
        assert not any("rollback_dest" in e for e in failed)  # nothing to clean up without a block migration
        rescheduled = _events(run, "boot vm-g, whose first build fails (rescheduled)")
        assert rescheduled.count("V instance.create.start") == 2 and "V instance.create.error" in rescheduled
        assert rescheduled[-1] == "V instance.create.end"
        cold = _events(run, "cold-migrate vm-b")
        assert "V instance.resize_finish.end" in cold
        assert _events(run, "boot vm-f, which no host can take") == [
            "L compute.instance.update", "V instance.update", "L compute_task.build_instances",
            "V compute_task.build_instances.error"]
    legacy = [r["message"]["payload"] for r in ours["notifications"] if not r["topic"].startswith("versioned")
              and r["message"]["event_type"].startswith("compute.instance.")]
    assert {p["progress"] for p in legacy} == {""}
    assert all(p["image_meta"] for p in legacy)
    assert not any("fixed_ips" in p for p in legacy if p.get("old_state") is not None)  # no network info on update
    exists = next(p for p in legacy if "audit_period_ending" in p and "old_state" not in p)
    assert " " in exists["audit_period_beginning"] and "T" not in exists["audit_period_beginning"]
    versions = {r["message"]["payload"]["nova_object.data"]["image"]["nova_object.data"]["properties"][
        "nova_object.version"] for r in ours["notifications"] if r["message"]["event_type"].startswith("scheduler.")
        and r["topic"].startswith("versioned")}
    assert versions == {"1.20"}
    errors = [r["message"]["payload"]["nova_object.data"]["fault"]["nova_object.data"] for r in ours["notifications"]
              if r["message"]["event_type"] == "instance.create.error"]
    assert errors and all(e["function_name"] and e["traceback"] for e in errors)


def test_the_comparison_sees_each_kind_of_difference(parity: ModuleType, capture: dict[str, Any],
                                                     ours: dict[str, Any]) -> None:
    """Not a check that cannot fail: a lost notification, an extra key, a value of another type, a version."""
    broken = copy.deepcopy(ours)
    step = next(s for s in broken["steps"] if s["name"] == "resize vm-a to medium")
    records = broken["notifications"]
    exists = next(r for r in records[step["first"]:step["end"]]
                  if r["message"]["event_type"] == "instance.exists")
    records.remove(exists)
    for s in broken["steps"]:
        if s["first"] > step["first"]:
            s["first"] -= 1
        if s["end"] > step["first"]:
            s["end"] -= 1
    stop = next(s for s in broken["steps"] if s["name"] == "stop vm-b")
    legacy = next(r for r in records[stop["first"]:stop["end"]] if not r["topic"].startswith("versioned"))
    legacy["message"]["payload"]["progress"] = 0
    legacy["message"]["payload"]["fixed_ips"] = []
    pause = next(s for s in broken["steps"] if s["name"] == "pause vm-a")
    versioned = next(r for r in records[pause["first"]:pause["end"]]
                     if r["message"]["event_type"] == "instance.pause.start")
    versioned["message"]["payload"]["nova_object.data"]["flavor"]["nova_object.version"] = "1.3"
    report = parity.report(capture, broken)
    text = "\n".join(report["differences"])
    assert "resize vm-a to medium: #" in text and "V instance.exists: Nova sends it, novawatch does not" in text
    assert "stop vm-b: #" in text and "payload.progress: Nova str \"\", novawatch int 0" in text
    assert "payload: novawatch adds fixed_ips" in text
    assert "pause vm-a: #" in text and "<FlavorPayload> version" not in text
    assert "flavor version: Nova 1.4, novawatch 1.3" in text
    assert len(report["differences"]) == 4


def test_the_check_script_reports_parity(nova_check: ModuleType, nova_capture_file: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.json"
    assert nova_check.main(["--capture", str(nova_capture_file), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "parity: novawatch's compute service ran the same" in out and ": 0 differences" in out
    data = json.loads(report.read_text())
    assert data["parity"]["differences"] == [] and len(data["parity"]["steps"]) == len(data["steps"])
