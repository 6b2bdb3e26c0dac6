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
    """Spot checks against Nova's functional notification tests (versioned, without instance.update)."""
    table = {a: [e for e in ev if e != "instance.update" and not e.startswith(("compute_node.", "scheduler."))]
             for a, ev in sequences.record("versioned")}
    scheduled = {a: ev[:2] for a, ev in sequences.record("versioned")}
    assert scheduled["boot"] == ["scheduler.select_destinations.start", "scheduler.select_destinations.end"]
    assert table["boot"] == ["instance.create.start", "instance.create.end"]
    assert table["boot (spawn fails)"] == ["instance.create.start", "instance.shutdown.start",
                                           "instance.shutdown.end", "instance.create.error"]
    assert table["delete"] == ["instance.delete.start", "instance.shutdown.start", "instance.shutdown.end",
                               "instance.delete.end"]
    assert table["resize"] == ["instance.exists", "instance.resize_prep.start", "instance.resize_prep.end",
                               "instance.resize.start", "instance.resize.end", "instance.resize_finish.start",
                               "instance.resize_finish.end"]
    assert table["resize revert"] == ["instance.exists", "instance.resize_revert.start", "instance.resize_revert.end"]
    assert table["live migration start (pre)"] + table["live migration complete (post)"] == [
        "instance.live_migration_pre.start", "instance.live_migration_pre.end",
        "instance.live_migration_post.start", "instance.live_migration_post_dest.start",
        "instance.live_migration_post_dest.end", "instance.live_migration_post.end"]
    assert table["rescue"] == ["instance.rescue.start", "instance.exists", "instance.rescue.end"]
    assert table["shelve"] == ["instance.exists", "instance.shelve.start", "instance.shelve.end"]
    assert table["volume swap"] == ["instance.volume_swap.start", "instance.volume_swap.end"]
    assert table["volume swap (fails)"] == ["instance.volume_swap.start", "instance.volume_swap.error",
                                            "compute.exception"]
    assert table["volume attach (fails)"] == ["instance.volume_attach.start", "instance.volume_attach.error",
                                              "compute.exception"]
    assert table["lock"] == ["instance.lock"]
    assert table["service create (host joins)"] == ["service.create"]


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
