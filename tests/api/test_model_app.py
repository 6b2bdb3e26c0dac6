"""The model service's REST API over a real model: queries, filters, pagination, errors, watch stream."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from novawatch.api.model_app import create_model_app
from novawatch.api.server import ServerThread
from novawatch.model.live.runtime import ModelRuntime

from .helpers import instance_notification, small_cloud, wait_for

NEW = "22222222-0000-4000-8000-000000000001"


@pytest.fixture
def runtime() -> ModelRuntime:
    rt = ModelRuntime(recent=50, watch_buffer=1000)
    rt.load(small_cloud())
    return rt


@pytest.fixture
def server(runtime: ModelRuntime) -> Iterator[ServerThread]:
    with ServerThread(create_model_app(runtime.state, max_body_bytes=1000), name="model") as srv:
        yield srv


@pytest.fixture
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def test_nodes_filters_sort_and_pages(client: httpx.Client) -> None:
    body = client.get("/v1/nodes").json()
    assert body["total"] == 3
    assert [n["host"] for n in body["nodes"]] == ["host-0000", "host-0001", "host-0002"]
    first = body["nodes"][0]
    assert first["memory_mb_used"] == 8192 and first["free_ram_mb"] == 32768 - 8192 and first["running_vms"] == 2
    # host-0002 uses 2 * 12288 MB: only hosts 0 and 1 have 16 GB free.
    body = client.get("/v1/nodes", params={"min_free_ram_mb": 16384, "sort": "-free_ram_mb"}).json()
    assert [n["host"] for n in body["nodes"]] == ["host-0000", "host-0001"]
    body = client.get("/v1/nodes", params={"host": "host-000[12]", "limit": 1, "offset": 1}).json()
    assert body["total"] == 2 and [n["host"] for n in body["nodes"]] == ["host-0002"]
    assert client.get("/v1/nodes", params={"host": "host-0001"}).json()["total"] == 1
    assert client.get("/v1/nodes", params={"project": "project-b", "status": "enabled", "state": "up"}).json()[
        "total"] == 3
    assert client.get("/v1/nodes", params={"project": "nobody"}).json()["total"] == 0


def test_node_detail_instances_and_errors(client: httpx.Client) -> None:
    nodes = client.get("/v1/nodes").json()["nodes"]
    detail = client.get(f"/v1/nodes/{nodes[1]['uuid']}").json()
    assert detail["node"]["host"] == "host-0001" and len(detail["instances"]) == 2
    assert client.get("/v1/nodes/host-0001").json()["node"]["uuid"] == nodes[1]["uuid"]
    missing = client.get("/v1/nodes/nope")
    assert missing.status_code == 404 and "GET /v1/nodes" in missing.json()["error"]
    bad = client.get("/v1/nodes", params={"min_free_ram_mb": -1})
    assert bad.status_code == 422 and "min_free_ram_mb" in bad.json()["error"]
    assert client.get("/v1/nodes", params={"sort": "color"}).status_code == 422
    assert client.get("/v1/nodes", params={"limit": 100000}).status_code == 422
    inst = client.get("/v1/instances", params={"project": "project-a", "sort": "-memory_mb"}).json()
    assert inst["total"] == 3 and inst["instances"][0]["host"] == "host-0002"
    assert client.get("/v1/instances", params={"host": "host-000?", "name": "vm-1-*"}).json()["total"] == 2
    one = inst["instances"][0]["uuid"]
    assert client.get(f"/v1/instances/{one}").json()["instance"]["uuid"] == one
    assert client.get("/v1/instances/unknown").status_code == 404


def test_body_limit_and_no_token_needed_on_loopback(client: httpx.Client) -> None:
    big = client.post("/v1/audit", content=b"x" * 5000)
    assert big.status_code == 413 and "limit" in big.json()["error"]
    # No source configured: the audit endpoint says what to do.
    resp = client.post("/v1/audit")
    assert resp.status_code == 409 and "compute_url" in resp.json()["error"]


def test_token_required_for_writes_when_set(runtime: ModelRuntime) -> None:
    with ServerThread(create_model_app(runtime.state, token="s3cret"), name="model") as srv, \
            httpx.Client(base_url=srv.url) as c:
        assert c.get("/v1/nodes").status_code == 200
        assert c.post("/v1/audit").status_code == 401
        assert c.post("/v1/audit", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.post("/v1/audit", headers={"Authorization": "Bearer s3cret"}).status_code == 409


def _read_events(client: httpx.Client, params: dict[str, str], headers: dict[str, str], want: int) -> list[dict]:
    events: list[dict] = []
    with client.stream("GET", "/v1/watch", params=params, headers=headers) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        current: dict = {}
        for line in resp.iter_lines():
            if line == "":
                if current:
                    events.append(current)
                    current = {}
                if len([e for e in events if e.get("event") not in ("hello", None)]) >= want:
                    break
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(": ")
            current[key] = value
    return events


def test_watch_stream_resumes_from_a_sequence_number(runtime: ModelRuntime, server: ServerThread,
                                                      client: httpx.Client) -> None:
    start = client.get("/v1/nodes").json()["seq"]
    server.call(lambda: runtime.ingest(instance_notification("instance-create-end", uuid=NEW, host="host-0001")))
    events = _read_events(client, {"since": str(start)}, {}, want=3)
    kinds = [e["event"] for e in events[1:]]
    assert kinds[:3] == ["instance", "node", "notification"]
    change = json.loads(events[1]["data"])
    assert change["op"] == "upsert" and change["key"] == NEW and change["data"]["host"] == "host-0001"
    node = json.loads(events[2]["data"])
    assert node["data"]["host"] == "host-0001" and node["data"]["running_vms"] == 3
    # Resume after the instance change: the first event is the next one (Last-Event-ID wins over since).
    resumed = _read_events(client, {"since": "0"}, {"Last-Event-ID": events[1]["id"]}, want=1)
    assert _seq(resumed[1]["id"]) == _seq(events[1]["id"]) + 1
    notes = client.get("/v1/notifications").json()["notifications"]
    assert notes[0]["event_type"] == "instance.create.end" and notes[0]["outcome"] == "applied"
    assert notes[0]["instance"] == NEW and notes[0]["host"] == "host-0001"


def test_watch_reset_when_too_old(runtime: ModelRuntime, server: ServerThread, client: httpx.Client) -> None:
    small = ModelRuntime(watch_buffer=5)
    small.load(small_cloud(hosts=8))  # 8 node changes + bootstrap status: the first ones are gone
    with ServerThread(create_model_app(small.state), name="model") as srv, httpx.Client(base_url=srv.url) as c:
        events = _read_events(c, {"since": "1"}, {}, want=1)
        assert events[1]["event"] == "reset"
        assert json.loads(events[1]["data"])["seq"] == small.state.feed.seq
        bad = c.get("/v1/watch", headers={"Last-Event-ID": "abc"})
        assert bad.status_code == 400
        assert "Last-Event-ID" in bad.json()["error"]


def _seq(event_id: str) -> int:
    """The sequence number of an event id (``SEQ.INCARNATION``)."""
    seq, _, incarnation = event_id.partition(".")
    assert incarnation, event_id
    return int(seq)


def test_watch_ids_name_the_service_run(runtime: ModelRuntime, server: ServerThread, client: httpx.Client) -> None:
    """An event id carries this run's incarnation: resuming from one of this run's ids goes on right after
    it; one from another run of the service (or another replica) counting the same numbers gets ``reset``,
    never a resume from a number that means something else here."""
    health = client.get("/v1/health").json()
    incarnation = health["incarnation"]
    start = health["seq"]
    server.call(lambda: runtime.ingest(instance_notification("instance-create-end", uuid=NEW, host="host-0001")))
    events = _read_events(client, {"since": str(start)}, {}, want=3)
    hello = json.loads(events[0]["data"])
    assert events[0]["event"] == "hello" and hello["incarnation"] == incarnation
    assert events[0]["id"] == f"{start}.{incarnation}"  # where the stream goes on from
    assert [e["id"] for e in events[1:4]] == [f"{start + n}.{incarnation}" for n in (1, 2, 3)]

    # This run's id: the next event is the one right after it.
    resumed = _read_events(client, {}, {"Last-Event-ID": events[1]["id"]}, want=1)
    assert resumed[1]["event"] != "reset" and resumed[1]["id"] == events[2]["id"]
    # The same id as ?since= (what the dashboard sends when it reopens the stream itself).
    resumed = _read_events(client, {"since": events[2]["id"]}, {}, want=1)
    assert resumed[1]["id"] == events[3]["id"]

    # Another run, with the same numbers: a second service over its own model, as a replica would be.
    other = ModelRuntime(recent=50, watch_buffer=1000)
    other.load(small_cloud())
    other.ingest(instance_notification("instance-create-end", uuid=NEW, host="host-0001"))
    assert other.state.feed.seq >= _seq(events[1]["id"])  # the number alone would look resumable there
    with ServerThread(create_model_app(other.state), name="model") as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as c:
        for headers, params in (({"Last-Event-ID": events[1]["id"]}, {}), ({}, {"since": events[1]["id"]})):
            moved = _read_events(c, params, headers, want=1)
            assert moved[1]["event"] == "reset", moved
            body = json.loads(moved[1]["data"])
            assert body["seq"] == other.state.feed.seq and body["incarnation"] == other.state.feed.incarnation
            assert "another run" in body["reason"]
            assert moved[1]["id"] == f"{other.state.feed.seq}.{other.state.feed.incarnation}"
        # A bare number is still resumed as before (scripts' ?since=SEQ); one ahead of the service is a reset.
        plain = _read_events(c, {}, {"Last-Event-ID": "1"}, want=1)
        assert plain[1]["event"] != "reset" and _seq(plain[1]["id"]) == 2
        ahead = _read_events(c, {"since": str(other.state.feed.seq + 5)}, {}, want=1)
        assert ahead[1]["event"] == "reset" and "restarted" in json.loads(ahead[1]["data"])["reason"]
    assert other.state.feed.incarnation != incarnation


@pytest.mark.parametrize("value", ["abc", "12.", ".ab12", "12.XYZ", "-3", "1 2", "12.ab.cd", "9" * 40])
def test_a_malformed_watch_position_is_refused_naming_it(client: httpx.Client, value: str) -> None:
    bad = client.get("/v1/watch", headers={"Last-Event-ID": value})
    assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["error"], bad.text
    bad = client.get("/v1/watch", params={"since": value})
    assert bad.status_code == 422 and "since" in bad.json()["error"], bad.text


def test_health_metrics_and_dashboard(runtime: ModelRuntime, server: ServerThread, client: httpx.Client) -> None:
    created = instance_notification("instance-create-end", uuid=NEW, host="host-0000")
    server.call(lambda: runtime.ingest(created))
    server.call(lambda: runtime.ingest(b'{"event_type": "instance.create.end", "payload": 3}'))
    server.call(lambda: runtime.ingest(created))  # a duplicate: ignored
    health = client.get("/v1/health").json()
    assert health["applied"] == 1 and health["rejected"] == 1 and health["ignored"] == 1
    assert health["nodes"] == 3 and health["instances"] == 7 and health["bootstrapped"] is True
    assert health["lag_seconds"] is not None
    text = client.get("/metrics").text
    assert 'novawatch_notifications_total{event_type="instance.create.end",outcome="applied"} 1.0' in text
    assert "novawatch_apply_seconds_bucket" in text and "novawatch_model_drift" in text
    page = client.get("/")
    assert page.status_code == 200 and "/static/js/app.js" in page.text
    assert "EventSource" in client.get("/static/js/live.js").text
    wait_for(lambda: client.get("/v1/notifications", params={"outcome": "rejected"}).json()["notifications"],
             what="the rejected notification in the feed")
    spec = client.get("/openapi.json").json()
    assert "/v1/nodes" in spec["paths"] and "/v1/watch" in spec["paths"]
