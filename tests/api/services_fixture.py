"""Both services in this process, each on its own thread and loop, talking over an embedded bus."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from novawatch.api.server import ServerThread
from novawatch.api.services import compute_service, model_service
from novawatch.config import load
from novawatch.model.live.runtime import ModelRuntime

from .helpers import wait_for


@dataclass
class Running:
    compute: ServerThread
    model: ServerThread
    runtime: ModelRuntime
    service: Any

    def boot(self, name: str, host: str, flavor: str = "m1.tiny") -> dict[str, Any]:
        resp = httpx.post(f"{self.compute.url}/v1/instances", json={"name": name, "flavor": flavor, "host": host},
                          timeout=60)
        assert resp.status_code == 202, resp.text
        body: dict[str, Any] = resp.json()
        return body


@contextmanager
def running_services(data_dir: Path, hosts: int = 3) -> Iterator[Running]:
    config = load(env={"HOME": str(data_dir)}, overrides={
        "general": {"data_dir": str(data_dir)}, "model": {"audit_interval": 0}, "compute": {"port": 0}})
    compute_app, service = compute_service(config, hosts=hosts)
    with ServerThread(compute_app, name="compute") as compute:
        config.model.compute_url = compute.url
        config.model.port = 0
        model_app, runtime = model_service(config)
        with ServerThread(model_app, name="model") as model:
            wait_for(lambda: runtime.state.bootstrapped_at is not None, 120, "the model to bootstrap")
            yield Running(compute, model, runtime, service)
    service.close()
