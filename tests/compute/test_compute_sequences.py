"""The documented action -> notifications table is what the code emits, and all of it decodes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from novawatch.compute import sequences
from novawatch.notifications import decode

DOC = Path(__file__).resolve().parents[2] / "docs" / "actions.md"


def test_docs_table_matches_the_code() -> None:
    assert DOC.read_text() == sequences.document(), "regenerate with: novawatch compute actions > docs/actions.md"


def test_every_notification_of_every_action_decodes() -> None:
    table = sequences.record("both", check=decode)
    assert len(table) == len(sequences.ROWS)
    assert all(events for action, events in table if not action.startswith("service ")), table


def test_sequences_follow_nova() -> None:
    """Spot checks against Nova 34's code and functional notification tests (versioned, without instance.update).

    The whole of a workload is compared with Nova's own run by tests/interop/test_nova_parity.py.
    """
    table = {a: [e for e in ev if e != "instance.update" and not e.startswith(("compute_node.", "scheduler."))]
             for a, ev in sequences.record("versioned")}
    scheduled = {a: [e for e in ev if e.startswith("scheduler.")] for a, ev in sequences.record("versioned")}
    select = ["scheduler.select_destinations.start", "scheduler.select_destinations.end"]
    assert scheduled["boot"] == select
    assert scheduled["boot on a requested host"] == select  # Nova asks the scheduler about a requested host too
    assert table["boot"] == ["instance.create.start", "instance.create.end"]
    attempt = ["instance.create.start", "instance.shutdown.start", "instance.shutdown.end", "instance.create.error"]
    # max_attempts = 3: the scheduler's alternates are tried, then the conductor gives up.
    assert table["boot (spawn fails once: rescheduled)"] == [*attempt, "instance.create.start", "instance.create.end"]
    assert table["boot (spawn fails on every host)"] == [*attempt * 3, "compute_task.build_instances.error"]
    assert table["boot on a forced host (spawn fails: not rescheduled)"] == attempt
    # No node has room: Placement has no candidate and the scheduler gives up before it notifies.
    assert scheduled["boot (no valid host)"] == []
    assert table["boot (no valid host)"] == ["compute_task.build_instances.error"]
    assert table["delete"] == ["instance.delete.start", "instance.shutdown.start", "instance.shutdown.end",
                               "instance.delete.end"]
    resize = ["instance.exists", "instance.resize_prep.start", "instance.resize_prep.end", "instance.resize.start",
              "instance.resize.end", "instance.resize_finish.start", "instance.resize_finish.end"]
    assert table["resize"] == table["cold migrate"] == resize
    assert scheduled["resize"] == scheduled["cold migrate"] == select
    assert table["resize revert"] == ["instance.exists", "instance.resize_revert.start", "instance.resize_revert.end"]
    assert table["cold migrate confirm"] == ["instance.resize_confirm.start", "instance.resize_confirm.end"]
    assert table["live migration start (pre)"] + table["live migration complete (post)"] == [
        "instance.live_migration_pre.start", "instance.live_migration_pre.end",
        "instance.live_migration_post.start", "instance.live_migration_post_dest.start",
        "instance.live_migration_post_dest.end", "instance.live_migration_post.end"]
    # A failed (block) migration: the destination's cleanup is a cast, after the source's rollback.end.
    assert table["live migration start (fails: rollback)"] == [
        "instance.live_migration_pre.start", "instance.live_migration_pre.end",
        "instance.live_migration_rollback.start", "instance.live_migration_rollback.end",
        "instance.live_migration_rollback_dest.start", "instance.live_migration_rollback_dest.end"]
    # An abort has nothing to clean up on the destination (Nova's test_live_migration_abort).
    assert table["live migration abort (rollback)"] == [
        "instance.live_migration_abort.start", "instance.live_migration_abort.end",
        "instance.live_migration_rollback.start", "instance.live_migration_rollback.end"]
    # The conductor announces every rebuild; only a new image goes through the scheduler.
    assert table["rebuild"] == ["instance.rebuild_scheduled", "instance.exists", "instance.rebuild.start",
                                "instance.rebuild.end"]
    assert scheduled["rebuild"] == [] and scheduled["rebuild with a new image"] == select
    assert table["rebuild with a new image"] == table["rebuild"]
    assert table["rescue"] == ["instance.rescue.start", "instance.exists", "instance.rescue.end"]
    assert table["shelve"] == ["instance.exists", "instance.shelve.start", "instance.shelve.end"]
    assert table["volume swap"] == ["instance.volume_swap.start", "instance.volume_swap.end"]
    assert table["volume swap (fails)"] == ["instance.volume_swap.start", "instance.volume_swap.error",
                                            "compute.exception"]
    assert table["volume attach (fails)"] == ["instance.volume_attach.start", "instance.volume_attach.error",
                                              "compute.exception"]
    assert table["lock"] == ["instance.lock"]
    assert table["service create (host joins)"] == ["service.create"]


def test_legacy_twins_follow_nova() -> None:
    """The legacy stream: Nova's names, and the conductor's and scheduler's dicts beside compute.instance.*."""
    table = {a: [e for e in ev if e != "compute.instance.update"] for a, ev in sequences.record("unversioned")}
    assert table["boot (no valid host)"] == ["compute_task.build_instances"]
    assert table["boot"][:2] == ["scheduler.select_destinations.start", "scheduler.select_destinations.end"]
    assert table["rebuild"] == ["compute.instance.rebuild.scheduled", "compute.instance.exists",
                                "compute.instance.rebuild.start", "compute.instance.rebuild.end"]


def test_failed_build_reports_where_it_failed() -> None:
    """create.error and compute.exception carry the function, module and traceback, as Nova fills them."""
    sent: list[dict[str, Any]] = []
    sequences.record("versioned", check=lambda body: sent.append(json.loads(body)))
    errors = [n["payload"]["nova_object.data"] for n in sent if n["event_type"] == "compute.exception"]
    errors += [n["payload"]["nova_object.data"]["fault"]["nova_object.data"] for n in sent
               if n["event_type"] == "instance.create.error"]
    assert errors
    for fault in errors:
        assert fault["function_name"] and fault["module_name"].startswith("novawatch.")
        assert fault["traceback"].startswith("Traceback (most recent call last):")
        assert fault["exception"] in fault["traceback"]


def _samples_dir() -> Path:
    candidates = [Path(__file__).resolve().parents[3] / "shared"]
    if os.environ.get("NOVAWATCH_SHARED_DIR"):
        candidates.append(Path(os.environ["NOVAWATCH_SHARED_DIR"]))
    for shared in candidates:
        if (shared / "reference" / "nova-notification-samples").is_dir():
            return shared / "reference" / "nova-notification-samples"
    raise AssertionError(f"Nova's notification samples not found under {candidates}")


def test_payloads_have_the_fields_and_versions_of_novas_samples() -> None:
    first: dict[str, dict[str, Any]] = {}
    sequences.record("both", check=lambda body: first.setdefault(json.loads(body)["event_type"], json.loads(body)))
    compared = 0
    for event_type, ours in sorted(first.items()):
        sample_file = _samples_dir() / (event_type.replace(".", "-") + ".json")
        if not sample_file.exists() or "nova_object.data" not in ours["payload"]:
            continue
        sample = json.loads(sample_file.read_text())["payload"]
        assert ours["payload"]["nova_object.version"] == sample["nova_object.version"], event_type
        mine, theirs = ours["payload"]["nova_object.data"], sample["nova_object.data"]
        assert set(mine) == set(theirs), (event_type, set(mine) ^ set(theirs))
        for key, value in theirs.items():
            if isinstance(value, dict) and "nova_object.data" in value and isinstance(mine.get(key), dict):
                assert set(mine[key]["nova_object.data"]) == set(value["nova_object.data"]), (event_type, key)
        compared += 1
    assert compared >= 60
