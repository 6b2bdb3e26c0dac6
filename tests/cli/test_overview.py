"""``novawatch model hosts --fits``, ``model instance show --history`` and ``model top`` as users run them,
against a running model service over HTTP."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from tests.api.helpers import instance_notification, small_cloud

from novawatch.api.model_app import create_model_app
from novawatch.api.server import ServerThread
from novawatch.model.live.runtime import ModelRuntime

NEW = "22222222-0000-4000-8000-0000000000cc"


@pytest.fixture(scope="module")
def service() -> Iterator[tuple[ModelRuntime, ServerThread]]:
    runtime = ModelRuntime()
    runtime.load(small_cloud())  # free RAM 24576, 16384, 8192 MB
    with ServerThread(create_model_app(runtime.state), name="model") as server:
        for name in ("instance-create-end", "instance-pause-end"):
            server.call(lambda name=name: runtime.ingest(instance_notification(name, uuid=NEW, host="host-0001",
                                                                               memory_mb=1024)))
        server.call(runtime.state.sample)
        yield runtime, server


def cli(server: ServerThread, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "novawatch.cli", "model", *args, "--url", server.url],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "160"})


def test_hosts_fits_lists_the_hosts_with_room_most_free_first(service: tuple[ModelRuntime, ServerThread]) -> None:
    _, server = service
    out = cli(server, "hosts", "--fits", "4:16000:40")
    assert out.returncode == 0, out.stderr
    assert "1 of 1 hosts up and enabled with 4 vCPU, 16000 MB RAM, 40 GB disk free" in out.stdout
    assert "host-0000" in out.stdout and "host-0001" not in out.stdout
    every = cli(server, "hosts", "--fits", "1:1:1")
    rows = [line for line in every.stdout.splitlines() if "host-000" in line]
    assert [r.split()[1] for r in rows] == ["host-0000", "host-0001", "host-0002"]
    none = cli(server, "hosts", "--fits", "1:999999:1")
    assert none.returncode == 0 and "0 of 0 hosts" in none.stdout and "try a smaller size" in none.stdout
    bad = cli(server, "hosts", "--fits", "4:8G:40")
    assert bad.returncode != 0 and "VCPUS:RAM_MB:DISK_GB" in bad.stderr


def test_instance_show_history_lists_what_changed_it_in_order(service: tuple[ModelRuntime, ServerThread]) -> None:
    _, server = service
    out = cli(server, "instance", "show", NEW, "--history")
    assert out.returncode == 0, out.stderr
    assert "2 changes, oldest first" in out.stdout
    created, paused = out.stdout.index("instance.create.end"), out.stdout.index("instance.pause.end")
    assert created < paused and "state: active -> paused" in out.stdout and "host=host-0001" in out.stdout
    missing = cli(server, "instance", "show", "33333333-0000-4000-8000-000000000000")
    assert missing.returncode != 0 and "novawatch model instances" in missing.stderr


def test_top_draws_totals_and_busiest_hosts(service: tuple[ModelRuntime, ServerThread]) -> None:
    _, server = service
    out = cli(server, "top", "--frames", "2", "--interval", "0.5")
    assert out.returncode == 0, out.stderr
    assert "RAM MB" in out.stdout and "98304" in out.stdout  # the capacity of 3 hosts of 32768 MB
    assert "busiest hosts" in out.stdout and out.stdout.index("host-0002") < out.stdout.index("host-0000")
    assert "instance.pause.end" in out.stdout


def test_top_redraws_in_place_and_quits_on_q(service: tuple[ModelRuntime, ServerThread]) -> None:
    _, server = service
    leader, follower = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "novawatch.cli", "model", "top", "--interval", "0.5",
                             "--url", server.url], stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"busiest hosts" not in seen and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.5)[0]:
                seen += os.read(leader, 65536)
        assert b"busiest hosts" in seen
        os.write(leader, b"q")
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.2)[0]:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    break
        assert proc.wait(timeout=30) == 0
        assert b"\x1b[" in seen  # drawn with cursor movements on a terminal, not appended
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
