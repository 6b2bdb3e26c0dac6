"""The Nova API source against an HTTP server that answers as Nova 34 does, where novawatch's cannot.

novawatch's compute service has no policy, no ``[api] max_limit`` below 1000 and stops at 2.87, so
these cases are served from Nova 34's documents (``nova34/``) by a small real HTTP server: a page cap
with ``*_links``, a cloud whose minimum microversion is past 2.87 (capacity from Placement), Nova's
403 fault for a member, a listing without the admin-only host attributes, a 401, and an endpoint
that is not Nova. Everything goes through keystoneauth exactly as against a real cloud.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from novawatch.api.client import HttpSource
from novawatch.api.sources import detect
from novawatch.sources.cloud import open_endpoint
from novawatch.sources.errors import SourceError

DOCS = Path(__file__).with_name("nova34")


def doc(name: str) -> Any:
    return json.loads((DOCS / name).read_text())


class FakeNova:
    """Nova 34's answers for a handful of paths; ``mode`` picks the cloud's behaviour."""

    def __init__(self) -> None:
        self.mode = "admin"
        self.max_limit = 3
        self.min_version = "2.1"
        self.requests: list[tuple[str, dict[str, list[str]], str | None]] = []
        hyps = doc("hypervisors-detail-v2.87.json")["hypervisors"]
        self.hypervisors = hyps + [dict(copy.deepcopy(hyps[0]), id=f"00000000-0000-4000-8000-00000000000{n}",
                                        hypervisor_hostname=f"extra{n}.example.org",
                                        service={"host": f"extra{n}", "id": "x", "disabled_reason": None})
                                   for n in range(3)]
        self.servers = doc("servers-detail-admin-latest.json")["servers"]

    def version(self, base: str) -> dict[str, Any]:
        return {"id": "v2.1", "status": "CURRENT", "version": "2.104", "min_version": self.min_version,
                "updated": "2013-07-23T11:33:21Z", "links": [{"rel": "self", "href": base + "/v2.1/"}]}

    def answer(self, path: str, query: dict[str, list[str]], version: str | None, base: str) -> tuple[int, Any]:
        if path in ("/v2.1", "/v2.1/"):
            return 200, {"version": self.version(base)}
        if path == "/":
            return 200, {"versions": [self.version(base)]}
        if self.mode == "expired":
            return 401, {"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made "
                                                                                      "requires authentication."}}
        if path == "/v2.1/os-hypervisors/detail":
            if self.mode == "member":
                return 403, {"forbidden": {"code": 403, "message": "Policy doesn't allow os_compute_api:"
                                                                   "os-hypervisors:list-detail to be performed."}}
            items = self.hypervisors
            if version and tuple(int(p) for p in version.split()[-1].split(".")) >= (2, 88):
                items = [{k: v for k, v in h.items() if k not in ("vcpus", "memory_mb", "local_gb", "vcpus_used",
                                                                  "memory_mb_used", "local_gb_used", "free_ram_mb",
                                                                  "free_disk_gb", "current_workload",
                                                                  "running_vms", "disk_available_least",
                                                                  "cpu_info")} for h in items]
            return 200, self._page(items, query, "hypervisors", base + path)
        if path == "/v2.1/servers/detail":
            items = self.servers
            if self.mode == "narrowed":
                items = doc("servers-detail-member-latest.json")["servers"]
            if not query.get("soft_deleted"):
                items = [s for s in items if s["OS-EXT-STS:vm_state"] != "soft-delete"]
            return 200, self._page(items, query, "servers", base + path)
        if path in ("/placement", "/placement/"):
            return 200, {"versions": [{"id": "v1.0", "max_version": "1.39", "min_version": "1.0",
                                       "status": "CURRENT", "links": [{"rel": "self", "href": ""}]}]}
        if path.startswith("/placement/resource_providers/"):
            return 200, doc("resource-provider-inventories.json")
        return 404, {"itemNotFound": {"code": 404, "message": "The resource could not be found."}}

    def _page(self, items: list[dict[str, Any]], query: dict[str, list[str]], key: str, url: str) -> dict[str, Any]:
        limit = min(int(query.get("limit", [self.max_limit])[0]), self.max_limit)
        start = 0
        if "marker" in query:
            start = [i["id"] for i in items].index(query["marker"][0]) + 1
        page = items[start:start + limit]
        body: dict[str, Any] = {key: page}
        if len(page) == limit:  # Nova links the next page whenever a page is full
            body[f"{key}_links"] = [{"rel": "next", "href": f"{url}?limit={limit}&marker={page[-1]['id']}"}]
        return body


@pytest.fixture
def nova() -> Iterator[tuple[FakeNova, str]]:
    fake = FakeNova()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            version = self.headers.get("OpenStack-API-Version")
            fake.requests.append((parts.path, query, version))
            status, body = fake.answer(parts.path, query, version, f"http://{self.headers['Host']}")
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_pages_follow_novas_links_past_its_page_cap(nova: tuple[FakeNova, str]) -> None:
    fake, base = nova
    source = open_endpoint(base + "/v2.1", token="admin:admin")
    snap = source.snapshot()
    assert len(snap.nodes) == 5 and len(snap.instances) == 7  # soft-deleted included
    hyp_pages = [(q.get("marker"), v) for p, q, v in fake.requests if p.endswith("/os-hypervisors/detail")]
    # asked for 1000, capped at 3 by Nova: 3 + 2 -> two pages, at the capacity microversion
    assert [m for m, _ in hyp_pages] == [None, ["00000000-0000-4000-8000-000000000000"]]
    assert {v for _, v in hyp_pages} == {"compute 2.87"}
    server_requests = [(q, v) for p, q, v in fake.requests if p.endswith("/servers/detail")]
    assert len(server_requests) == 3 and {v for _, v in server_requests} == {"compute 2.104"}
    assert all(q["all_tenants"] == ["1"] and q["soft_deleted"] == ["true"] for q, _ in server_requests)


def test_past_2_87_capacity_comes_from_placement(nova: tuple[FakeNova, str]) -> None:
    fake, base = nova
    fake.min_version = "2.88"
    source = open_endpoint(base + "/v2.1")
    with pytest.raises(SourceError, match="no placement endpoint") as caught:
        source.snapshot()  # a bare endpoint has no catalog, so no Placement: said so
    assert caught.value.kind == "catalog"
    import openstack.connection

    conn = openstack.connection.Connection(auth_type="none", compute_endpoint_override=base + "/v2.1",
                                           placement_endpoint_override=base + "/placement")
    from novawatch.sources.openstack import OpenStackSource

    snap = OpenStackSource(conn).snapshot()
    assert {n.vcpus for n in snap.nodes} == {4}  # every node's inventory says 4 VCPU
    assert snap.nodes[0].inventory is not None and snap.nodes[0].inventory["VCPU"]["allocation_ratio"] == 16.0
    versions = {v for p, _, v in fake.requests if p.endswith("/os-hypervisors/detail")}
    assert versions == {"compute 2.104"}


def test_a_member_gets_novas_403_explained(nova: tuple[FakeNova, str]) -> None:
    fake, base = nova
    fake.mode = "member"
    with pytest.raises(SourceError) as caught:
        open_endpoint(base + "/v2.1", token="member:demo").snapshot()
    assert caught.value.kind == "forbidden"
    message = str(caught.value)
    assert "GET /os-hypervisors/detail answered 403 (Policy doesn't allow os_compute_api:os-hypervisors:" \
           "list-detail to be performed.)" in message
    assert "needs the admin role" in message and "openstack role add" in message


def test_a_listing_narrowed_to_the_callers_project_is_refused(nova: tuple[FakeNova, str]) -> None:
    fake, base = nova
    fake.mode = "narrowed"
    with pytest.raises(SourceError, match=r"has no OS-EXT-SRV-ATTR:host.*admins only") as caught:
        open_endpoint(base + "/v2.1").snapshot()
    assert caught.value.kind == "forbidden"


def test_a_refused_token_and_a_wrong_endpoint_are_explained(nova: tuple[FakeNova, str]) -> None:
    fake, base = nova
    fake.mode = "expired"
    with pytest.raises(SourceError, match="answered 401: the token was refused") as caught:
        open_endpoint(base + "/v2.1", token="s3cret-token").snapshot()
    assert caught.value.kind == "auth" and "s3cret-token" not in str(caught.value)
    with pytest.raises(SourceError, match="no API version document") as caught:
        open_endpoint(base + "/nova").snapshot()
    assert caught.value.kind == "unreachable"
    with pytest.raises(SourceError, match="cannot reach") as caught:
        detect("http://127.0.0.1:9/v2.1")
    assert caught.value.kind == "unreachable"


def test_compute_url_is_detected(nova: tuple[FakeNova, str]) -> None:
    _, base = nova
    at_root = detect(base)  # Nova's root lists versions and has no /v1/health: its /v2.1 is used
    assert not isinstance(at_root, HttpSource) and at_root.label == f"Nova at {base}/v2.1"
    assert detect(base + "/v2.1").label == f"Nova at {base}/v2.1"
    password_url = base.replace("http://", "http://user:pw@") + "/v2.1"
    assert "pw" not in detect(password_url).label
