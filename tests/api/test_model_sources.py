"""The running model service and its source: lookups off the loop, nodes found by host, capacity refreshed.

Real Nova never sends ``compute_node.*``. Here the compute service's bus driver drops them, the model
service bootstraps from the compute service's *Nova* API (``/v2.1``, detected from the URL), and it
must still end equal to the database's truth: new hosts from ``service.create`` and instance events,
capacity changes from its periodic node refresh. No audit runs, so only the lookups can do it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from novawatch import snapshot
from novawatch.api.server import ServerThread
from novawatch.api.services import compute_service, model_service
from novawatch.config import load
from novawatch.model.audit import audit_snapshots
from novawatch.model.export import to_snapshot
from novawatch.model.live.lookups import SourceWorker
from novawatch.model.live.runtime import ModelRuntime
from novawatch.model.outcome import APPLIED
from novawatch.snapshot import NodeRecord, Snapshot, SnapshotSource

from .helpers import wait_for


class DropComputeNode:
    """A notifications driver in front of another that never passes ``compute_node.*`` on (as Nova)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.dropped = 0

    def send(self, topic: str, notification: Any, body: bytes) -> None:
        if notification.event_type.startswith("compute_node."):
            self.dropped += 1
            return
        self.inner.send(topic, notification, body)


@pytest.fixture
def nova_backed(tmp_path: Path) -> Iterator[tuple[ServerThread, Any, ModelRuntime, DropComputeNode, str]]:
    config = load(env={"HOME": str(tmp_path)}, overrides={
        "general": {"data_dir": str(tmp_path)}, "model": {"audit_interval": 0, "node_refresh_interval": 1},
        "compute": {"port": 0}})
    compute_app, service = compute_service(config, hosts=3)
    drivers = service.emit.notifier.drivers
    dropper = DropComputeNode(drivers[-1])
    drivers[-1] = dropper
    with ServerThread(compute_app, name="compute") as compute:
        config.model.compute_url = compute.url + "/v2.1"  # Nova's API, not novawatch's /v1/snapshot
        config.model.port = 0
        model_app, runtime = model_service(config)
        with ServerThread(model_app, name="model") as model:
            wait_for(lambda: runtime.state.bootstrapped_at is not None, 120, "the model to bootstrap")
            yield compute, service, runtime, dropper, model.url
    service.close()


def _truth(compute: ServerThread) -> bytes:
    return httpx.get(compute.url + "/v1/snapshot", timeout=30).content


def _same(runtime: ModelRuntime, compute: ServerThread) -> bool:
    # read from the test's thread while the model's loop may be applying: retried until it holds
    drift = audit_snapshots(to_snapshot(runtime.cluster, reported=False), snapshot.loads(_truth(compute)))
    _last_drift[:] = [d.describe() for d in drift]
    return not drift


_last_drift: list[str] = []


def test_live_service_finds_nodes_nova_never_announces(
    nova_backed: tuple[ServerThread, Any, ModelRuntime, DropComputeNode, str],
) -> None:
    compute, service, runtime, dropper, model_url = nova_backed
    assert runtime.state.source == f"Nova at {compute.url}/v2.1"  # detected from the URL
    assert len(runtime.cluster.store.nodes) == 3
    # a host joins (service.create; its compute_node.create is dropped), then gets instances
    for host in ("host-0004", "host-0005"):
        resp = httpx.post(compute.url + "/v1/services", json={"host": host, "vcpus": 24, "memory_mb": 98304,
                                                             "local_gb": 1200}, timeout=30)
        assert resp.status_code == 201, resp.text
    for n, host in enumerate(("host-0004", "host-0005", "host-0001")):
        resp = httpx.post(compute.url + "/v1/instances", json={"name": f"vm-{n}", "flavor": "m1.small",
                                                               "host": host}, timeout=60)
        assert resp.status_code == 202, resp.text
    wait_for(lambda: _same(runtime, compute), 60, "the model to find the new nodes", )
    assert not _last_drift
    assert dropper.dropped >= 2
    assert runtime.cluster.store.nodes_by_host["host-0004"].vcpus == 24

    # capacity changes without any notification (Nova's never reach the bus): the node refresh finds it
    async def grow() -> None:
        service.nodes["host-0002"].vcpus = 96
        service.commit()

    assert compute.loop is not None
    asyncio.run_coroutine_threadsafe(grow(), compute.loop).result(30)
    wait_for(lambda: runtime.cluster.store.nodes_by_host["host-0002"].vcpus == 96, 60, "the node refresh")
    wait_for(lambda: _same(runtime, compute), 60, f"the model to equal the truth ({_last_drift})")
    health = httpx.get(model_url + "/v1/health", timeout=10).json()
    assert health["status"] == "ok" and health["source_error"] is None, health


def _service_update(host: str, *, disabled: bool, reason: str | None, ts: str) -> bytes:
    return json.dumps({
        "event_type": "service.update", "priority": "INFO", "publisher_id": f"nova-compute:{host}",
        "message_id": f"m-{host}-{ts}", "timestamp": ts,
        "payload": {"nova_object.name": "ServiceStatusPayload", "nova_object.namespace": "nova",
                    "nova_object.version": "1.1", "nova_object.data": {
                        "host": host, "binary": "nova-compute", "topic": "compute", "report_count": 1,
                        "disabled": disabled, "disabled_reason": reason, "availability_zone": None,
                        "last_seen_up": None, "forced_down": False, "version": 66,
                        "uuid": "6c2b0b0e-8d1e-4f4e-9d7a-0a1b2c3d4e5f"}}}).encode()


class CountingSource(SnapshotSource):
    """A snapshot source that counts lookups by host (as NovaApiSource.find_node is asked)."""

    def __init__(self, snap: Snapshot) -> None:
        super().__init__(snap)
        self.asked: list[str] = []

    def find_node(self, host: str) -> NodeRecord | None:
        self.asked.append(host)
        return next((n for n in self.snapshot.nodes if n.host == host), None)


def test_worker_asks_again_until_the_node_row_exists() -> None:
    """service.create comes before Nova creates the compute node: the lookup is retried, not cached as unknown."""
    truth = Snapshot()
    source = CountingSource(truth)

    async def scenario() -> None:
        runtime = ModelRuntime(source)
        assert runtime.cluster.deferred
        worker = SourceWorker(runtime, source, refresh_interval=0, first_retry=0.05, max_retry=0.1)
        task = asyncio.create_task(worker.run())
        try:
            outcome, _ = runtime.ingest(_service_update("late", disabled=True, reason="racking",
                                                        ts="2026-01-01 00:00:00.000001"))
            assert outcome == APPLIED  # kept as pending service state, without waiting for the source
            await _until(lambda: len(source.asked) >= 3)
            assert "late" not in runtime.cluster.store.nodes_by_host
            truth.nodes.append(NodeRecord(uuid="0f0e0d0c-0b0a-4908-8706-050403020100", host="late",
                                          hypervisor_hostname="late.example.org", vcpus=8, memory_mb=8192,
                                          local_gb=80))
            await _until(lambda: "late" in runtime.cluster.store.nodes_by_host)
            node = runtime.cluster.store.nodes_by_host["late"]
            assert (node.vcpus, node.status, node.disabled_reason) == (8, "disabled", "racking")
            assert not runtime.cluster.wanted_hosts
            asked = len(source.asked)
            await asyncio.sleep(0.3)
            assert len(source.asked) == asked  # found: not asked again
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(scenario())


def test_worker_gives_up_then_the_refresh_finds_it_and_errors_show_in_health() -> None:
    truth = Snapshot()
    source = CountingSource(truth)

    async def scenario() -> None:
        runtime = ModelRuntime(source)
        worker = SourceWorker(runtime, source, refresh_interval=0, first_retry=0.01, max_retry=0.01, max_tries=3)
        task = asyncio.create_task(worker.run())
        try:
            runtime.ingest(_service_update("ghost", disabled=False, reason=None, ts="2026-01-01 00:00:00.000001"))
            await _until(lambda: not runtime.cluster.wanted_hosts)
            assert source.asked == ["ghost"] * 3  # three tries, then left to the refresh
            truth.nodes.append(NodeRecord(uuid="1f0e0d0c-0b0a-4908-8706-050403020100", host="ghost",
                                          hypervisor_hostname="ghost", vcpus=4, memory_mb=4096, local_gb=40))
            assert await worker.refresh_nodes() == 1
            assert runtime.cluster.store.nodes_by_host["ghost"].vcpus == 4
            assert await worker.refresh_nodes() == 0  # nothing changed
            # a source that fails: health says so, and says it no more once it answers
            broken = ModelRuntime(source)
            failing = SourceWorker(broken, _Broken(), refresh_interval=0)
            assert await failing.refresh_nodes() == 0
            assert broken.state.health()["status"] == "degraded"
            assert "refreshing nodes: no route" in broken.state.health()["source_error"]
            failing.source = source
            await failing.refresh_nodes()
            assert broken.state.health()["source_error"] is None
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(scenario())


class _Broken:
    def list_nodes(self) -> Any:
        from novawatch.sources.errors import SourceError

        raise SourceError("no route", "unreachable")


async def _until(predicate: Any, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
