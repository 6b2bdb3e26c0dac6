"""Which writes of a compute worker run side by side (:func:`novawatch.api.shared_writes.instance_scope`)."""

from __future__ import annotations

import json

import pytest

from novawatch.api.shared_writes import instance_scope

UUID = "6a1f5b1e-1c1e-4d55-9d7c-1f0e9a9a0b01"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", f"/v1/instances/{UUID}/pause", None),
    ("POST", f"/v1/instances/{UUID}/power_off", None),
    ("POST", f"/v1/instances/{UUID}/reboot", {"hard": True}),
    ("POST", f"/v1/instances/{UUID}/metadata", {"metadata": {"k": "v"}}),
    ("POST", f"/v1/instances/{UUID}/tags", {"tags": ["a"]}),
    ("POST", f"/v1/instances/{UUID}/lock", {"reason": "r"}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"os-stop": None}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"reboot": {"type": "HARD"}}),
    ("POST", f"/v2.1/servers/{UUID}/metadata", {"metadata": {"k": "v"}}),
    ("PUT", f"/v2.1/servers/{UUID}/metadata/k", {"meta": {"k": "v"}}),
    ("DELETE", f"/v2.1/servers/{UUID}/metadata/k", None),
])
def test_an_action_on_one_instance_names_it(method: str, path: str, body: object) -> None:
    assert instance_scope(method, path, json.dumps(body).encode() if body is not None else b"") == UUID


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/v1/instances", {"name": "a", "flavor": "m1.tiny"}),  # a boot claims capacity
    ("DELETE", f"/v1/instances/{UUID}", None),
    ("POST", f"/v1/instances/{UUID}/live_migrate", None),
    ("POST", f"/v1/instances/{UUID}/resize", {"flavor": "m1.small"}),
    ("POST", f"/v1/instances/{UUID}/attach_volume", None),
    ("POST", f"/v1/instances/{UUID}/attach_interface", None),
    ("POST", f"/v2.1/servers/{UUID}/action", {"os-migrateLive": {"host": None}}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"pause": None, "unpause": None}),  # the app refuses it
    ("POST", f"/v2.1/servers/{UUID}/action", "not json"),
    ("PUT", f"/v2.1/servers/{UUID}", {"server": {"name": "n"}}),
    ("DELETE", f"/v2.1/servers/{UUID}", None),
    ("POST", "/v1/services", {"host": "h"}),
])
def test_every_other_write_is_exclusive(method: str, path: str, body: object) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode() if body is not None else b""
    assert instance_scope(method, path, raw) is None
