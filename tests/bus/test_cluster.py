"""Many model services on a three-node RabbitMQ cluster, with broker nodes killed (SIGKILL) mid-stream.

Each test kills a node while notifications flow, starts it again, then kills the node a model replica is
connected to. Publishers (the real oslo.messaging notifier with a multi-host ``transport_url``, and
novawatch's compute service with its transactional outbox) and replicas (one on a quorum queue of its
own, one reading a stream) move to the other nodes; nothing is lost: every replica ends equal to the
truth without re-listing any source (no gap), and a replica started afterwards rebuilds the whole cloud
from the stream alone.

The cluster is started once per session (``tests/rabbitcluster.py``); at most one node is down at a time,
so that quorum queues and streams keep their majority. Every wait is for a condition.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bushelpers import unique
from clusterkit import TIMEOUT, Replica, RestWorkload, compute_truth, converge, served_model
from oslokit import Nova, OsloDriver, Producer, capture
from tests.api.helpers import Service, free_port, wait_for
from tests.rabbitcluster import RabbitCluster

from novawatch.simulate import Config, Simulation
from novawatch.snapshot import dumps

SIM = Config(hosts=4, instances=16, actions=0, seed=37, failure_rate=0.05)
PHASE = 150  # compute actions per phase
EARLY = 30  # actions done before a node is killed: the rest of the phase flows while it is down


@pytest.mark.asyncio
async def test_oslo_notifier_and_two_replicas_ride_out_the_loss_of_broker_nodes(cluster: RabbitCluster) -> None:
    exchange = unique("nova")
    # Nova as a clustered cloud configures it: rabbit_quorum_queue = true (a durable exchange, and oslo's own
    # notification queues are quorum queues, which a node's loss does not take away)
    nova = Nova(cluster.oslo_url(), exchange, unique("compute"), quorum=True)
    sim = Simulation(SIM, [OsloDriver(nova)])
    initial = sim.setup()
    sim.start()
    producer = Producer(sim, nova)
    query = f"exchange={exchange}&durable=true&retry_max=1"
    a = Replica(cluster.url(order=[0, 1, 2], query=f"{query}&queue_type=quorum"), unique("novawatch-model-a"))
    b = Replica(cluster.url(order=[1, 2, 0], query=f"{query}&queue_type=stream"), unique("novawatch-model-s"))
    try:
        with capture("oslo.messaging", "oslo_messaging") as oslo_log:
            for replica in (a, b):
                await replica.start(initial)
            assert {a.broker, b.broker} == {cluster.nodes[0].address, cluster.nodes[1].address}

            async def phase(kill: int, what: str) -> None:
                start = a.applied
                producer.run(PHASE)
                while a.applied < start + EARLY:  # notifications are flowing
                    assert producer.error is None, producer.error
                    await asyncio.sleep(0.02)
                await asyncio.to_thread(cluster.kill, kill)
                await asyncio.to_thread(producer.wait, TIMEOUT)
                truth = dumps(await asyncio.to_thread(producer.truth))
                for replica in (a, b):
                    await replica.equals(truth, what)
                await asyncio.to_thread(cluster.revive, kill)

            await phase(0, "after node 0 was killed mid-stream")
            target = cluster.node_at(a.broker)  # where replica a went after node 0's loss
            await phase(target.index, f"after the node replica a was connected to ({target.name}) was killed")
            assert a.snapshot() == b.snapshot()
        # No check that oslo itself lost its node: oslo.messaging shuffles a transport URL's hosts, so its
        # connection may sit on the one node this test never kills (it then logs nothing to check).
        assert oslo_log.matching("NOTIFY exchange"), "oslo's log is not captured"
        for replica in (a, b):  # nothing was lost: no gap, so nothing had to be re-listed
            health = replica.runtime.state.health()
            assert health["gaps"] == 0 and health["relists"] == 0 and health["rejected"] == 0, health
        assert b.subscriber.position is not None and b.subscriber.position > PHASE
        queues = {row[0]: row[1] for row in cluster.list_queues("name", "type")}
        assert queues[a.subscriber.group] == "quorum" and queues[b.subscriber.group] == "stream"
        assert queues[f"{a.subscriber.group}.dead-letter"] == "quorum"
    finally:
        for replica in (a, b):
            await replica.close()
        nova.close()
        sim.close()
        groups = [a.subscriber.group, b.subscriber.group]
        cluster.delete_queues(*groups, *(f"{g}.dead-letter" for g in groups), *nova.queues())


# --- novawatch's compute service and model services, as processes ------------------------------------


class Deployment:
    """``compute serve`` and ``model serve`` replicas on the cluster, each its own process."""

    def __init__(self, cluster: RabbitCluster, tmp: Path) -> None:
        self.cluster, self.tmp = cluster, tmp
        self.exchange = unique("nova")
        self.env = {"HOME": str(tmp)}  # no stray user configuration
        self.services: dict[str, Service] = {}
        self.urls: dict[str, str] = {}
        self.groups: list[str] = []

    def bus(self, order: list[int], query: str = "") -> str:
        return self.cluster.url(order=order, query=f"exchange={self.exchange}&durable=true&retry_max=1{query}")

    def start(self, name: str, args: list[str]) -> str:
        port = free_port()
        data = self.tmp / name
        self.services[name] = Service([*args, "--port", str(port), "--data-dir", str(data / "state")],
                                      self.tmp / f"{name}.log", self.env, cwd=self.tmp)
        self.urls[name] = f"http://127.0.0.1:{port}"
        return self.urls[name]

    def model(self, name: str, bus: str, group: str, compute: str) -> str:
        self.groups.append(group)
        return self.start(name, ["model", "serve", "--bus", bus, "--set", f"bus.queue={group}",
                                 "--compute-url", compute, "--audit-interval", "0", "--node-refresh-interval", "0"])

    def get(self, name: str, path: str) -> Any:
        return httpx.get(self.urls[name] + path, timeout=60).json()

    def status(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``novawatch model status`` against one replica, as an operator runs it."""
        return subprocess.run([sys.executable, "-m", "novawatch.cli", "model", "status", "--url", self.urls[name],
                               *args], capture_output=True, text=True, timeout=120, env={"HOME": str(self.tmp),
                               "PATH": "/usr/bin:/bin"})

    def stop(self) -> dict[str, int]:
        return {name: service.stop() for name, service in self.services.items()}

    def output(self) -> str:
        return "\n".join(f"--- {name}\n{service.output()[-6000:]}" for name, service in self.services.items())


@pytest.fixture
def deployment(cluster: RabbitCluster, tmp_path: Path) -> Iterator[Deployment]:
    made = Deployment(cluster, tmp_path)
    try:
        yield made
    finally:
        codes = made.stop()
        groups = made.groups
        cluster.delete_queues(*groups, *(f"{g}.dead-letter" for g in groups))
        assert set(codes.values()) <= {0}, f"unclean exits {codes}:\n{made.output()}"


def test_compute_service_and_model_services_converge_across_the_loss_of_broker_nodes(
    deployment: Deployment, cluster: RabbitCluster
) -> None:
    d = deployment
    quorum, stream = unique("novawatch-model-a"), unique("novawatch-model-s")
    compute = f"http://127.0.0.1:{free_port()}"
    # the replicas subscribe first (their queue and stream exist from then on), then wait for the source
    d.model("model-a", d.bus([0, 1, 2], "&queue_type=quorum"), quorum, compute)
    d.model("model-s", d.bus([1, 2, 0], "&queue_type=stream"), stream, compute)
    for name in ("model-a", "model-s"):
        wait_for(lambda n=name: d.get(n, "/v1/bus")["broker"], TIMEOUT, f"{name} to subscribe")
    d.services["compute"] = Service(["compute", "serve", "--port", compute.rsplit(":", 1)[1], "--hosts", "4",
                                     "--data-dir", str(d.tmp / "compute" / "state"), "--bus", d.bus([0, 1, 2])],
                                    d.tmp / "compute.log", d.env, cwd=d.tmp)
    d.urls["compute"] = compute
    for name in ("model-a", "model-s"):
        wait_for(lambda n=name: d.get(n, "/v1/health")["bootstrapped"], TIMEOUT, f"{name} to bootstrap")
    assert d.get("model-a", "/v1/bus")["broker"] == cluster.nodes[0].address
    workload = RestWorkload(compute, seed=41)

    def truth() -> bytes:
        return compute_truth(compute)

    def phase(kill: int, what: str) -> None:
        start = workload.done
        workload.run(PHASE)
        workload.wait_done(start + EARLY)
        cluster.kill(kill)  # the publisher and replica a are connected to node 0 at first
        workload.wait()
        for name in ("model-a", "model-s"):
            converge(lambda n=name: served_model(d.urls[n]), truth, f"{name} {what}")
        cluster.revive(kill)

    try:
        phase(0, "after node 0 was killed mid-stream")
        target = cluster.node_at(d.get("model-s", "/v1/bus")["broker"])
        phase(target.index, f"after the node model-s was connected to ({target.name}) was killed")
        final = truth()
        # nothing was lost on the way: the outbox sent everything, no replica saw a gap or re-listed
        outbox = httpx.get(compute + "/v1/health", timeout=60).json()["outbox"]
        assert outbox["unsent"] == 0 and outbox["sent"] > 2 * PHASE, outbox
        for name in ("model-a", "model-s"):
            health = d.get(name, "/v1/health")
            assert health["gaps"] == 0 and health["relists"] == 0 and health["rejected"] == 0, health

        # a replica started now replays the whole stream, with no source at all, and gets the same cloud
        d.model("model-replay", d.bus([2, 0, 1], "&queue_type=stream&offset=first"), stream, "")
        assert converge(lambda: served_model(d.urls["model-replay"]), truth, "the replayed replica") == final
        assert d.get("model-replay", "/v1/health")["source"] is None

        # where each replica stands, as `novawatch model status` shows it
        shown = wait_for(lambda: (p := d.status("model-s", "--max-behind", "0")).returncode == 0 and p, TIMEOUT,
                         "model-s to report nothing behind")
        body = json.loads(d.status("model-s", "--json").stdout)
        assert body["kind"] == "stream" and body["queue"] == stream and body["position"] == body["last"] > 0
        assert f"queue     {stream} (stream) on 127.0.0.1:" in shown.stdout
        assert f"applied   offset {body['position']} (" in shown.stdout and "behind    0" in shown.stdout
        quorum_status = d.status("model-a", "--max-behind", "0")
        assert quorum_status.returncode == 0, quorum_status.stdout + quorum_status.stderr
        assert f"queue     {quorum} (quorum) on 127.0.0.1:" in quorum_status.stdout
    except BaseException:
        print(d.output())
        raise
    finally:
        workload.close()
