"""``novawatch decode``: one line per notification, exit 1 when any was rejected."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from novakit import dump, load, sample_names, samples_dir
from novawatch.cli import main
from novawatch.notifications import decode, encode_envelope


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["decode", *args])
    return code, capsys.readouterr().out.splitlines()


def test_samples_folder_prints_140_ok_lines_and_exits_0() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "novawatch.cli", "decode", str(samples_dir())],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 140
    assert all(line.startswith("ok ") for line in lines)
    # In file-name order, each with the sample's event type, payload class and version.
    first = load(sample_names()[0])
    assert lines[0] == (f"ok {first['event_type']} {first['payload']['nova_object.name']} "
                        f"{first['payload']['nova_object.version']}")
    assert "ok instance.volume_swap.start InstanceActionVolumeSwapPayload 1.9" in lines


def test_jsonl_with_plain_envelope_unknown_and_rejected_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    update = load("instance-update")
    broken = load("service-update")
    del broken["payload"]["nova_object.data"]["host"]
    unknown = load("service-update")
    unknown["event_type"] = "service.reboot"
    lines = [
        dump(update),
        encode_envelope(decode(dump(load("service-update")))),
        dump(unknown),
        dump(broken),
        b'{"event_type": "instance.update", "payload": {',
    ]
    stream = tmp_path / "stream.jsonl"
    stream.write_bytes(b"\n".join(lines) + b"\n\n")

    code, out = run_cli(capsys, str(stream))

    assert code == 1
    assert out == [
        "ok instance.update InstanceUpdatePayload 2.1",
        "ok service.update ServiceStatusPayload 1.1",
        "unknown service.reboot",
        "rejected service.update: Object missing required field `host` - at `payload`",
        "rejected -: not valid JSON: Input data was truncated",
    ]


def test_all_ok_jsonl_exits_0_and_unknown_is_not_a_rejection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = load("service-update")
    unknown["event_type"] = "service.reboot"
    stream = tmp_path / "ok.jsonl"
    stream.write_bytes(dump(load("flavor-create")) + b"\n" + dump(unknown) + b"\n")
    code, out = run_cli(capsys, str(stream))
    assert code == 0
    assert out == ["ok flavor.create FlavorPayload 1.4", "unknown service.reboot"]


def test_reads_stdin_when_no_file_is_given(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    legacy = {
        "event_type": "compute.instance.volume.attach", "priority": "INFO", "publisher_id": "compute.host-1",
        "payload": {"volume_id": "v-1"},
    }
    text = json.dumps(load("keypair-create-end")) + "\n" + json.dumps(legacy) + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, out = run_cli(capsys)
    assert code == 1
    assert out[0] == "ok keypair.create.end KeypairPayload 1.0"
    assert out[1].startswith("rejected compute.instance.volume.attach: Object missing required field")


def test_single_pretty_printed_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, str(samples_dir() / "instance-exists.json"))
    assert code == 0
    assert out == ["ok instance.exists InstanceExistsPayload 2.1"]


# --- what is accepted with a warning, what Nova sends in both formats, and what is rejected -------------


def test_warnings_legacy_halves_and_missing_priority_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    newer = load("instance-update")
    newer["payload"]["nova_object.data"]["state"] = "hibernated"
    future = load("service-update")
    future["timestamp"] = "2999-01-01 00:00:00.000000"
    legacy = {"event_type": "scheduler.select_destinations.start", "publisher_id": "scheduler.host1",
              "payload": {"request_spec": {"num_instances": 1, "image": {}, "instance_properties": {},
                                           "instance_type": {}}}}
    no_priority = load("service-update")
    del no_priority["priority"]
    stream = tmp_path / "stream.jsonl"
    stream.write_bytes(b"\n".join(dump(d) for d in (newer, future, legacy, no_priority)) + b"\n")

    code, out = run_cli(capsys, str(stream))

    assert code == 0
    assert out[0] == ("warning instance.update InstanceUpdatePayload 2.1: unknown InstanceState value 'hibernated' "
                      "in `InstanceUpdatePayload.state`, kept as text")
    assert out[1].startswith("warning service.update ServiceStatusPayload 1.1: timestamp '2999-01-01 00:00:00.000000' "
                             "is ") and out[1].endswith(" days ahead of the clock: the model orders it by arrival, "
                                                        "as if it had none")
    assert out[2:] == ["ok scheduler.select_destinations.start LegacyRequestSpecPayload -",
                       "ok service.update ServiceStatusPayload 1.1"]


@pytest.mark.parametrize(("timestamp", "reason"), [
    ("9999-12-31T23:59:59-01:00", "timestamp '9999-12-31T23:59:59-01:00' is out of range: not a date in UTC"),
    ("2026-13-45 99:99:99.000000", "timestamp '2026-13-45 99:99:99.000000' is not a date-time"),
    ("zzzzzzzzzz zzzzzzzz.zzzzzz", "timestamp 'zzzzzzzzzz zzzzzzzz.zzzzzz' is not a date-time"),
])
def test_bad_timestamps_are_rejected(timestamp: str, reason: str, capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    doc = load("instance-update")
    doc["timestamp"] = timestamp
    (tmp_path / "one.json").write_bytes(dump(doc))
    code, out = run_cli(capsys, str(tmp_path / "one.json"))
    assert code == 1
    assert len(out) == 1 and out[0].startswith(f"rejected instance.update: {reason}")


def test_out_of_range_numbers_are_rejected_naming_the_field(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = load("instance-update")
    doc["payload"]["nova_object.data"]["flavor"]["nova_object.data"]["memory_mb"] = 2**70
    (tmp_path / "one.json").write_bytes(dump(doc))
    code, out = run_cli(capsys, str(tmp_path / "one.json"))
    assert (code, out) == (1, ["rejected instance.update: Expected `int` <= 2147483647 - at "
                               "`payload.flavor.memory_mb`"])


def test_one_line_per_notification_whatever_the_input_holds(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    unknown = load("service-update")
    unknown["event_type"] = "service.reboot\nok forged.line X 1.0"
    newer = load("instance-update")
    newer["payload"]["nova_object.data"]["state"] = "odd\nstate\u2028\x1b[31m"
    stream = tmp_path / "stream.jsonl"
    stream.write_bytes(dump(unknown) + b"\n" + dump(newer) + b"\n")
    code, out = run_cli(capsys, str(stream))
    assert code == 0 and len(out) == 2
    assert out[0] == "unknown service.reboot\\nok forged.line X 1.0"
    assert out[1].startswith("warning instance.update") and "'odd\\nstate\\u2028\\x1b[31m'" in out[1]


def test_help_explains_the_lines_and_the_exit_status() -> None:
    proc = subprocess.run([sys.executable, "-m", "novawatch.cli", "decode", "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0
    for needle in ("warning EVENT_TYPE PAYLOAD VERSION: WHY", "unknown EVENT_TYPE", "rejected EVENT_TYPE: REASON",
                   "Exit status: 1 if any notification was rejected"):
        assert needle in proc.stdout
