"""Latency of the model service's filtered node query at 10,000 nodes / 100,000 instances, while the model
keeps applying notifications.

The model service runs for real (uvicorn on its own thread and loop, the REST API as users call it);
a feeder task on the same loop applies ``instance.update`` notifications at ``--rate`` per second the
whole time; the client sends ``GET /v1/nodes?min_free_ram_mb=...&state=up&status=enabled&sort=-free_ram_mb``
queries one after another and records each latency. It also times the same query in-process (no HTTP)
to show what is the query and what is HTTP.

It then times the dashboard's other reads over HTTP while the feeder goes on: the capacity query with three
minimums (``fits=V:R:D``, up, enabled, most free RAM first), ``GET /v1/summary``, ``GET /v1/series`` (the last
hour), ``GET /v1/instances?q=`` (a search over every instance) and ``GET /v1/instances/{uuid}/history``.

    ./run bench bench_api [--nodes 10000] [--instances 100000] [--queries 2000] [--rate 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any

import httpx

from novawatch.api.model_app import create_model_app
from novawatch.api.server import ServerThread
from novawatch.snapshot import InstanceRecord, NodeRecord, build

try:
    from novawatch.model.live.runtime import ModelRuntime
    from novawatch.model.live.view import NodeQuery
except ImportError:  # before issue 15 the runtime lived in the API package (for before/after runs)
    from novawatch.api.runtime import ModelRuntime  # type: ignore[no-redef]
    from novawatch.api.view import NodeQuery  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT.parent / "shared" / "reference" / "nova-notification-samples" / "instance-update.json"


def cloud(nodes: int, instances: int, rng: random.Random) -> Any:
    node_records = [
        NodeRecord(uuid=str(uuidlib.UUID(int=rng.getrandbits(128), version=4)), host=f"host-{n:05d}",
                   hypervisor_hostname=f"host-{n:05d}", vcpus=64, memory_mb=262144, local_gb=4000,
                   state="down" if n % 97 == 0 else "up", status="disabled" if n % 53 == 0 else "enabled")
        for n in range(nodes)
    ]
    inst_records = []
    for i in range(instances):
        host = f"host-{rng.randrange(nodes):05d}"
        mem = rng.choice((512, 2048, 4096, 8192, 16384))
        inst_records.append(InstanceRecord(
            uuid=str(uuidlib.UUID(int=rng.getrandbits(128), version=4)), host=host, node=host,
            project_id=f"project-{i % 50}", display_name=f"vm-{i}", state="active", power_state="running",
            vcpus=max(1, mem // 4096), memory_mb=mem, disk_gb=20))
    return build(node_records, inst_records)


def notifications(snapshot: Any, count: int, rng: random.Random) -> list[bytes]:
    """``instance.update`` notifications about existing instances (power and task state flips)."""
    template = json.loads(SAMPLE.read_text())
    out = []
    instances = snapshot.instances
    for n in range(count):
        inst = instances[rng.randrange(len(instances))]
        doc = json.loads(json.dumps(template))
        data = doc["payload"]["nova_object.data"]
        data.update(uuid=inst.uuid, host=inst.host, node=inst.node, tenant_id=inst.project_id,
                    display_name=inst.display_name, power_state=rng.choice(("running", "shutdown")),
                    state=rng.choice(("active", "stopped")))
        data["flavor"]["nova_object.data"]["memory_mb"] = inst.memory_mb
        data["flavor"]["nova_object.data"]["vcpus"] = inst.vcpus
        doc["message_id"] = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
        doc["publisher_id"] = f"nova-compute:{inst.host}"
        seconds = n / 1000
        doc["timestamp"] = f"2030-01-01 {int(seconds // 3600) % 24:02d}:{int(seconds // 60) % 60:02d}:" \
                           f"{int(seconds) % 60:02d}.{int(seconds * 1e6) % 1000000:06d}"
        out.append(json.dumps(doc).encode())
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def dashboard_reads(client: httpx.Client, snap: Any, rng: random.Random, count: int) -> dict[str, list[float]]:
    """Latencies of the dashboard's reads, ``count`` of each, one after another."""
    sizes = [(rng.choice((1, 2, 4, 8, 16)), rng.choice((2048, 8192, 32768, 131072)), rng.choice((20, 40, 400)))
             for _ in range(count)]
    uuids = [snap.instances[rng.randrange(len(snap.instances))].uuid for _ in range(count)]
    reads: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "GET /v1/nodes?fits=V:R:D&state=up&status=enabled": [
            ("/v1/nodes", {"fits": f"{c}:{r}:{d}", "state": "up", "status": "enabled", "sort": "-free_ram_mb",
                           "limit": 100}) for c, r, d in sizes],
        "GET /v1/summary": [("/v1/summary", {})] * count,
        "GET /v1/series?since=-3600": [("/v1/series", {"since": -3600})] * count,
        "GET /v1/instances?q=UUID-PREFIX (100,000 searched)": [("/v1/instances", {"q": u[:5], "limit": 50})
                                                               for u in uuids],
        "GET /v1/instances/{uuid}/history": [(f"/v1/instances/{u}/history", {}) for u in uuids],
    }
    out: dict[str, list[float]] = {}
    for what, calls in reads.items():
        times = []
        for path, params in calls:
            t = time.perf_counter()
            client.get(path, params=params).raise_for_status()
            times.append(time.perf_counter() - t)
        out[what] = times
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=2_000.0, help="notifications applied per second meanwhile")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not SAMPLE.is_file():
        print(f"bench_api: {SAMPLE} not found (clone shared/ beside the repo)", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    snap = cloud(args.nodes, args.instances, rng)
    runtime = ModelRuntime(recent=200, watch_buffer=10_000)
    runtime.load(snap)
    stream = notifications(snap, 50_000, rng)
    print(f"model: {args.nodes} nodes, {args.instances} instances, loaded in {time.perf_counter() - t0:.1f}s; "
          f"applying instance.update at {args.rate:g}/s during the queries")

    applied = [0]

    async def feeder() -> None:
        # Apply on the service's own loop, as the bus consumer does, keeping up with --rate: after a long
        # query held the loop, catch up on what should have been applied meanwhile.
        began = time.perf_counter()
        position = 0
        while True:
            due = int((time.perf_counter() - began) * args.rate)
            for _ in range(min(due - position, 500)):
                runtime.ingest(stream[position % len(stream)])
                position += 1
            applied[0] = position
            await asyncio.sleep(0.005)

    thresholds = [rng.choice((8192, 65536, 131072, 196608, 229376)) for _ in range(args.queries)]
    now = time.time()
    for i in range(360):  # the last hour of samples, as a service up for an hour has them
        runtime.state.sample(now - 3600 + 10 * i)
    with ServerThread(create_model_app(runtime.state), name="model") as server:
        assert server.loop is not None
        task = asyncio.run_coroutine_threadsafe(feeder(), server.loop)
        latencies: list[float] = []
        totals: list[int] = []
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for _ in range(20):  # warm-up
                client.get("/v1/nodes", params={"min_free_ram_mb": 65536, "limit": 50})
            start_applied = applied[0]
            began = time.perf_counter()
            for threshold in thresholds:
                t = time.perf_counter()
                resp = client.get("/v1/nodes", params={"min_free_ram_mb": threshold, "state": "up",
                                                       "status": "enabled", "sort": "-free_ram_mb", "limit": 100})
                latencies.append(time.perf_counter() - t)
                resp.raise_for_status()
                totals.append(resp.json()["total"])
            elapsed = time.perf_counter() - began
            during = applied[0] - start_applied
            dashboard = dashboard_reads(client, snap, rng, max(100, args.queries // 4))
        task.cancel()

        def in_process() -> list[float]:
            times = []
            for threshold in thresholds[:500]:
                t = time.perf_counter()
                runtime.view.query_nodes(NodeQuery(min_free_ram_mb=threshold, state="up", status="enabled",
                                                   sort="-free_ram_mb", limit=100))
                times.append(time.perf_counter() - t)
            return times

        local = server.call(in_process)

    ms = [v * 1000 for v in latencies]
    local_ms = [v * 1000 for v in local]
    print(f"HTTP  GET /v1/nodes (filtered, sorted, 100 per page): p50 {pct(ms, 50):.2f} ms, p99 {pct(ms, 99):.2f} ms, "
          f"mean {statistics.fmean(ms):.2f} ms over {len(ms)} queries; matches per query "
          f"{min(totals)}..{max(totals)}")
    print(f"query in-process (no HTTP):                          p50 {pct(local_ms, 50):.2f} ms, "
          f"p99 {pct(local_ms, 99):.2f} ms")
    for what, values in dashboard.items():
        got = [v * 1000 for v in values]
        print(f"HTTP  {what:<52} p50 {pct(got, 50):.2f} ms, p99 {pct(got, 99):.2f} ms over {len(got)}")
    print(f"applied meanwhile: {during} notifications in {elapsed:.1f}s ({during / elapsed:,.0f}/s); "
          f"model: {runtime.state.health()['applied']} applied, {runtime.state.health()['rejected']} rejected "
          "(the stream of 50,000 cycles: repeats are dropped as duplicates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
