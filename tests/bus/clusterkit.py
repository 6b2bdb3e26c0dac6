"""Helpers of the cluster tests: a model replica in-process, a workload driven through the compute service's
REST API, and the truth and a served model both as snapshot JSON, so that they compare byte for byte."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import msgspec

from novawatch.bus import Subscriber, open_subscriber
from novawatch.model import to_snapshot
from novawatch.model.live.runtime import ModelRuntime
from novawatch.snapshot import InstanceRecord, NodeRecord, Snapshot, build, dumps, loads

TIMEOUT = 180.0  # generous: a 2-core machine shared with others, three broker nodes, several services


class Replica:
    """A model service's core in this process: subscribe, bootstrap from a snapshot, consume."""

    def __init__(self, url: str, group: str) -> None:
        self.runtime = ModelRuntime()
        self.subscriber: Subscriber = open_subscriber(url, group=group)
        self.runtime.follow(self.subscriber, None)  # no source: a gap would stay unrepaired, and show
        self.task: asyncio.Task[None] | None = None

    @property
    def broker(self) -> str | None:
        return getattr(self.subscriber, "broker", None)

    @property
    def applied(self) -> int:
        return self.runtime.state.counts["applied"]

    async def start(self, initial: Snapshot) -> None:
        await self.subscriber.start()
        self.runtime.load(initial)
        self.task = asyncio.create_task(self.runtime.consume(self.subscriber))

    def snapshot(self) -> bytes:
        return dumps(to_snapshot(self.runtime.cluster, reported=False))

    async def equals(self, truth: bytes, what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while self.snapshot() != truth:
            assert self.task is not None and not self.task.done(), "the consumer stopped"
            if time.monotonic() > deadline:
                raise AssertionError(f"replica {self.subscriber.group} never equalled the truth {what}; "
                                     f"health {self.runtime.state.health()}")
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        await self.subscriber.close()


def normalised(nodes: list[dict[str, Any]], instances: list[dict[str, Any]]) -> bytes:
    """Snapshot JSON of nodes and instances as an API lists them (extra fields dropped, usage derived)."""
    node_fields = set(NodeRecord.__struct_fields__) - {"reported", "inventory"}
    inst_fields = set(InstanceRecord.__struct_fields__)
    return dumps(build(
        [msgspec.convert({k: v for k, v in n.items() if k in node_fields}, NodeRecord) for n in nodes],
        [msgspec.convert({k: v for k, v in i.items() if k in inst_fields}, InstanceRecord) for i in instances]))


def compute_truth(compute_url: str) -> bytes:
    """The compute service's database as snapshot JSON."""
    snap = loads(httpx.get(f"{compute_url}/v1/snapshot", timeout=60).content)
    return normalised([msgspec.to_builtins(n) for n in snap.nodes], [msgspec.to_builtins(i) for i in snap.instances])


def served_model(model_url: str) -> bytes:
    """What a running model service holds, as snapshot JSON (every page of nodes and instances)."""
    out: dict[str, list[dict[str, Any]]] = {"nodes": [], "instances": []}
    with httpx.Client(base_url=model_url, timeout=60) as client:
        for kind in out:
            offset = 0
            while True:
                page = client.get(f"/v1/{kind}", params={"limit": 1000, "offset": offset}).json()
                out[kind] += page[kind]
                offset += len(page[kind])
                if not page[kind] or offset >= page["total"]:
                    break
    return normalised(out["nodes"], out["instances"])


def converge(read: Callable[[], bytes], truth: Callable[[], bytes], what: str) -> bytes:
    """Wait until ``read()`` equals ``truth()``; the truth when they do."""
    deadline = time.monotonic() + TIMEOUT
    last = b""
    while True:
        expected = truth()
        try:
            last = read()
        except httpx.HTTPError:
            last = b""
        if last == expected:
            return expected
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never equalled the truth:\nexpected {expected[:2000]!r}\n"
                                 f"got {last[:2000]!r}")
        time.sleep(0.2)


class RestWorkload:
    """Seeded compute actions through the compute service's REST API, as users would send them.

    Actions a state does not allow are refused (409) by the compute service: that is part of the mix.
    ``run(n)`` goes on a thread of its own; ``done`` counts the requests answered.
    """

    ACTIONS = ("power_off", "power_on", "pause", "unpause", "suspend", "resume", "lock", "unlock", "shelve",
               "shelve_offload", "unshelve", "live_migrate", "soft_delete", "restore", "delete")
    FLAVORS = ("m1.tiny", "m1.small", "m1.medium", "m1.eph")

    def __init__(self, compute_url: str, seed: int) -> None:
        self.client = httpx.Client(base_url=compute_url, timeout=60)
        self.rng = random.Random(seed)
        self.instances: list[str] = []
        self.done = 0
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def step(self) -> None:
        rng = self.rng
        if len(self.instances) < 6 or rng.random() < 0.2:
            resp = self.client.post("/v1/instances", json={
                "name": f"vm-{self.done}", "flavor": rng.choice(self.FLAVORS),
                "project_id": rng.choice(("project-a", "project-b"))})
            if resp.status_code == 202 and resp.json().get("uuid"):
                self.instances.append(resp.json()["uuid"])
        else:
            uuid = rng.choice(self.instances)
            action = rng.choice(self.ACTIONS)
            if action == "delete":
                resp = self.client.delete(f"/v1/instances/{uuid}")
                if resp.status_code == 202:
                    self.instances.remove(uuid)
            else:
                resp = self.client.post(f"/v1/instances/{uuid}/{action}")
        assert resp.status_code in (200, 202, 400, 409), f"{resp.request.method} {resp.request.url}: {resp.text}"
        self.done += 1

    def run(self, actions: int) -> None:
        def work() -> None:
            try:
                for _ in range(actions):
                    self.step()
            except BaseException as exc:  # the test asserts there was none
                self.error = exc

        self._thread = threading.Thread(target=work, name="rest-workload", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        assert self._thread is not None
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive(), "the workload is stuck"
        assert self.error is None, f"the workload failed: {self.error!r}"

    def wait_done(self, count: int) -> None:
        """Wait until ``count`` requests were answered (the workload goes on meanwhile)."""
        deadline = time.monotonic() + TIMEOUT
        while self.done < count:
            assert self.error is None, f"the workload failed: {self.error!r}"
            assert time.monotonic() < deadline, f"the workload answered only {self.done} requests"
            time.sleep(0.02)

    def close(self) -> None:
        self.client.close()
