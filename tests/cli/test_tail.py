"""``novawatch tail``: pretty lines, filters, stream files in both wire forms, and the live bus."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.api.helpers import Service, instance_notification, wait_for

from novawatch.bus import open_publisher
from novawatch.cli.tail import Filters, parse, render

UUID_A = "aaaaaaaa-0000-4000-8000-000000000001"
UUID_B = "bbbbbbbb-0000-4000-8000-000000000002"


def _stream(path: Path) -> None:
    a = instance_notification("instance-power_off-end", uuid=UUID_A, host="host-0001", display_name="alpha")
    b = instance_notification("instance-create-end", uuid=UUID_B, host="host-0002", display_name="beta")
    envelope = json.dumps({"oslo.version": "2.0", "oslo.message": a.decode()}).encode()
    path.write_bytes(b"\n".join([a, b, envelope, b"{not json", b""]))


def test_render_and_filters() -> None:
    doc = parse(instance_notification("instance-power_off-end", uuid=UUID_A, host="host-0001", display_name="alpha"))
    assert doc is not None
    text = render(doc).plain
    assert "instance.power_off.end" in text and "aaaaaaaa" in text and "host=host-0001" in text
    assert "display_name=alpha" in text and "nova-compute:host-0001" in text
    assert Filters(["instance.power_*"], None, None).match(doc)
    assert not Filters(["instance.create.*"], None, None).match(doc)
    assert Filters([], "host-000?", "aaaa").match(doc)
    assert not Filters([], "host-0002", None).match(doc)
    assert not Filters([], None, "bbbb").match(doc)
    assert parse(b"[1]") is None and parse(b"{") is None


def test_tail_a_stream_file(tmp_path: Path) -> None:
    path = tmp_path / "stream.jsonl"
    _stream(path)
    cmd = [sys.executable, "-m", "novawatch.cli", "tail", str(path)]
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "COLUMNS": "250"}
    out = subprocess.run([*cmd, "--event-type", "instance.power_*"], capture_output=True, text=True, timeout=60,
                         env=env)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if "instance." in line]
    assert len(lines) == 2 and all("power_off" in line for line in lines)  # plain and enveloped
    out = subprocess.run([*cmd, "--host", "host-0002", "--json"], capture_output=True, text=True, timeout=60, env=env)
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [d["event_type"] for d in docs] == ["instance.create.end"]
    out = subprocess.run([*cmd, "--instance", "aaaa"], capture_output=True, text=True, timeout=60, env=env)
    assert out.stdout.count("power_off") == 2 and "(not JSON)" in out.stdout
    missing = subprocess.run([*cmd[:-1], str(tmp_path / "nope.jsonl")], capture_output=True, text=True, timeout=60,
                             env=env)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_tail_the_live_bus(tmp_path: Path) -> None:
    bus = f"embedded://{tmp_path / 'bus'}"
    tail = Service(["tail", "--bus", bus, "--event-type", "instance.create.*", "--count", "2"], tmp_path / "tail.log",
                   {"HOME": str(tmp_path), "COLUMNS": "250"})
    try:
        wait_for(lambda: "following" in tail.output(), 60, "tail to subscribe")
        with open_publisher(bus) as publisher:
            for n, name in enumerate(["instance-create-end", "instance-power_off-end", "instance-create-start"]):
                body = instance_notification(name, uuid=f"cccccccc-0000-4000-8000-00000000000{n}", host="h1")
                publisher.publish_body("versioned_notifications", "INFO", body)
            publisher.flush(30)
        wait_for(lambda: not tail.alive(), 60, "tail to stop after 2 matching notifications")
    finally:
        code = tail.stop()
    assert code == 0, tail.output()
    out = tail.output()
    assert "instance.create.end" in out and "instance.create.start" in out and "power_off" not in out
