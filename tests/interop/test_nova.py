"""Nova 34's own code as the producer: its functional-test cloud runs the workload, novawatch's model follows.

The capture is made once per session (``nova_capture_file``): Nova's in-process cloud with two fake
computes runs every step of interop/nova/workload.py; the model, bootstrapped from Nova's API view
before the workload, must end equal to Nova's API view after it.
"""

from __future__ import annotations

import copy
import datetime
import importlib.util
import itertools
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.nova

WORKLOAD = Path(__file__).resolve().parents[2] / "interop" / "nova" / "workload.py"
MESSAGE_KEYS = {"message_id", "publisher_id", "event_type", "priority", "payload", "timestamp"}
#: What issue 12 asks the workload to cover, as workload actions.
REQUIRED_ACTIONS = {"boot", "resize", "confirm_resize", "revert_resize", "live_migrate", "migrate", "shelve",
                    "shelve_offload", "unshelve", "attach_volume", "swap_volume", "detach_volume", "stop", "start",
                    "pause", "lock", "rebuild", "evacuate", "delete", "disable_service"}


@pytest.fixture(scope="module")
def workload() -> ModuleType:
    spec = importlib.util.spec_from_file_location("novawatch_interop_nova_workload", WORKLOAD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def capture(nova_check: ModuleType, nova_capture_file: Path) -> dict[str, Any]:
    result: dict[str, Any] = nova_check.read_capture(nova_capture_file)
    return result


def test_every_notification_in_emission_order_with_its_topic(capture: dict[str, Any]) -> None:
    records = capture["notifications"]
    assert [r["seq"] for r in records] == list(range(len(records)))
    topics = {r["topic"] for r in records}
    assert {"versioned_notifications.info", "notifications.info"} <= topics
    assert topics <= {f"{t}.{p}" for t in ("versioned_notifications", "notifications") for p in ("info", "error")}
    assert "versioned_notifications.error" in topics  # the boot that no host could take
    for r in records:
        message = r["message"]
        assert set(message) == MESSAGE_KEYS, message
        assert message["priority"] == r["topic"].rsplit(".", 1)[1].upper()
        datetime.datetime.fromisoformat(message["timestamp"])
        versioned = r["topic"].startswith("versioned_notifications.")
        assert ("nova_object.data" in message["payload"]) == versioned, message["event_type"]
    assert len({r["message"]["message_id"] for r in records}) == len(records)
    # Legacy and versioned interleave: each versioned instance.update has its legacy twin right before it.
    events = [r["message"]["event_type"] for r in records]
    assert any(a == "compute.instance.update" and b == "instance.update" for a, b in itertools.pairwise(events))


def test_every_workload_step_produced_notifications(capture: dict[str, Any], workload: ModuleType,
                                                    nova_check: ModuleType) -> None:
    steps = [s for s in capture["steps"] if s["phase"] == "workload"]
    assert [s["name"] for s in steps] == [s.name for s in workload.WORKLOAD]
    assert {s["action"] for s in steps} >= REQUIRED_ACTIONS
    assert steps[0]["first"] == capture["views"]["before"]["at"]
    assert steps[-1]["end"] == capture["views"]["after"]["at"] == len(capture["notifications"])
    for previous, step in itertools.pairwise(steps):
        assert step["first"] == previous["end"]
    counts = {s["name"]: s for s in nova_check.step_counts(capture)}
    for step in steps:
        assert step["end"] > step["first"], f"step {step['name']!r} produced no notification"
        if step["action"] not in workload.HOST_ACTIONS:
            assert counts[step["name"]]["versioned"] > 0, step["name"]
    # Actions with a legacy notification produced one; volume swap and lock have none in Nova.
    assert counts["stop vm-b"]["legacy"] > 0 and counts["swap volume old for new on vm-a"]["legacy"] == 0


def test_api_views(capture: dict[str, Any]) -> None:
    before, after = capture["views"]["before"], capture["views"]["after"]
    for view in (before, after):
        assert view["microversions"]["hypervisors"] == "2.87"
        assert sorted(h["service"]["host"] for h in view["hypervisors"]) == ["host1", "host2"]
        assert all(h["vcpus"] > 0 and h["memory_mb"] > 0 for h in view["hypervisors"])  # capacity up to 2.87
        assert {"small", "medium", "large"} <= {f["name"] for f in view["flavors"]}
    names = lambda servers: sorted(s["name"] for s in servers)  # noqa: E731
    assert names(before["servers"]) == ["pre-1", "pre-2", "pre-3"] and before["soft_deleted_servers"] == []
    assert names(after["soft_deleted_servers"]) == ["vm-d"]
    assert "vm-a" not in names(after["servers"]) and "vm-d" not in names(after["servers"])
    disabled = [h for h in after["hypervisors"] if h["status"] == "disabled"]
    assert [(h["service"]["host"], h["service"]["disabled_reason"]) for h in disabled] == [("host2", "maintenance")]


@pytest.mark.parametrize("mode", ["all", "versioned", "legacy"])
def test_model_ends_where_nova_does(capture: dict[str, Any], nova_check: ModuleType, mode: str) -> None:
    result = nova_check.check_mode(capture, mode)
    assert result.rejections == []
    assert result.differences == []
    assert (result.stats["future_timestamps"], result.stats["reused_ids"]) == (0, 0)
    assert result.stats["applied"] > 100
    if mode == "versioned":
        assert result.not_compared == []


def test_check_sees_a_lost_step(capture: dict[str, Any], nova_check: ModuleType) -> None:
    """Not a check that cannot fail: without the notifications of one step the model is behind Nova."""
    step = next(s for s in capture["steps"] if s["name"] == "delete vm-a")
    broken = copy.deepcopy(capture)
    broken["notifications"] = [r for r in broken["notifications"] if not step["first"] <= r["seq"] < step["end"]]
    vm_a = capture["ids"]["servers"]["vm-a"]
    for mode in ("all", "versioned", "legacy"):
        result = nova_check.check_mode(broken, mode)
        assert f"instance {vm_a} unexpected" in result.differences, (mode, result.differences)


def test_check_script_runs(nova_capture_file: Path, nova_check: ModuleType, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.json"
    assert nova_check.main(["--capture", str(nova_capture_file), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "OK: novawatch's model equals Nova's API in every mode" in out
    for mode in ("all", "versioned", "legacy"):
        assert f"{mode:<9}" in out
    data = json.loads(report.read_text())
    assert data["ok"] is True
    assert data["captured"]["versioned"] > 0 and data["captured"]["legacy"] > 0


def test_check_script_on_a_bad_capture(nova_check: ModuleType, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert nova_check.main(["--capture", str(tmp_path / "missing.json")]) == 2
    assert "cannot read the capture" in capsys.readouterr().err
    (tmp_path / "other.json").write_text('{"format": "novawatch.model/1"}')
    assert nova_check.main(["--capture", str(tmp_path / "other.json")]) == 2
    assert "is not a novawatch.nova-capture/1 capture" in capsys.readouterr().err


def test_catalog_knows_every_field_and_version_nova_sends(capture: dict[str, Any], nova_check: ModuleType) -> None:
    catalog = nova_check.catalog_conformance(capture)
    assert catalog["extra_fields"] == []
    assert catalog["version_differences"] == []
    # Without the topic (a stream file) the decoder tells legacy twins of versioned event types by their shape.
    assert catalog["rejected_event_types"] == {} and catalog["warnings"] == {}
    assert set(catalog["unknown_event_types"]) <= {"compute_task.build_instances"}
    assert len(catalog["versioned_payloads"]) >= 10
    assert "InstanceUpdatePayload 2.1" in catalog["versioned_payloads"]


def test_catalog_check_sees_an_unknown_field_and_version(capture: dict[str, Any], nova_check: ModuleType) -> None:
    tampered = copy.deepcopy(capture)
    first = next(r for r in tampered["notifications"] if r["message"]["event_type"] == "instance.update")
    payload = first["message"]["payload"]
    payload["nova_object.data"]["shiny_new_field"] = 1
    payload["nova_object.data"]["flavor"]["nova_object.version"] = "1.99"
    catalog = nova_check.catalog_conformance(tampered)
    assert catalog["extra_fields"] == ["InstanceUpdatePayload.shiny_new_field"]
    assert catalog["version_differences"] == ["FlavorPayload: Nova 1.99, catalog 1.4"]


def test_nova_api_read_live_through_the_nova_source(capture: dict[str, Any], nova_check: ModuleType) -> None:
    """The data model's own Nova source (``model serve --compute-url``) read Nova's real API over HTTP at both
    views, and got what the captured JSON converts to; the model was bootstrapped from that read."""
    agreement = nova_check.source_agreement(capture)
    for view in ("before", "after"):
        assert agreement[view]["read"] is True, agreement[view]
        assert agreement[view]["differences"] == [] and agreement[view]["problems"] == []
    live = capture["views"]["after"]["source"]["snapshot"]
    assert {i["display_name"] for i in live["instances"]} >= {"vm-d", "pre-1"}  # the soft-deleted one too
    assert next(i for i in live["instances"] if i["display_name"] == "vm-d")["state"] == "soft-delete"
