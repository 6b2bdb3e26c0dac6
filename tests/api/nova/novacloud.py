"""A compute service served over HTTP with the Nova API mounted (shared by tests/api/nova and tests/sources)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from novawatch import snapshot
from novawatch.api.compute_app import create_compute_app
from novawatch.api.nova import mount_nova
from novawatch.api.server import ServerThread
from novawatch.compute.clock import Clock, Ids, SimClock, WallClock
from novawatch.compute.service import ComputeService, open_service
from novawatch.compute.source import ComputeSource
from novawatch.model import Consumer, from_snapshot, to_snapshot
from novawatch.notifications import Notifier
from novawatch.notifications.drivers import MemoryDriver
from novawatch.sources.openstack import connect

TOKEN = "s3cret-token"


@dataclass
class NovaCloud:
    """The compute service, its server thread, what it emitted, and the snapshot before the test's actions."""

    service: ComputeService
    server: ServerThread
    memory: MemoryDriver
    initial: snapshot.Snapshot
    token: str | None

    @property
    def endpoint(self) -> str:
        return f"{self.server.url}/v2.1"

    def connection(self, **options: Any) -> Any:
        return connect(self.endpoint, token=self.token, **options)

    def events(self) -> list[str]:
        return [s.notification.event_type for s in self.memory.sent]

    def truth(self) -> snapshot.Snapshot:
        return ComputeSource(self.service.repo.engine).snapshot()

    def replayed(self) -> snapshot.Snapshot:
        """The data model after the initial snapshot and every notification sent since."""
        cluster = from_snapshot(self.initial)
        consumer = Consumer(cluster)
        stats = consumer.process_all(s.body for s in self.memory.sent)
        assert stats.rejected == 0, stats.summary()
        return to_snapshot(cluster, reported=False)




def start_cloud(tmp: Path, *, token: str | None = None, hosts: int = 3,
                clock: Clock | None = None) -> tuple[NovaCloud, ServerThread]:
    """A compute service with two flavors and ``hosts`` hosts, served; on a simulated clock unless ``clock``."""
    memory = MemoryDriver()
    clock = clock or SimClock()
    notifier = Notifier([memory], notification_format="both", clock=clock.tick, message_ids=Ids(7))
    service = open_service(tmp / "compute.sqlite3", notifier, clock=clock, ids=Ids(8), fresh=True)
    service.create_flavor("m1.small", vcpus=1, memory_mb=2048, root_gb=20)
    service.create_flavor("m1.medium", vcpus=2, memory_mb=4096, root_gb=40, ephemeral_gb=5, swap=1024)
    for n in range(1, hosts + 1):
        service.create_service(f"host-{n}", vcpus=8, memory_mb=16384, local_gb=400)
    service.commit()
    app = create_compute_app(service, token=token)
    mount_nova(app, service, token=token)
    server = ServerThread(app, name="nova-test").start()
    initial = ComputeSource(service.repo.engine).snapshot()
    memory.clear()
    return NovaCloud(service, server, memory, initial, token), server


@contextlib.contextmanager
def running_cloud(tmp: Path, *, token: str | None = None, clock: Clock | None = None) -> Iterator[NovaCloud]:
    """:func:`start_cloud`, stopped and closed afterwards."""
    c, server = start_cloud(tmp, token=token, clock=clock)
    try:
        yield c
    finally:
        server.stop()
        c.service.close()


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[NovaCloud]:
    """A served compute service in no-auth (loopback) mode; import it into a conftest or test module."""
    with running_cloud(tmp_path) as c:
        yield c


@pytest.fixture
def wall_cloud(tmp_path: Path) -> Iterator[NovaCloud]:
    """A served compute service on the wall clock (what clients that send times, as ``usage list``, need)."""
    with running_cloud(tmp_path, clock=WallClock()) as c:
        yield c


def clouds_yaml(path: Path, url: str, name: str = "novawatch") -> Path:
    """The ``clouds.yaml`` of docs/openstack.md for a service at ``url`` (no authentication)."""
    path.write_text(
        f"clouds:\n  {name}:\n    auth_type: none\n"
        f"    compute_endpoint_override: {url}/v2.1\n"
        f"    image_endpoint_override: {url}/image\n"
        f"    identity_endpoint_override: {url}/identity\n"
        f"    block_storage_endpoint_override: {url}/volume/v3\n"
        f"    network_endpoint_override: {url}/network\n")
    return path
