"""Property: no request body, however hostile, gets a 5xx from either API, or leaves the service broken.

Hypothesis takes a valid body of each write endpoint (novawatch's ``/v1`` and the Nova API's ``/v2.1``)
and replaces one field, or the whole body, with a hostile value: numbers beyond every column type, NaN
and infinities, booleans where integers go, NUL and other control characters, lone surrogates, very long
strings, deep nesting, bytes that are not JSON. Each answer must be below 500, a refusal must carry a
message; after each request the service answers health and a valid write.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .computeserved import IMAGE, Served, served

IMAGE_UUID = IMAGE


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{tmp / 'compute.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres")
    with served(tmp, url, hosts=3) as running:
        yield running


@pytest.fixture(scope="module")
def target(cloud: Served) -> dict[str, str]:
    """An instance, a volume and a port to aim the action endpoints at."""
    inst = cloud.boot("fuzz-target")
    vol = httpx.post(cloud.url + "/v1/volumes", json={"size": 1}).json()["id"]
    service = httpx.get(cloud.nova + "/os-services", headers={"OpenStack-API-Version": "compute 2.53"})
    first = service.json()["services"][0]["id"]
    return {"uuid": inst["uuid"], "volume": vol, "port": inst["ports"][0], "service": first}


# --- hostile values --------------------------------------------------------------------------------------------

_numbers = st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**53 + 1, 2**63, 2**70, -(2**70), 10**400,
                            float("nan"), float("inf"), float("-inf"), 1.5, -0.0, 1e308, True, False])
_texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec=None, categories=("Cc", "Cf", "Cs", "Co", "Zl", "Zp")), min_size=1,
            max_size=5),
    st.sampled_from(["", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "\u2028", "😀", "x" * 256, "y" * 5000,
                     "a/b", "a,b", "1e400", "NaN", "-1", "00012", IMAGE_UUID]),
)
_scalars = st.one_of(st.none(), _numbers, _texts)
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(_texts, inner, max_size=4)),
                       max_leaves=12)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# --- the write endpoints and a valid body of each ------------------------------------------------------------

V1 = "/v1"
NOVA = "/v2.1"


def endpoints(t: dict[str, str]) -> list[tuple[str, str, Any]]:
    u, vol, port = t["uuid"], t["volume"], t["port"]
    server = {"name": "fz", "imageRef": IMAGE_UUID, "flavorRef": "m1.tiny", "metadata": {"k": "v"}, "tags": ["t"],
              "networks": "auto", "block_device_mapping_v2": [{"boot_index": 0, "destination_type": "volume",
                                                               "source_type": "image", "volume_size": 1}]}
    return [
        ("POST", f"{V1}/services", {"host": "fz-host", "vcpus": 8, "memory_mb": 8192, "local_gb": 100}),
        ("POST", f"{V1}/services/host-0002/disable", {"reason": "maintenance"}),
        ("POST", f"{V1}/services/host-0002/force_down", {"forced_down": False}),
        ("POST", f"{V1}/flavors", {"name": "fz", "vcpus": 1, "memory_mb": 512, "root_gb": 1, "ephemeral_gb": 0,
                                   "swap": 0}),
        ("POST", f"{V1}/volumes", {"size": 1}),
        ("POST", f"{V1}/instances", {"name": "fz", "flavor": "m1.tiny", "project_id": "p1", "ports": 1,
                                     "metadata": {"k": "v"}, "tags": ["t"], "boot_volume_gb": 1}),
        ("POST", f"{V1}/instances/{u}/reboot", {"hard": True}),
        ("POST", f"{V1}/instances/{u}/lock", {"reason": "because"}),
        ("POST", f"{V1}/instances/{u}/unlock", None),
        ("POST", f"{V1}/instances/{u}/rebuild", {"image_ref": IMAGE_UUID}),
        ("POST", f"{V1}/instances/{u}/resize", {"flavor": "m1.small", "host": "host-0002"}),
        ("POST", f"{V1}/instances/{u}/live_migrate", {"host": "host-0003"}),
        ("POST", f"{V1}/instances/{u}/tags", {"tags": ["a", "b"]}),
        ("POST", f"{V1}/instances/{u}/metadata", {"metadata": {"k": "v"}, "replace": True}),
        ("POST", f"{V1}/instances/{u}/attach_volume", {"volume_id": vol, "size": 1}),
        ("POST", f"{V1}/instances/{u}/detach_volume", {"volume_id": vol}),
        ("POST", f"{V1}/instances/{u}/swap_volume", {"old_volume_id": vol, "new_volume_id": vol}),
        ("POST", f"{V1}/instances/{u}/detach_interface", {"port_id": port}),
        ("POST", f"{NOVA}/servers", {"server": server}),
        ("POST", f"{NOVA}/flavors", {"flavor": {"name": "fz", "ram": 512, "vcpus": 1, "disk": 1,
                                                "OS-FLV-EXT-DATA:ephemeral": 0, "swap": 0}}),
        ("POST", f"{NOVA}/servers/{u}/action", {"lock": {"locked_reason": "because"}}),
        ("POST", f"{NOVA}/servers/{u}/action", {"unlock": None}),
        ("POST", f"{NOVA}/servers/{u}/action", {"reboot": {"type": "HARD"}}),
        ("POST", f"{NOVA}/servers/{u}/action", {"resize": {"flavorRef": "m1.small"}}),
        ("POST", f"{NOVA}/servers/{u}/action", {"os-migrateLive": {"host": "host-0002", "block_migration": "auto"}}),
        ("POST", f"{NOVA}/servers/{u}/action", {"createImage": {"name": "img", "metadata": {}}}),
        ("POST", f"{NOVA}/servers/{u}/action", {"rebuild": {"imageRef": IMAGE_UUID}}),
        ("POST", f"{NOVA}/servers/{u}/action", {"rescue": {"rescue_image_ref": IMAGE_UUID}}),
        ("POST", f"{NOVA}/servers/{u}/os-volume_attachments", {"volumeAttachment": {"volumeId": vol}}),
        ("PUT", f"{NOVA}/servers/{u}/os-volume_attachments/{vol}", {"volumeAttachment": {"volumeId": vol}}),
        ("POST", f"{NOVA}/servers/{u}/os-interface", {"interfaceAttachment": {}}),
        ("PUT", f"{NOVA}/os-services/{t['service']}", {"status": "disabled", "disabled_reason": "why",
                                                       "forced_down": False}),
        ("PUT", f"{NOVA}/os-services/disable-log-reason", {"host": "host-0003", "binary": "nova-compute",
                                                           "disabled_reason": "why"}),
    ]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a body a value can be replaced at (the body itself included)."""
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(_paths(item, (*prefix, i)))
    return out


def _replaced(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(body))
    at = copy
    for key in path[:-1]:
        at = at[key]
    at[path[-1]] = value
    return copy


@st.composite
def hostile_requests(draw: st.DrawFn, targets: dict[str, str]) -> tuple[str, str, bytes]:
    method, path, body = draw(st.sampled_from(endpoints(targets)))
    kind = draw(st.sampled_from(["field", "field", "field", "extra", "raw", "nested"]))
    if kind == "raw":
        raw = draw(st.one_of(st.binary(max_size=64), st.sampled_from([
            b'{"a": NaN}', b"[" * 50_000 + b"]" * 50_000, b'{"name": "\\ud800"}', b"1e400", b"\xff\xfe", b"{",
        ])))
        return method, path, raw
    if kind == "nested":
        where = draw(st.sampled_from(_paths(body)))
        mutated = _replaced(body, where, _nested(draw(st.integers(min_value=20, max_value=3000))))
    elif kind == "extra" and isinstance(body, dict):
        mutated = {**body, draw(_texts): draw(_values)}
    else:
        where = draw(st.sampled_from(_paths(body)))
        mutated = _replaced(body, where, draw(_values))
    try:
        raw = json.dumps(mutated).encode()  # NaN/Infinity tokens and \\udXXX escapes as Python writes them
    except (RecursionError, ValueError):
        raw = b"[" * 5000 + b"]" * 5000
    return method, path, raw


@settings(max_examples=150, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_no_request_body_gets_a_5xx_or_breaks_the_service(cloud: Served, target: dict[str, str],
                                                           data: st.DataObject) -> None:
    method, path, raw = data.draw(hostile_requests(target))
    with httpx.Client(base_url=cloud.url, timeout=120) as client:
        resp = client.request(method, path, content=raw, headers={"content-type": "application/json"})
        assert resp.status_code < 500, (method, path, raw[:300], resp.status_code, resp.text[:500])
        if resp.status_code >= 400 and resp.status_code != 405:
            body = resp.json()
            message = body["error"] if "error" in body else next(iter(body.values()))["message"]
            assert isinstance(message, str) and message
        health = client.get("/v1/health")
        assert health.status_code == 200 and health.json()["status"] == "ok", health.text
        valid = client.post("/v1/volumes", json={"size": 1})
        assert valid.status_code == 201, valid.text
