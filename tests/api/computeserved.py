"""The compute service as ``compute serve`` assembles it (both APIs, the outbox), on SQLite or PostgreSQL.

Its bus is an in-process ``memory://`` bus with a consumer group created before the first action, so a
test can read exactly what was published (after the outbox relayed everything committed).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from novawatch.api.server import ServerThread
from novawatch.api.services import compute_service
from novawatch.bus.base import unwrap
from novawatch.bus.memory import MemoryBus
from novawatch.compute.repository import make_engine, reset
from novawatch.config import load

TIMEOUT = 120.0
IMAGE = "155d900f-4e14-4e4c-a73d-069cbf4541e6"


@dataclass
class Served:
    server: ServerThread
    service: Any
    bus: MemoryBus
    group: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def nova(self) -> str:
        return self.server.url + "/v2.1"

    def published(self) -> list[dict[str, Any]]:
        """Every notification published since the last call (once the outbox relayed all that is committed)."""
        assert self.service.outbox.drain(TIMEOUT), "the outbox did not relay what was committed"
        group = self.bus.group(self.group)
        with self.bus.lock:
            bodies = [body for _, _, body, _ in group.ready]
            group.ready.clear()
        return [json.loads(unwrap(body)) for body in bodies]

    def healthy(self) -> dict[str, Any]:
        """``GET /v1/health``, asserted ok."""
        resp = httpx.get(self.url + "/v1/health", timeout=TIMEOUT)
        assert resp.status_code == 200 and resp.json()["status"] == "ok", resp.text
        body: dict[str, Any] = resp.json()
        return body

    def boot(self, name: str = "ok", host: str | None = None) -> dict[str, Any]:
        """A valid request: boot on the novawatch API (answered 202)."""
        resp = httpx.post(self.url + "/v1/instances", json={"name": name, "flavor": "m1.tiny", "host": host},
                          timeout=TIMEOUT)
        assert resp.status_code == 202, resp.text
        out: dict[str, Any] = resp.json()
        return out


@contextlib.contextmanager
def served(tmp: Path, db_url: str, hosts: int = 3) -> Iterator[Served]:
    """The compute service (fresh tables) on ``db_url``, served on a free loopback port."""
    engine = make_engine(db_url)
    reset(engine)
    engine.dispose()
    name = f"served-{uuid.uuid4().hex[:8]}"
    bus = MemoryBus.named(name)
    group = "probe"
    bus.group(group)
    config = load(env={"HOME": str(tmp)}, overrides={
        "general": {"data_dir": str(tmp / "state")}, "bus": {"url": f"memory://{name}"},
        "compute": {"port": 0, "database_url": db_url}})
    app, service = compute_service(config, hosts=hosts)
    try:
        with ServerThread(app, name="compute") as server:
            running = Served(server, service, bus, group)
            running.published()  # the seeding's notifications
            yield running
    finally:
        service.close()
        MemoryBus.reset(name)
