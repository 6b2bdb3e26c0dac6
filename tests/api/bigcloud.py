"""A 10,000-host, 100,000-instance cloud built in-process (about a second), served by a real model service.

The model is loaded from a generated snapshot instead of thousands of HTTP calls; notifications are applied
on the server's loop as the bus consumer would apply them. The service can be stopped and started again
on the same port (the same model), as when it restarts behind a browser."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import json
import random
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from novawatch.api.model_app import create_model_app
from novawatch.api.server import ServerThread
from novawatch.model.live.runtime import ModelRuntime
from novawatch.model.live.state import Retention
from novawatch.snapshot import InstanceRecord, NodeRecord, Snapshot, build

from .helpers import sample

FLAVORS = [(1, 2048, 20), (2, 4096, 40), (4, 8192, 80)]  # vcpus, memory_mb, disk_gb


def cloud(nodes: int = 10_000, instances: int = 100_000, seed: int = 17) -> Snapshot:
    """Hosts of two sizes, some down or disabled, instances spread unevenly so utilisation varies."""
    rng = random.Random(seed)
    node_records = [
        NodeRecord(uuid=str(uuidlib.UUID(int=rng.getrandbits(128), version=4)), host=f"host-{n:05d}",
                   hypervisor_hostname=f"host-{n:05d}", vcpus=64 if n % 4 else 32,
                   memory_mb=262144 if n % 4 else 131072, local_gb=4000 if n % 4 else 2000,
                   state="down" if n % 97 == 0 else "up", status="disabled" if n % 53 == 0 else "enabled")
        for n in range(nodes)
    ]
    weights = [(0.05 + rng.random()) * (0.5 if n % 4 == 0 else 1.0) for n in range(nodes)]  # small hosts get less
    placed = rng.choices(range(nodes), weights=weights, k=instances)
    inst_records = []
    for i, h in enumerate(placed):
        vcpus, mem, disk = FLAVORS[rng.randrange(len(FLAVORS))]
        inst_records.append(InstanceRecord(
            uuid=str(uuidlib.UUID(int=rng.getrandbits(128), version=4)), host=f"host-{h:05d}", node=f"host-{h:05d}",
            project_id=f"project-{i % 50:02d}", display_name=f"vm-{i:06d}", state="active", power_state="running",
            vcpus=vcpus, memory_mb=mem, disk_gb=disk))
    return build(node_records, inst_records)


_sent = [0]


def action(event_type: str, inst: InstanceRecord, *, state: str, power_state: str) -> bytes:
    """Nova's sample of ``event_type`` about ``inst`` (its flavor, host, project), now, with a fresh id."""
    doc = copy.deepcopy(sample(event_type.replace(".", "-")))
    data = doc["payload"]["nova_object.data"]
    data.update(uuid=inst.uuid, host=inst.host, node=inst.node, display_name=inst.display_name,
                tenant_id=inst.project_id, state=state, power_state=power_state, task_state=None)
    flavor = data["flavor"]["nova_object.data"]
    flavor["vcpus"], flavor["memory_mb"], flavor["root_gb"] = inst.vcpus, inst.memory_mb, inst.disk_gb
    flavor["ephemeral_gb"], flavor["swap"] = 0, 0
    doc["publisher_id"] = f"nova-compute:{inst.host}"
    doc["message_id"] = str(uuidlib.uuid4())
    _sent[0] += 1  # strictly increasing timestamps even within one microsecond
    now = datetime.now(UTC).replace(tzinfo=None)
    doc["timestamp"] = now.strftime("%Y-%m-%d %H:%M:%S.") + f"{(now.microsecond + _sent[0]) % 1_000_000:06d}"
    return json.dumps(doc).encode()


@dataclass
class BigCloud:
    """The model service over ``snapshot``; :meth:`ingest` applies notifications on its loop."""

    snapshot: Snapshot
    runtime: ModelRuntime
    server: ServerThread | None = None
    port: int = 0
    _sampler: concurrent.futures.Future[Any] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = ServerThread(create_model_app(self.runtime.state), port=self.port, name="model").start()
        self.port = self.server.port
        assert self.server.loop is not None
        # The series sampler runs on the service's loop, as model_service's lifespan runs it.
        self._sampler = asyncio.run_coroutine_threadsafe(self.runtime.sample_forever(), self.server.loop)

    def stop(self) -> None:
        if self.server is not None:
            if self._sampler is not None:
                self._sampler.cancel()
            self.server.stop()
            self.server = None

    def ingest(self, *messages: bytes) -> None:
        """Apply on the service's loop (or directly while it is stopped, as a consumer catching up would)."""
        def apply() -> None:
            for message in messages:
                self.runtime.ingest(message)
        if self.server is None:
            apply()
        else:
            self.server.call(apply)


def big_cloud(nodes: int = 10_000, instances: int = 100_000, resolution: float = 0.5) -> BigCloud:
    """Build and start it; ``resolution`` is the series' sampling step in seconds (short, so plots move)."""
    snap = cloud(nodes, instances)
    runtime = ModelRuntime(recent=200, watch_buffer=10_000, retention=Retention(series_resolution=resolution))
    runtime.load(snap)
    running = BigCloud(snap, runtime)
    running.start()
    return running
