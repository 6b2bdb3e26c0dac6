"""Timestamps (issue 13 items 1 and 2): unparseable or out of range is rejected with the reason; one too far
ahead of the clock is ordered by arrival, counted, and never freezes an entity.

The reproductions are the issue's: an ``instance.update`` of ``novawatch simulate --hosts 2 --instances 2
--actions 5 --seed 1 --format versioned`` with its timestamp replaced, through ``novawatch decode`` and
``novawatch model replay`` (the live service: tests/api/test_runtime_input.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from modelkit import UUIDS, instance

from novawatch.cli import main
from novawatch.model import Consumer, to_snapshot
from novawatch.model.ordering import timestamp_key
from novawatch.model.outcome import APPLIED, REJECTED, STALE
from novawatch.notifications import Rejected, decode
from novawatch.notifications.timestamp import FUTURE_TOLERANCE, horizon, seconds_ahead, sort_key
from novawatch.snapshot import read

#: The model's clock in these tests: half a year after modelkit's notifications (2026-01-01).
NOW = datetime(2026, 6, 1, tzinfo=UTC).timestamp()

UNPARSEABLE = ["2026-13-45 99:99:99.000000", "zzzzzzzzzz zzzzzzzz.zzzzzz", "2026-02-30 00:00:00.000000",
               "2026-01-01 24:00:00.000000", "yesterday", "", "2026-01-01 00:00:01.00000\u0661", "\ud800"]
OUT_OF_RANGE = ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"]
FAR_AHEAD = ["9999-12-31 23:59:59.999999", "9999-12-31T23:59:59+01:00", "2999-06-01 00:00:00.000000",
             "2027-01-01T00:00:00Z"]


def consumer(**options: object) -> Consumer:
    return Consumer(clock=lambda: NOW, **options)  # type: ignore[arg-type]


# --- the timestamp rules ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", UNPARSEABLE)
def test_what_is_not_a_date_time_is_said_so(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a date-time \(oslo's 'YYYY-MM-DD HH:MM:SS.ffffff' or ISO 8601\)"):
        sort_key(text)
    assert timestamp_key(text) is None


@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_what_is_not_a_date_in_utc_is_out_of_range(text: str) -> None:
    with pytest.raises(ValueError, match="is out of range: not a date in UTC"):
        sort_key(text)


def test_sort_keys_of_the_forms_nova_and_iso_8601_write() -> None:
    assert sort_key("2026-01-01 00:00:01.000001") == "2026-01-01 00:00:01.000001"
    assert sort_key("2026-01-01T01:00:01+01:00") == "2026-01-01 00:00:01.000000"
    assert sort_key("2026-01-01T00:00:01Z") == "2026-01-01 00:00:01.000000"
    assert sort_key("2026-01-01 00:00:01") == "2026-01-01 00:00:01.000000"
    assert sort_key("9999-12-31 23:59:59.999999") == "9999-12-31 23:59:59.999999"  # a date; far ahead, though


def test_how_far_ahead_of_the_clock() -> None:
    assert horizon(NOW, 60) == "2026-06-01 00:01:00.000000"
    assert seconds_ahead("2026-06-01 00:00:59.000000", NOW) is None
    assert seconds_ahead("2026-06-01 00:02:00.000000", NOW) == 120.0
    assert seconds_ahead("9999-12-31 23:59:59.999999", 1e20) is None  # a clock past year 9999 believes all


@pytest.mark.parametrize("text", UNPARSEABLE[:3] + OUT_OF_RANGE)
def test_the_decoder_and_the_model_reject_them_naming_the_timestamp(text: str) -> None:
    doc = instance("instance.update", UUIDS[0], when=1, mid="m-1")
    bad = json.dumps({**json.loads(doc), "timestamp": text}).encode()
    with pytest.raises(Rejected) as caught:
        decode(bad)
    assert caught.value.reason.startswith(f"timestamp {text!r} is ")
    model = consumer()
    assert model.process(bad, 1) == REJECTED
    (letter,) = model.dead_letters
    assert letter.reason == caught.value.reason
    assert model.process(doc, 2) == APPLIED  # the same message id, well formed: not taken for a duplicate


# --- far ahead of the clock: ordered by arrival, never freezing an entity ---------------------------------


@pytest.mark.parametrize("text", FAR_AHEAD)
def test_a_timestamp_far_ahead_does_not_make_later_notifications_stale(text: str) -> None:
    uuid = UUIDS[1]
    model = consumer()
    future = json.loads(instance("instance.power_off.start", uuid, task_state="powering-off"))
    future["timestamp"] = text
    stream = [
        instance("instance.create.end", uuid, when=1, mid="c"),
        json.dumps({**future, "message_id": "f"}).encode(),
        instance("instance.power_off.end", uuid, when=3, mid="p", state="stopped", power_state="shutdown"),
    ]
    assert [model.process(doc, n) for n, doc in enumerate(stream, 1)] == [APPLIED, APPLIED, APPLIED]
    (inst,) = to_snapshot(model.cluster).instances
    assert (inst.state, inst.power_state, inst.task_state) == ("stopped", "shutdown", None)
    stats = model.stats
    assert (stats.future_timestamps, stats.stale, stats.rejected) == (1, 0, 0)
    assert model.last_note is not None and "ahead of the clock: the model orders it by arrival" in model.last_note
    assert "noted: 1 timestamps ahead of the clock (ordered by arrival)" in stats.summary()
    # Ordering still holds among the believable ones: a late, older notification stays stale.
    assert model.process(instance("instance.update", uuid, when=2, mid="late"), 4) == STALE


def test_within_the_tolerance_a_timestamp_is_believed() -> None:
    uuid = UUIDS[2]
    model = consumer()
    soon = datetime.fromtimestamp(NOW + FUTURE_TOLERANCE / 2, UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    ahead = json.loads(instance("instance.pause.end", uuid, state="paused", power_state="paused"))
    ahead["timestamp"] = soon
    assert model.process(json.dumps(ahead).encode()) == APPLIED
    # Believed: something older than it (but still ahead of the notification stream) is stale.
    assert model.process(instance("instance.unpause.end", uuid, when=5)) == STALE
    assert model.stats.future_timestamps == 0


def test_the_clock_moves_on_and_so_does_the_horizon() -> None:
    clock = [NOW]
    model = Consumer(clock=lambda: clock[0])
    later = datetime.fromtimestamp(NOW + 3600, UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    doc = json.loads(instance("instance.update", UUIDS[3]))
    doc["timestamp"] = later
    model.process(json.dumps({**doc, "message_id": "a"}).encode())
    assert model.stats.future_timestamps == 1
    clock[0] = NOW + 3600
    model.process(json.dumps({**doc, "message_id": "b", "display_name": "other"}).encode())
    assert model.stats.future_timestamps == 1  # an hour later it is the present


def test_the_check_can_be_turned_off() -> None:
    model = consumer(future_tolerance=None)
    doc = json.loads(instance("instance.update", UUIDS[4]))
    doc["timestamp"] = "9999-12-31 23:59:59.999999"
    model.process(json.dumps(doc).encode())
    assert model.stats.future_timestamps == 0
    assert model.process(instance("instance.update", UUIDS[4], when=9)) == STALE


# --- the issue's reproduction through the command line ---------------------------------------------------


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sim-ts")
    code = main(["simulate", "--hosts", "2", "--instances", "2", "--actions", "5", "--seed", "1", "--format",
                 "versioned", "--no-progress", "--stream", str(d / "stream.jsonl"), "--initial",
                 str(d / "initial.json"), "--truth", str(d / "truth.json")])
    assert code == 0
    return d


def poisoned(sim: Path, timestamp: str, tmp_path: Path) -> tuple[Path, int]:
    """The stream with its first ``instance.update``'s timestamp replaced; (file, line number of that one)."""
    lines = (sim / "stream.jsonl").read_bytes().splitlines()
    number = next(n for n, line in enumerate(lines, 1) if json.loads(line)["event_type"] == "instance.update")
    doc = json.loads(lines[number - 1])
    doc["timestamp"] = timestamp
    lines[number - 1] = json.dumps(doc).encode()
    path = tmp_path / "poisoned.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, number


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:59-01:00", "2026-13-45 99:99:99.000000",
                                       "zzzzzzzzzz zzzzzzzz.zzzzzz"])
def test_issue_reproduction_rejected_by_decode_and_by_replay_which_goes_on(
    sim: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], timestamp: str
) -> None:
    stream, number = poisoned(sim, timestamp, tmp_path)
    total = len(stream.read_bytes().splitlines())

    capsys.readouterr()
    assert main(["decode", str(stream)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == total
    assert out[number - 1].startswith(f"rejected instance.update: timestamp {timestamp!r} is ")
    assert all(line.startswith("ok ") for n, line in enumerate(out, 1) if n != number)

    model = tmp_path / "model.json"
    assert main(["model", "replay", str(stream), "--initial", str(sim / "initial.json"), "--out", str(model)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].endswith(", rejected 1")
    assert f"rejected {stream}:{number} instance.update: timestamp {timestamp!r}" in captured.err
    # Everything else applied: the model is the one of the stream without that line.
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b"".join(line + b"\n" for n, line in enumerate(stream.read_bytes().splitlines(), 1)
                               if n != number))
    expected = tmp_path / "expected.json"
    assert main(["model", "replay", str(clean), "--initial", str(sim / "initial.json"), "--out", str(expected)]) == 0
    assert model.read_bytes() == expected.read_bytes()


@pytest.mark.parametrize("timestamp", ["9999-12-31 23:59:59.000000", "9999-12-31T22:59:59-01:00"])
def test_issue_reproduction_far_ahead_replays_to_the_truth(
    sim: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], timestamp: str
) -> None:
    stream, number = poisoned(sim, timestamp, tmp_path)
    capsys.readouterr()
    assert main(["decode", str(stream)]) == 0
    line = capsys.readouterr().out.splitlines()[number - 1]
    assert line.startswith("warning instance.update InstanceUpdatePayload ")
    assert line.endswith("days ahead of the clock: the model orders it by arrival, as if it had none")

    model = tmp_path / "model.json"
    assert main(["model", "replay", str(stream), "--initial", str(sim / "initial.json"), "--out", str(model)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].endswith(
        "rejected 0; noted: 1 timestamps ahead of the clock (ordered by arrival), 0 message ids reused for other "
        "content (applied)")
    assert "last note: timestamp '9999-12-31 2" in captured.err
    assert model.read_bytes() == (sim / "truth.json").read_bytes()
    assert read(model) == read(sim / "truth.json")
