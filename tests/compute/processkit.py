"""A compute service in its own process (``novawatch compute serve``, killed with SIGKILL when a test says),
client threads bursting mixed actions at it, and what the bus received of it: the chaos and workers tests'."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from computehelpers import TIMEOUT, Listener

from novawatch import snapshot
from novawatch.model import Consumer, from_snapshot, to_snapshot
from novawatch.model.audit import audit_snapshots


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except httpx.TransportError:
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@dataclass
class ComputeProcess:
    """``novawatch compute serve`` as its own process; ``kill()`` is SIGKILL, ``start()`` runs it again."""

    args: list[str]
    log: Path
    url: str
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts}\n".encode())
            self.proc = subprocess.Popen([sys.executable, "-m", "novawatch.cli", *self.args], stdout=out,
                                         stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wait_for(self.health_ok, f"compute serve to answer (see {self.log})")

    def health(self) -> dict[str, Any]:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"compute serve exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        body: dict[str, Any] = httpx.get(self.url + "/v1/health", timeout=10).json()
        return body

    def health_ok(self) -> bool:
        return self.health().get("status") == "ok"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(TIMEOUT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Burst:
    """Client threads acting on the service until stopped; connection errors (the service is down) are waited out."""

    url: str
    seed: int
    stop: threading.Event = field(default_factory=threading.Event)
    answered: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    dropped: int = 0  #: requests that got no answer (the process was killed under them, or was down)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def run(self, n: int) -> None:
        for i in range(n):
            thread = threading.Thread(target=self._client, args=(random.Random(self.seed * 100 + i),), daemon=True)
            thread.start()
            self.threads.append(thread)

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(TIMEOUT)
            assert not thread.is_alive(), "a client did not stop"

    def _client(self, rng: random.Random) -> None:
        known: list[str] = []
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                try:
                    if not known or rng.random() < 0.1:
                        listed = client.get("/v1/instances", params={"limit": 1000}).json()["instances"]
                        known = [i["uuid"] for i in listed]
                    self._act(client, rng, known)
                except httpx.TransportError:
                    with self.lock:
                        self.dropped += 1
                    time.sleep(0.05)  # (pacing while the service restarts; nothing waits on it)

    def _act(self, client: httpx.Client, rng: random.Random, known: list[str]) -> None:
        roll = rng.random()
        if roll < 0.3 or not known:
            resp = client.post("/v1/instances", json={"name": f"c-{rng.randrange(10**6)}",
                                                      "flavor": rng.choice(["m1.tiny", "m1.small", "m1.medium"])})
            if resp.status_code == 202:
                known.append(resp.json()["uuid"])
        elif roll < 0.38:
            resp = client.delete(f"/v1/instances/{rng.choice(known)}")
        elif roll < 0.45:
            resp = client.request("DELETE", f"/v2.1/servers/{rng.choice(known)}")
        elif roll < 0.5:
            body = {"server": {"name": f"n-{rng.randrange(10**6)}", "flavorRef": "m1.tiny",
                               "imageRef": "155d900f-4e14-4e4c-a73d-069cbf4541e6"}}
            resp = client.post("/v2.1/servers", json=body)
        elif roll < 0.55:
            which = rng.choice(["host-0001", "host-0002", "host-0003", "host-0004"])
            resp = client.post(f"/v1/services/{which}/{rng.choice(['disable', 'enable'])}", json={"reason": "chaos"})
        else:
            uuid_ = rng.choice(known)
            action = rng.choice(["power_off", "power_on", "pause", "unpause", "suspend", "resume", "reboot",
                                 "lock", "unlock", "resize", "confirm_resize", "revert_resize", "live_migrate",
                                 "live_migration_complete", "attach_volume", "shelve", "unshelve", "tags",
                                 "metadata", "rebuild", "soft_delete", "restore"])
            body: Any = None
            if action == "resize":
                body = {"flavor": rng.choice(["m1.small", "m1.medium", "m1.large"])}
            elif action == "tags":
                body = {"tags": rng.sample(["a", "b", "c", "d"], 2)}
            elif action == "metadata":
                body = {"metadata": {"k": str(rng.randrange(100))}}
            resp = client.post(f"/v1/instances/{uuid_}/{action}", json=body)
        with self.lock:
            self.answered += 1
            self.statuses[resp.status_code] += 1

    def answered_now(self) -> int:
        with self.lock:
            return self.answered


def instance_uuids(note: dict[str, Any]) -> set[str]:
    """The instances a notification is about (versioned ``uuid`` or legacy ``instance_id``)."""
    payload = note.get("payload") or {}
    data = payload.get("nova_object.data", payload) if isinstance(payload, dict) else {}
    if note["event_type"].startswith("instance.") and isinstance(data.get("uuid"), str):
        return {data["uuid"]}
    if note["event_type"].startswith("compute.instance.") and isinstance(data.get("instance_id"), str):
        return {data["instance_id"]}
    return set()


def published_through(url: str, listener: Listener, name: str) -> tuple[list[dict[str, Any]], snapshot.Snapshot]:
    """Create flavor ``name`` as the last change, wait until the bus delivered its notification (so every one
    committed before it arrived too) and return what the listener received and the service's snapshot."""
    end = httpx.post(url + "/v1/flavors", json={"name": name, "vcpus": 1, "memory_mb": 64, "root_gb": 0})
    assert end.status_code == 201, end.text
    received = listener.until(lambda got: any(n["event_type"] == "flavor.create" and
                                              n["payload"]["nova_object.data"]["name"] == name for n in got))
    return received, snapshot.loads(httpx.get(url + "/v1/snapshot").content)


def assert_bus_fed_model_is(initial: snapshot.Snapshot, received: list[dict[str, Any]],
                            truth: snapshot.Snapshot) -> None:
    """A model bootstrapped from ``initial`` and fed only ``received`` (no source, no audit) equals ``truth``."""
    consumer = Consumer(from_snapshot(initial))
    stats = consumer.process_all(json.dumps(n).encode() for n in received)
    assert stats.rejected == 0, list(consumer.dead_letters)[:3]
    model = to_snapshot(consumer.cluster, reported=False)
    drift = audit_snapshots(model, truth)
    assert not drift, [d.describe() for d in drift[:10]]
    assert model == truth
