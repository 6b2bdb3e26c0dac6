"""docs/deploy/haproxy.cfg itself, run by Debian's haproxy in front of two real ``novawatch model serve``
replicas fed from one private RabbitMQ by a real compute service.

Only what must differ outside Docker changes (the bind address and the servers' addresses: the test's
loopback ports instead of Compose's names); every other line of the file is kept, and the test says so.
Through haproxy: health answers; a replica that has not bootstrapped gets no traffic; the cookie keeps a
watch stream on one replica; after that replica is killed (SIGKILL) the other answers, and the watch
stream that reconnects with its Last-Event-ID is told to re-list (``reset``: the id names the dead
replica's run), re-lists, and sees a change made after the failover.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.helpers import Service, free_port, wait_for
from tests.conftest import RabbitMQBroker

CONFIG = Path(__file__).resolve().parents[1] / "docs" / "deploy" / "haproxy.cfg"
TIMEOUT = 60.0
COOKIE = "novawatch-replica"


def haproxy_binary() -> str:
    """Debian's haproxy; skipped here when it is not installed, a failure in CI (./run test installs it)."""
    found = shutil.which("haproxy", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if found is None:
        reason = "haproxy is not installed: apt-get install -y --no-install-recommends haproxy (./run test does)"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


def placed_config(text: str, bind: int, servers: dict[str, int]) -> str:
    """haproxy.cfg with the frontend bound to ``bind`` on loopback and each ``servers`` name pointed at its
    loopback port: nothing else changes (the resolvers stay: haproxy does not ask DNS for an address)."""
    swaps = [(r"^(\s*bind )\S+$", rf"\g<1>127.0.0.1:{bind}")]
    swaps += [(rf"^(\s*server {name} )\S+( .*)$", rf"\g<1>127.0.0.1:{port}\g<2>") for name, port in servers.items()]
    for pattern, replacement in swaps:
        text, count = re.subn(pattern, replacement, text, flags=re.M)
        assert count == 1, f"haproxy.cfg has {count} lines matching {pattern!r}, not one"
    return text


def test_the_rewrite_keeps_every_other_line() -> None:
    original = CONFIG.read_text()
    placed = placed_config(original, 40000, {"model-a": 40001, "model-b": 40002})
    before, after = original.splitlines(), placed.splitlines()
    assert len(before) == len(after)
    changed = {(a.strip(), b.strip()) for a, b in zip(before, after, strict=True) if a != b}
    assert changed == {
        ("bind :9322", "bind 127.0.0.1:40000"),
        ("server model-a model-a:9322 check cookie a inter 5s fall 2 rise 2",
         "server model-a 127.0.0.1:40001 check cookie a inter 5s fall 2 rise 2"),
        ("server model-b model-b:9322 check cookie b inter 5s fall 2 rise 2",
         "server model-b 127.0.0.1:40002 check cookie b inter 5s fall 2 rise 2"),
    }


class Gate:
    """A loopback port that holds each connection until :meth:`open`, then joins it to ``target``: a
    replica whose source is behind it cannot bootstrap until the test lets it."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.opened = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        threading.Thread(target=self._accept, name="gate", daemon=True).start()

    def open(self) -> None:
        self.opened.set()

    def close(self) -> None:
        self.listener.close()
        self.opened.set()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._join, args=(conn,), name="gate-conn", daemon=True).start()

    def _join(self, conn: socket.socket) -> None:
        self.opened.wait()
        with conn, contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.target)) as up:
            back = threading.Thread(target=self._pipe, args=(up, conn), daemon=True)
            back.start()
            self._pipe(conn, up)
            back.join(TIMEOUT)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


class Haproxy:
    """haproxy in the foreground on a configuration file, its log (stdout and stderr) kept in a file."""

    def __init__(self, binary: str, config: Path, log: Path) -> None:
        check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen([binary, "-f", str(config)], stdout=self._out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def said(self, text: str) -> bool:
        assert self.proc.poll() is None, f"haproxy exited:\n{self.output()[-3000:]}"
        return text in self.output()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # stop now (a soft stop would wait for open connections)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()


def events(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Server-sent events from a stream's lines: each a dict of its fields; a heartbeat (a comment) is an
    empty dict, so that a reader gets control back while the stream is idle."""
    current: dict[str, str] = {}
    for line in lines:
        if line == "":
            yield current
            current = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            current[key] = value.removeprefix(" ")


def until(stream: Iterator[dict[str, str]], wanted: Any) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Read ``stream`` up to the first event ``wanted(event)`` accepts: it, and the events before it (fails
    after TIMEOUT seconds without it; the stream's heartbeats come every 15 s)."""
    seen: list[dict[str, str]] = []
    deadline = time.monotonic() + TIMEOUT
    for event in stream:
        if event and wanted(event):
            return event, seen
        if event:
            seen.append(event)
        assert time.monotonic() < deadline, f"no such event within {TIMEOUT:.0f}s; the stream sent {seen}"
    raise AssertionError(f"the stream ended before the event waited for; it sent {seen}")


def is_instance(event: dict[str, str], uuid_: str, state: str) -> bool:
    if event.get("event") != "instance":
        return False
    change = json.loads(event["data"])
    return bool(change["key"] == uuid_ and change["data"] and change["data"]["state"] == state)


def served_by(resp: httpx.Response) -> str | None:
    """The replica haproxy's cookie names in an answer (None when it set none)."""
    found = re.search(rf"{COOKIE}=([^;]+)", resp.headers.get("set-cookie", ""))
    return found.group(1) if found else None


def test_haproxy_in_front_of_two_replicas(rabbitmq: RabbitMQBroker, tmp_path: Path) -> None:
    binary = haproxy_binary()
    tag = uuid.uuid4().hex[:10]
    bus = f"{rabbitmq.oslo_url}?exchange=nova-{tag}"
    env = {"HOME": str(tmp_path)}
    compute_port = free_port()
    compute = f"http://127.0.0.1:{compute_port}"
    ports = {"a": free_port(), "b": free_port()}
    replica = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    lb_port = free_port()
    lb = f"http://127.0.0.1:{lb_port}"
    gate = Gate(compute_port)  # model-b lists the compute service through it: not before the test says so
    started: list[Service] = []
    haproxy: Haproxy | None = None

    def model(name: str, source: str) -> Service:
        service = Service(["model", "serve", "--bus", bus, "--set", f"bus.queue=novawatch-model-{name}-{tag}",
                           "--compute-url", source, "--audit-interval", "0", "--node-refresh-interval", "0",
                           "--host", "127.0.0.1", "--port", str(ports[name]), "--data-dir", str(tmp_path / name)],
                          tmp_path / f"model-{name}.log", env, cwd=tmp_path)
        started.append(service)
        return service

    def health(url: str, **kw: Any) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(url + "/v1/health", timeout=10, **kw).json()
        return body

    def instance_state(url: str, uuid_: str, **kw: Any) -> str:
        resp = httpx.get(f"{url}/v1/instances/{uuid_}", timeout=10, **kw)
        return str(resp.json()["instance"]["state"]) if resp.status_code == 200 else ""

    try:
        started.append(Service(["compute", "serve", "--port", str(compute_port), "--hosts", "3", "--data-dir",
                                str(tmp_path / "compute"), "--bus", bus], tmp_path / "compute.log", env, cwd=tmp_path))
        models = {"a": model("a", compute), "b": model("b", f"http://127.0.0.1:{gate.port}")}
        wait_for(lambda: httpx.get(compute + "/v1/health", timeout=5).status_code == 200, TIMEOUT,
                 "the compute service")
        vms = []
        for n in range(2):
            resp = httpx.post(compute + "/v1/instances", json={"name": f"vm-{n}", "flavor": "m1.tiny"}, timeout=30)
            assert resp.status_code == 202, resp.text
            vms.append(resp.json()["uuid"])
        wait_for(lambda: all(instance_state(replica["a"], vm) == "active" for vm in vms), TIMEOUT,
                 "model-a to bootstrap and hold both instances active")
        wait_for(lambda: health(replica["b"])["bootstrapped"] is False, TIMEOUT, "model-b to answer, not bootstrapped")

        config = tmp_path / "haproxy.cfg"
        config.write_text(placed_config(CONFIG.read_text(), lb_port, {"model-a": ports["a"], "model-b": ports["b"]}))
        haproxy = Haproxy(binary, config, tmp_path / "haproxy.log")

        # --- health, and no traffic for the replica that has not bootstrapped ----------------------------
        wait_for(lambda: haproxy.said("Server replicas/model-b is DOWN"), TIMEOUT, "haproxy to find model-b not ready")
        assert "Server replicas/model-a is DOWN" not in haproxy.output()
        answered = [httpx.get(lb + "/v1/health", timeout=10) for _ in range(6)]
        assert all(r.status_code == 200 and r.json()["bootstrapped"] for r in answered)
        assert {served_by(r) for r in answered} == {"a"}
        assert {r.json()["incarnation"] for r in answered} == {health(replica["a"])["incarnation"]}

        gate.open()
        wait_for(lambda: health(replica["b"])["bootstrapped"], TIMEOUT, "model-b to bootstrap")
        wait_for(lambda: haproxy.said("Server replicas/model-b is UP"), TIMEOUT, "haproxy to send model-b traffic")
        wait_for(lambda: all(instance_state(replica["b"], vm) == "active" for vm in vms), TIMEOUT,
                 "model-b to hold both instances active")
        # Requests without the cookie go to either replica now; each answer names its replica in the cookie.
        spread = {served_by(httpx.get(lb + "/v1/nodes", timeout=10)) for _ in range(8)}
        assert spread == {"a", "b"}, spread
        incarnation = {name: health(url)["incarnation"] for name, url in replica.items()}

        # --- a watch stream stays on its replica (the cookie) ----------------------------------------------
        listed = httpx.get(lb + "/v1/instances", timeout=10)
        home = served_by(listed)
        assert home in ("a", "b")
        other = "b" if home == "a" else "a"
        cookies = {COOKIE: home}
        position: str | None = None
        for n, (vm, action, state) in enumerate([(vms[0], "power_off", "stopped"), (vms[0], "power_on", "active"),
                                                 (vms[1], "pause", "paused")]):
            headers = {} if position is None else {"Last-Event-ID": position}
            params = {"since": str(listed.json()["seq"])} if position is None else {}
            with httpx.stream("GET", lb + "/v1/watch", params=params, headers=headers, cookies=cookies,
                              timeout=httpx.Timeout(10, read=TIMEOUT)) as resp:
                assert resp.status_code == 200, resp.read()
                stream = events(resp.iter_lines())
                hello = next(stream)
                assert hello["event"] == "hello" and json.loads(hello["data"])["incarnation"] == incarnation[home], n
                assert hello["id"] == (position or f"{listed.json()['seq']}.{incarnation[home]}")
                assert httpx.post(f"{compute}/v1/instances/{vm}/{action}", timeout=30).status_code in (200, 202)
                event, before = until(stream, lambda e, vm=vm, state=state: is_instance(e, vm, state))
                assert not any(e.get("event") == "reset" for e in before), before
                if position is not None:
                    # resumed right after the id it sent: nothing skipped, nothing repeated
                    first = (before or [event])[0]
                    assert int(first["id"].split(".")[0]) == int(position.split(".")[0]) + 1, first
                position = event["id"]
                assert position.endswith("." + incarnation[home])

        # --- the replica the stream is on is killed ---------------------------------------------------------
        assert position is not None
        models[home].proc.kill()
        models[home].proc.wait(30)
        after = [httpx.get(lb + "/v1/health", cookies=cookies, timeout=30) for _ in range(3)]
        assert all(r.status_code == 200 for r in after), [r.text for r in after]
        assert {r.json()["incarnation"] for r in after} == {incarnation[other]}

        with httpx.stream("GET", lb + "/v1/watch", headers={"Last-Event-ID": position}, cookies=cookies,
                          timeout=httpx.Timeout(10, read=TIMEOUT)) as resp:
            assert resp.status_code == 200, resp.read()
            stream = events(resp.iter_lines())
            hello = next(stream)
            assert json.loads(hello["data"])["incarnation"] == incarnation[other]
            reset = next(stream)
            assert reset["event"] == "reset", reset
            body = json.loads(reset["data"])
            assert body["incarnation"] == incarnation[other] and "another run" in body["reason"], body
            # re-list (as told), then a change made after the failover comes on the same stream
            relisted = httpx.get(f"{lb}/v1/instances/{vms[1]}", cookies=cookies, timeout=10).json()
            assert relisted["instance"]["state"] == "paused"
            assert httpx.post(f"{compute}/v1/instances/{vms[1]}/unpause", timeout=30).status_code in (200, 202)
            event, _ = until(stream, lambda e: is_instance(e, vms[1], "active"))
            assert event["id"].endswith("." + incarnation[other])
        assert instance_state(lb, vms[1], cookies=cookies) == "active"
    finally:
        gate.close()
        if haproxy is not None:
            haproxy.stop()
        codes = {s.log.name: s.stop() for s in started}
    assert {name: code for name, code in codes.items() if name != f"model-{home}.log"} == {
        "compute.log": 0, f"model-{other}.log": 0}
