"""The dashboard's API at 10,000 hosts and 100,000 instances, over real HTTP while notifications are applied:
every answer checked against a brute-force computation over the model's own records (correctness only; the
timings are bench/bench_api.py's)."""

from __future__ import annotations

import copy
import json
import random
import uuid as uuidlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from novawatch.api.model_app import create_model_app
from novawatch.api.server import ServerThread
from novawatch.model.live.runtime import ModelRuntime
from novawatch.snapshot import InstanceRecord, NodeRecord, Snapshot, build

from .helpers import sample

NODES, INSTANCES = 10_000, 100_000


def cloud(rng: random.Random) -> Snapshot:
    nodes = [NodeRecord(uuid=str(uuidlib.UUID(int=rng.getrandbits(128), version=4)), host=f"host-{n:05d}",
                        hypervisor_hostname=f"host-{n:05d}", vcpus=64, memory_mb=262144, local_gb=4000,
                        state="down" if n % 97 == 0 else "up", status="disabled" if n % 53 == 0 else "enabled")
             for n in range(NODES)]
    instances = []
    for i in range(INSTANCES):
        host = f"host-{rng.randrange(NODES):05d}"
        mem = rng.choice((512, 2048, 4096, 8192, 16384, 32768))
        instances.append(InstanceRecord(
            uuid=str(uuidlib.UUID(int=rng.getrandbits(128), version=4)), host=host, node=host,
            project_id=f"project-{i % 50}", display_name=f"vm-{i}", state="active", power_state="running",
            vcpus=max(1, mem // 2048), memory_mb=mem, disk_gb=rng.choice((20, 40, 80))))
    return build(nodes, instances)


@pytest.fixture(scope="module")
def big() -> Iterator[tuple[ModelRuntime, ServerThread, httpx.Client]]:
    runtime = ModelRuntime(watch_buffer=1000)
    runtime.load(cloud(random.Random(17)))
    with ServerThread(create_model_app(runtime.state), name="model") as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:
        yield runtime, server, client


def records(runtime: ModelRuntime) -> tuple[list[NodeRecord], list[InstanceRecord]]:
    store = runtime.cluster.store
    return ([store.node_record(n) for n in store.nodes.values()],
            [store.instance_record(i) for i in store.instances.values()])


def expected_summary(nodes: list[NodeRecord]) -> dict[str, Any]:
    ok = [n for n in nodes if n.state == "up" and n.status == "enabled"]
    return {"vcpus": (sum(n.vcpus for n in ok), sum(n.vcpus_used for n in ok)),
            "ram_mb": (sum(n.memory_mb for n in ok), sum(n.memory_mb_used for n in ok)),
            "disk_gb": (sum(n.local_gb for n in ok), sum(n.local_gb_used for n in ok)),
            "down": sum(n.state == "down" for n in nodes), "schedulable": len(ok),
            "ram_hist": [sum(min(9, n.memory_mb_used * 10 // n.memory_mb) == b for n in nodes) for b in range(10)]}


def check_summary(client: httpx.Client, runtime: ModelRuntime, server: ServerThread) -> None:
    body = client.get("/v1/summary").json()
    want = server.call(lambda: expected_summary(records(runtime)[0]))
    for name in ("vcpus", "ram_mb", "disk_gb"):
        got = body["capacity"]["schedulable"][name]
        assert (got["capacity"], got["used"]) == want[name], name
    assert body["hosts"]["down"] == want["down"] and body["hosts"]["schedulable"] == want["schedulable"]
    assert body["histogram"]["ram_mb"] == want["ram_hist"]


def creates(count: int, rng: random.Random) -> list[tuple[str, str, bytes]]:
    template = sample("instance-create-end")
    out = []
    for n in range(count):
        doc = copy.deepcopy(template)
        data = doc["payload"]["nova_object.data"]
        uuid, host = str(uuidlib.UUID(int=rng.getrandbits(128), version=4)), f"host-{rng.randrange(NODES):05d}"
        data.update(uuid=uuid, host=host, node=host, display_name=f"new-{n}", tenant_id="project-new")
        data["flavor"]["nova_object.data"]["memory_mb"] = 4096
        doc["message_id"] = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
        doc["publisher_id"] = f"nova-compute:{host}"
        out.append((uuid, host, json.dumps(doc).encode()))
    return out


def test_summary_capacity_search_and_history_stay_right_at_ten_thousand_hosts(
        big: tuple[ModelRuntime, ServerThread, httpx.Client]) -> None:
    runtime, server, client = big
    check_summary(client, runtime, server)
    # the capacity query, paged through, equals a brute-force filter and sort
    nodes, _ = server.call(lambda: records(runtime))
    fits = [n for n in nodes if n.state == "up" and n.status == "enabled" and n.vcpus - n.vcpus_used >= 8
            and n.memory_mb - n.memory_mb_used >= 131072 and n.local_gb - n.local_gb_used >= 3000]
    want = [n.host for n in sorted(fits, key=lambda n: (-(n.memory_mb - n.memory_mb_used), n.host))]
    got: list[str] = []
    offset = 0
    while True:
        page = client.get("/v1/nodes", params={"fits": "8:131072:3000", "state": "up", "status": "enabled",
                                               "sort": "-free_ram_mb", "limit": 1000, "offset": offset}).json()
        assert page["total"] == len(want)
        got.extend(n["host"] for n in page["nodes"])
        offset += 1000
        if offset >= page["total"]:
            break
    assert got == want and 0 < len(want) < NODES

    # notifications applied meanwhile: the summary and the indexes follow them
    made = creates(2000, random.Random(5))
    for start in range(0, len(made), 250):
        chunk = made[start:start + 250]
        server.call(lambda chunk=chunk: [runtime.ingest(body) for _, _, body in chunk])
    check_summary(client, runtime, server)
    nodes, instances = server.call(lambda: records(runtime))
    fits = [n for n in nodes if n.state == "up" and n.status == "enabled" and n.vcpus - n.vcpus_used >= 8
            and n.memory_mb - n.memory_mb_used >= 131072 and n.local_gb - n.local_gb_used >= 3000]
    assert client.get("/v1/nodes", params={"fits": "8:131072:3000", "state": "up", "status": "enabled"}).json()[
        "total"] == len(fits)

    # search: a uuid prefix, a project
    uuid, host, _ = made[7]
    prefix = uuid[:6]
    body = client.get("/v1/instances", params={"q": prefix, "limit": 1000}).json()
    assert sorted(i["uuid"] for i in body["instances"]) == sorted(i.uuid for i in instances
                                                                  if i.uuid.startswith(prefix))
    assert client.get("/v1/instances", params={"q": "project-new"}).json()["total"] == 2000
    # the history of one of them, and its host's series
    history = client.get(f"/v1/instances/{uuid}/history").json()["history"]
    assert [e["op"] for e in history] == ["add"] and history[0]["changes"]["host"] == [None, host]
    series = client.get(f"/v1/nodes/{host}/series").json()
    node = client.get(f"/v1/nodes/{host}").json()["node"]
    assert series["ram_mb_used"][-1] == node["memory_mb_used"]
    assert runtime.state.history.kept() == 2000
