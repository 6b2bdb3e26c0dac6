"""Cluster benchmark: one notifier, two model replicas, a private three-node RabbitMQ cluster.

The workload is a seeded simulation (``novawatch.simulate``: hosts, instances, then compute actions), its
notifications (both formats, as Nova's default) generated first, then published as fast as the bus
takes them by novawatch's bus publisher (confirms; a multi-host bus URL) in a process of its own to a
durable exchange. Two model replicas, each a process of its own running the model service's consume
path (``ModelRuntime.handle``: decode, apply, publish the change, acknowledge), loaded with the
simulation's initial snapshot, read them: one from a quorum queue of its own (connected to node 0), one
from a stream (connected to node 1). Reported: the end-to-end rate (notifications per second from the
first publish to the last one applied by the slower replica), each replica's figures, and whether each
replica's model equals the simulation's truth at the end. The cluster is started with
tests/rabbitcluster.py (the tests' helper) and stopped afterwards.

    .venv/bin/python bench/bench_cluster.py [--actions 20000] [--hosts 100] [--instances 1000] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/rabbitcluster.py

from tests.rabbitcluster import RabbitCluster  # noqa: E402

from novawatch.bus import open_publisher, open_subscriber  # noqa: E402
from novawatch.model import to_snapshot  # noqa: E402
from novawatch.model.live.runtime import ModelRuntime  # noqa: E402
from novawatch.notifications.message import Notification  # noqa: E402
from novawatch.simulate import Config, Simulation  # noqa: E402
from novawatch.snapshot import dumps, loads  # noqa: E402


class Recorder:
    """A notifier driver that keeps what it is sent, to publish later."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes]] = []

    def send(self, topic: str, notification: Notification[Any], body: bytes) -> None:
        self.sent.append((topic, notification.priority, body))


def notifier(url: str, config: Config, plan: Connection, go: Connection, report: Connection) -> None:
    """Generate the workload, send (initial snapshot, count, truth) through ``plan``, wait for ``go``,
    publish everything, and report when the first publish started and the last was confirmed."""
    recorder = Recorder()
    sim = Simulation(config, [recorder])
    initial = sim.setup()
    sim.run()
    plan.send((dumps(initial), len(recorder.sent), dumps(sim.truth())))
    sim.close()
    go.recv()
    publisher = open_publisher(url)
    start = time.time()
    for topic, priority, body in recorder.sent:
        publisher.publish_body(topic, priority, body)
    publisher.flush(600)
    confirmed = time.time()
    publisher.close()
    report.send((start, confirmed))


def replica(url: str, group: str, orders: Connection, report: Connection) -> None:
    """A model replica: subscribe (the queue or stream exists from then on), say so, load the initial
    snapshot it is sent, say so, then handle deliveries until it handled the count it was sent."""

    async def run() -> dict[str, Any]:
        runtime = ModelRuntime()
        subscriber = open_subscriber(url, group=group)
        await subscriber.start()
        report.send("subscribed")
        initial, count = orders.recv()
        runtime.load(loads(initial))
        report.send("loaded")
        handled = 0
        async for delivery in subscriber:
            await runtime.handle(delivery)
            handled += 1
            if handled == count:
                break
        last = time.time()
        position, broker = subscriber.position, getattr(subscriber, "broker", None)
        await subscriber.close()
        return {"broker": broker, "last_applied": last, "handled": handled, "outcomes": dict(runtime.state.counts),
                "position": position, "model": dumps(to_snapshot(runtime.cluster, reported=False))}

    report.send(asyncio.run(run()))


def expect(pipe: Connection, what: str, timeout: float = 600) -> Any:
    if not pipe.poll(timeout):
        raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
    return pipe.recv()


def run(cluster: RabbitCluster, config: Config) -> dict[str, Any]:
    exchange = f"bench-{uuid.uuid4().hex[:8]}"
    query = f"exchange={exchange}&durable=true"
    groups = {"quorum": f"bench-quorum-{uuid.uuid4().hex[:8]}", "stream": f"bench-stream-{uuid.uuid4().hex[:8]}"}
    urls = {"quorum": cluster.url(order=[0, 1, 2], query=f"{query}&queue_type=quorum"),
            "stream": cluster.url(order=[1, 2, 0], query=f"{query}&queue_type=stream")}
    context = multiprocessing.get_context("spawn")
    replicas: dict[str, tuple[Any, Connection, Connection]] = {}
    for kind in ("quorum", "stream"):
        orders_in, orders_out = context.Pipe(duplex=False)
        report_in, report_out = context.Pipe(duplex=False)
        proc = context.Process(target=replica, args=(urls[kind], groups[kind], orders_in, report_out))
        proc.start()
        expect(report_in, f"the {kind} replica to subscribe")
        replicas[kind] = (proc, orders_out, report_in)
    plan_in, plan_out = context.Pipe(duplex=False)
    go_in, go_out = context.Pipe(duplex=False)
    done_in, done_out = context.Pipe(duplex=False)
    producer = context.Process(target=notifier, args=(cluster.url(order=[0, 1, 2], query=query), config, plan_out,
                                                      go_in, done_out))
    producer.start()
    initial, count, truth = expect(plan_in, "the workload")
    for kind, (_, orders, report) in replicas.items():
        orders.send((initial, count))
        expect(report, f"the {kind} replica to load the initial snapshot")
    go_out.send("go")
    first, confirmed = expect(done_in, "the notifier")
    producer.join()
    figures = {kind: expect(report, f"the {kind} replica") for kind, (_, _, report) in replicas.items()}
    for proc, _, _ in replicas.values():
        proc.join()
    end = max(f["last_applied"] for f in figures.values())
    out: dict[str, Any] = {
        "notifications": count,
        "seconds": round(end - first, 3),
        "per_second": round(count / (end - first)),
        "publisher": {"seconds_to_last_confirm": round(confirmed - first, 3),
                      "per_second": round(count / (confirmed - first))},
    }
    for kind, f in figures.items():
        elapsed = f["last_applied"] - first
        out[f"replica_{kind}"] = {"broker": f["broker"], "handled": f["handled"], "outcomes": f["outcomes"],
                                  "position": f["position"], "seconds": round(elapsed, 3),
                                  "per_second": round(count / elapsed), "equals_truth": f["model"] == truth}
    cluster.delete_queues(*groups.values(), *(f"{g}.dead-letter" for g in groups.values()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", type=int, default=20000, help="compute actions of the simulation")
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--instances", type=int, default=1000, help="instances before the actions start")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    config = Config(hosts=args.hosts, instances=args.instances, actions=args.actions, seed=args.seed)
    results: dict[str, Any] = {"cpus": os.cpu_count(), "nodes": 3, "hosts": args.hosts,
                               "instances": args.instances, "actions": args.actions}
    print("starting a three-node RabbitMQ cluster", file=sys.stderr)
    with RabbitCluster() as cluster:
        print("two replicas (quorum queue, stream)", file=sys.stderr)
        results["two_replicas"] = run(cluster, config)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
