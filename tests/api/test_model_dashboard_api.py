"""The dashboard's API over a real model service and real HTTP: summary, series, the capacity query, node
series, instance search and history, summary ticks on the watch stream, and the Prometheus figures."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from novawatch.api.model_app import create_model_app
from novawatch.api.server import ServerThread
from novawatch.model.live.runtime import ModelRuntime
from novawatch.model.live.state import Retention

from .helpers import instance_notification, small_cloud

NEW = "22222222-0000-4000-8000-000000000001"


@pytest.fixture
def runtime() -> ModelRuntime:
    rt = ModelRuntime(recent=50, watch_buffer=1000,
                      retention=Retention(history_per_instance=3, history_total=5, host_series_points=4,
                                          host_series_step=60.0, series_window=7200.0, series_resolution=10.0))
    rt.load(small_cloud())  # 3 hosts of 16 vCPU / 32768 MB / 500 GB, 2 instances each
    return rt


@pytest.fixture
def server(runtime: ModelRuntime) -> Iterator[ServerThread]:
    with ServerThread(create_model_app(runtime.state), name="model") as srv:
        yield srv


@pytest.fixture
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def test_summary_totals_follow_the_model(runtime: ModelRuntime, server: ServerThread, client: httpx.Client) -> None:
    body = client.get("/v1/summary").json()
    assert body["hosts"] == {"total": 3, "up": 3, "down": 0, "enabled": 3, "disabled": 0, "schedulable": 3}
    ram = body["capacity"]["schedulable"]["ram_mb"]
    # host h uses 2 * 4096 * (h + 1) MB
    assert ram == {"capacity": 3 * 32768, "used": 2 * 4096 * 6, "free": 3 * 32768 - 2 * 4096 * 6,
                   "util": 2 * 4096 * 6 / (3 * 32768)}
    assert body["capacity"]["all"]["vcpus"]["used"] == 12 and body["instances"] == 6
    # RAM use: 25 %, 50 %, 75 %
    assert body["histogram"]["edges"][0] == 0 and body["histogram"]["ram_mb"] == [0, 0, 1, 0, 0, 1, 0, 1, 0, 0]
    assert body["groups"]["availability_zones"] is None and "availability zone" in body["groups"]["note"]
    server.call(lambda: runtime.ingest(instance_notification("instance-create-end", uuid=NEW, host="host-0000",
                                                             memory_mb=8192)))
    after = client.get("/v1/summary").json()
    assert after["capacity"]["schedulable"]["ram_mb"]["used"] == 2 * 4096 * 6 + 8192
    assert after["histogram"]["ram_mb"] == [0, 0, 0, 0, 0, 2, 0, 1, 0, 0]
    assert after["model"]["applied"] == 1 and after["instances"] == 7 and after["seq"] > body["seq"]


def test_series_bounded_by_the_window_and_averaged_into_steps(runtime: ModelRuntime, server: ServerThread,
                                                                client: httpx.Client) -> None:
    start = time.time() - 7000
    for i in range(700):  # every 10 s for nearly two hours: more than the finest tier's hour
        server.call(lambda i=i: runtime.state.sample(start + 10 * i))
    fine = client.get("/v1/series", params={"name": "ram_mb_used,hosts_down", "since": -1800}).json()
    assert fine["step"] == 10 and set(fine["series"]) == {"ram_mb_used", "hosts_down"}
    assert all(v == 2 * 4096 * 6 for v in fine["series"]["ram_mb_used"]) and len(fine["t"]) >= 170
    assert fine["t"] == sorted(fine["t"])
    # The finest tier keeps an hour (360 points); older data comes from the minute tier, a mean per minute.
    tiers = runtime.state.series.tiers
    assert len(tiers[0].points) == 360 and tiers[0].dropped
    old = client.get("/v1/series", params={"name": "instances", "since": start}).json()
    assert old["step"] == 60 and old["t"][0] <= start + 60 and old["series"]["instances"][0] == 6
    coarse = client.get("/v1/series", params={"name": "instances", "since": -1800, "step": 300}).json()
    assert coarse["step"] == 300 and len(coarse["t"]) <= 7
    wrong = client.get("/v1/series", params={"name": "ram_mb_used,colour"})
    assert wrong.status_code == 400 and "colour" in wrong.json()["error"] and "vcpus_used" in wrong.json()["error"]
    assert client.get("/v1/series", params={"since": 100, "until": 50}).status_code == 400
    for bad in ("nan", "inf"):
        refused = client.get("/v1/series", params={"since": bad})
        assert refused.status_code == 400 and "finite" in refused.json()["error"]
    assert client.get("/v1/nodes/host-0000/series", params={"since": "nan"}).status_code == 400


def test_capacity_query_fits_with_total_and_paging(runtime: ModelRuntime, server: ServerThread,
                                                   client: httpx.Client) -> None:
    # free RAM: 24576, 16384, 8192 MB; free vCPU 12 each; free disk 460 GB each
    body = client.get("/v1/nodes", params={"fits": "4:16384:40", "state": "up", "status": "enabled",
                                           "sort": "-free_ram_mb", "limit": 1}).json()
    assert body["total"] == 2 and [n["host"] for n in body["nodes"]] == ["host-0000"]
    second = client.get("/v1/nodes", params={"fits": "4:16384:40", "sort": "-free_ram_mb", "limit": 1,
                                             "offset": 1}).json()
    assert [n["host"] for n in second["nodes"]] == ["host-0001"]
    assert client.get("/v1/nodes", params={"fits": "13:0:0"}).json()["total"] == 0
    assert client.get("/v1/nodes", params={"fits": "0:0:461"}).json()["total"] == 0
    bad = client.get("/v1/nodes", params={"fits": "4:lots:40"})
    assert bad.status_code == 422 and "fits" in bad.json()["error"]


def test_instance_search_by_uuid_prefix_name_project_host_and_state(client: httpx.Client) -> None:
    def found(q: str, **extra: str) -> list[str]:
        return [i["uuid"] for i in client.get("/v1/instances", params={"q": q, **extra}).json()["instances"]]

    assert found("11111111-0000-4000-8000-000000000101") == ["11111111-0000-4000-8000-000000000101"]
    assert len(found("11111111-0000-4000-8000-0000000001")) == 2  # the prefix of host 1's two
    assert found("VM-2-1") == ["11111111-0000-4000-8000-000000000201"]  # part of a name, any case
    assert len(found("project-b")) == 3 and len(found("host-0002")) == 2 and len(found("active")) == 6
    body = client.get("/v1/instances", params={"q": "vm-", "limit": 2, "offset": 4}).json()
    assert body["total"] == 6 and len(body["instances"]) == 2
    assert found("vm-", host="host-0001") == ["11111111-0000-4000-8000-000000000100",
                                             "11111111-0000-4000-8000-000000000101"]
    assert found("nothing-like-it") == []


def test_instance_history_in_order_with_old_and_new_fields_and_bounded(runtime: ModelRuntime, server: ServerThread,
                                                                       client: httpx.Client) -> None:
    assert client.get(f"/v1/instances/{NEW}/history").status_code == 404
    for name in ("instance-create-end", "instance-pause-end", "instance-unpause-end"):
        server.call(lambda name=name: runtime.ingest(instance_notification(name, uuid=NEW, host="host-0001")))
    body = client.get(f"/v1/instances/{NEW}/history").json()
    assert body["exists"] is True and body["truncated"] is False
    history = body["history"]
    assert [e["event_type"] for e in history] == ["instance.create.end", "instance.pause.end",
                                                  "instance.unpause.end"]
    assert [e["op"] for e in history] == ["add", "update", "update"]
    assert history[0]["changes"]["host"] == [None, "host-0001"]
    assert history[1]["changes"]["state"] == ["active", "paused"]
    assert history[2]["changes"]["state"] == ["paused", "active"]
    assert history[0]["seq"] < history[1]["seq"] < history[2]["seq"] and history[0]["cause"] == "notification"
    # per instance: 3 kept, the oldest goes first
    server.call(lambda: runtime.ingest(instance_notification("instance-delete-end", uuid=NEW, host="host-0001")))
    body = client.get(f"/v1/instances/{NEW}/history").json()
    assert body["exists"] is False and body["truncated"] is True
    assert [e["op"] for e in body["history"]] == ["update", "update", "delete"]
    assert body["history"][-1]["changes"] == {}
    # in all: 5 entries; another instance's three push out the oldest of NEW's
    other = "22222222-0000-4000-8000-000000000002"
    for name in ("instance-create-end", "instance-pause-end", "instance-unpause-end"):
        server.call(lambda name=name: runtime.ingest(instance_notification(name, uuid=other, host="host-0002")))
    kept = client.get(f"/v1/instances/{NEW}/history").json()["history"]
    assert [e["event_type"] for e in kept] == ["instance.unpause.end", "instance.delete.end"]
    assert len(client.get(f"/v1/instances/{other}/history").json()["history"]) == 3
    assert runtime.state.history.kept() == 5


def test_node_series_records_changes_bounded_per_host(runtime: ModelRuntime, server: ServerThread,
                                                      client: httpx.Client) -> None:
    first = client.get("/v1/nodes/host-0001/series").json()
    assert first["capacity"] == {"vcpus": 16, "ram_mb": 32768, "disk_gb": 500}
    assert first["ram_mb_used"] == [2 * 8192] and first["state"] == ["up"] and first["status"] == ["enabled"]
    series = runtime.state.host_series
    clock = [float(int(time.time()) // 60 * 60 + 3600)]  # on a step boundary
    series.clock = lambda: clock[0]
    for i in range(6):  # six changes a step apart: four points kept
        clock[0] += 60
        uuid = f"22222222-0000-4000-8000-{i:012d}"
        server.call(lambda uuid=uuid: runtime.ingest(
            instance_notification("instance-create-end", uuid=uuid, host="host-0001", memory_mb=1024)))
    body = client.get("/v1/nodes/host-0001/series").json()
    assert body["ram_mb_used"] == [2 * 8192 + 1024 * n for n in (3, 4, 5, 6)]
    assert body["t"] == sorted(body["t"]) and len(body["t"]) == 4
    # two changes in one step: the last wins
    clock[0] += 1
    server.call(lambda: runtime.ingest(instance_notification("instance-create-end", uuid="33333333-0000-4000-8000-"
                                                             "000000000001", host="host-0001", memory_mb=2048)))
    again = client.get("/v1/nodes/host-0001/series").json()
    assert again["ram_mb_used"][-1] == 2 * 8192 + 6 * 1024 + 2048 and len(again["t"]) == 4
    assert again["ram_mb_used"][-2] == 2 * 8192 + 5 * 1024
    by_uuid = client.get(f"/v1/nodes/{body['uuid']}/series").json()
    assert by_uuid["host"] == "host-0001"
    assert client.get("/v1/nodes/nope/series").status_code == 404


def _events(client: httpx.Client, params: dict[str, str], kinds: set[str], want: int) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    with client.stream("GET", "/v1/watch", params=params) as resp:
        assert resp.status_code == 200
        event, data = None, None
        for line in resp.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and event is not None:
                if event in kinds:
                    out.append((event, data or {}))
                event, data = None, None
                if len(out) >= want:
                    break
    return out


def test_watch_sends_summary_ticks_and_series_points(runtime: ModelRuntime, server: ServerThread,
                                                     client: httpx.Client) -> None:
    server.call(lambda: runtime.state.sample(time.time()))
    ticks = _events(client, {"summary": "0.5", "kinds": "node"}, {"summary"}, want=2)
    assert [e for e, _ in ticks] == ["summary", "summary"]
    assert ticks[0][1]["hosts"]["total"] == 3 and "capacity" in ticks[0][1]
    # a sample taken while a reader follows reaches it as a point
    with httpx.Client(base_url=server.url, timeout=30) as other:
        import threading

        got: list[tuple[str, dict]] = []
        reader = threading.Thread(target=lambda: got.extend(_events(other, {"summary": "0.5"}, {"point"}, want=1)))
        reader.start()
        deadline = time.monotonic() + 30
        while reader.is_alive() and time.monotonic() < deadline:
            server.call(lambda: runtime.state.sample(time.time()))
            reader.join(0.5)
        assert got and got[0][1]["values"]["ram_mb_used"] == 2 * 4096 * 6
    assert client.get("/v1/watch", params={"summary": "0.1"}).status_code == 422


def test_prometheus_carries_the_summary_figures(client: httpx.Client) -> None:
    text = client.get("/metrics").text
    assert 'novawatch_capacity{resource="ram_mb",scope="schedulable"} 98304.0' in text
    assert 'novawatch_used{resource="vcpus",scope="all"} 12.0' in text
    assert 'novawatch_hosts{group="up"} 3.0' in text
    assert 'novawatch_hosts_by_utilisation{bucket="20-30",resource="ram_mb"} 1.0' in text
