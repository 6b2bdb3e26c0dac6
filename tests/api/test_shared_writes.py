"""Which writes of a compute worker run side by side (:func:`novawatch.api.shared_writes.write_scope`)."""

from __future__ import annotations

import json

import pytest

from novawatch.api.shared_writes import EXCLUSIVE, WriteScope, instance_scope, write_scope

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
    # no claim, node, address or shared volume written (docs/compute.md, "What runs side by side")
    ("POST", f"/v1/instances/{UUID}/rescue", None),
    ("POST", f"/v1/instances/{UUID}/unrescue", None),
    ("POST", f"/v1/instances/{UUID}/rebuild", {"image_ref": None}),
    ("POST", f"/v1/instances/{UUID}/snapshot", None),
    ("POST", f"/v1/instances/{UUID}/shelve", None),
    ("POST", f"/v1/instances/{UUID}/soft_delete", None),
    ("POST", f"/v1/instances/{UUID}/restore", None),
    ("POST", f"/v1/instances/{UUID}/detach_volume", {"volume_id": "v"}),
    ("POST", f"/v1/instances/{UUID}/detach_interface", {"port_id": "p"}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"rescue": None}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"rebuild": {"imageRef": UUID}}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"createImage": {"name": "i"}}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"shelve": None}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"restore": None}),
    ("DELETE", f"/v2.1/servers/{UUID}/os-volume_attachments/{UUID}", None),
    ("DELETE", f"/v2.1/servers/{UUID}/os-interface/p", None),
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
    ("POST", f"/v1/instances/{UUID}/force_delete", None),
    ("POST", f"/v1/instances/{UUID}/shelve_offload", None),
])
def test_every_other_write_is_exclusive(method: str, path: str, body: object) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode() if body is not None else b""
    assert instance_scope(method, path, raw) is None


def _raw(body: object) -> bytes:
    return body.encode() if isinstance(body, str) else json.dumps(body).encode() if body is not None else b""


@pytest.mark.parametrize(("method", "path", "body"), [
    ("DELETE", f"/v1/instances/{UUID}", None),
    ("DELETE", f"/v2.1/servers/{UUID}", None),
    ("POST", f"/v1/instances/{UUID}/force_delete", None),
    ("POST", f"/v1/instances/{UUID}/shelve_offload", None),
    ("POST", f"/v2.1/servers/{UUID}/action", {"forceDelete": None}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"shelveOffload": None}),
])
def test_a_write_that_frees_its_instances_claim_also_locks_the_host(method: str, path: str, body: object) -> None:
    assert write_scope(method, path, _raw(body)) == WriteScope(UUID, host=True)


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/v1/instances", {"name": "a", "flavor": "m1.tiny"}),  # schedules
    ("POST", f"/v1/instances/{UUID}/unshelve", None),  # may schedule
    ("POST", f"/v1/instances/{UUID}/evacuate", None),
    ("POST", f"/v1/instances/{UUID}/migrate", None),
    ("POST", f"/v1/instances/{UUID}/confirm_resize", None),  # frees the source host: two hosts
    ("POST", f"/v1/instances/{UUID}/revert_resize", None),
    ("POST", f"/v1/instances/{UUID}/live_migration_complete", None),
    ("POST", f"/v1/instances/{UUID}/attach_volume", None),  # reserves a volume any instance could take
    ("POST", f"/v1/instances/{UUID}/swap_volume", {"old_volume_id": "v"}),
    ("POST", f"/v1/instances/{UUID}/attach_interface", None),  # takes the next network address
    ("POST", f"/v2.1/servers/{UUID}/os-interface", {"interfaceAttachment": {}}),
    ("POST", f"/v2.1/servers/{UUID}/os-volume_attachments", {"volumeAttachment": {"volumeId": "v"}}),
    ("PUT", f"/v2.1/servers/{UUID}/os-volume_attachments/{UUID}", {"volumeAttachment": {"volumeId": "v"}}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"unshelve": None}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"confirmResize": None}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"createBackup": {"name": "b"}}),  # unknown to novawatch
    ("POST", f"/v2.1/servers/{UUID}/action", {"forceDelete": None, "restore": None}),
    ("DELETE", f"/v1/instances/{UUID}/", None),  # a trailing slash is not the instance's path
    ("DELETE", "/v1/flavors/1", None),
    ("PATCH", f"/v1/instances/{UUID}", None),
])
def test_anything_else_is_exclusive(method: str, path: str, body: object) -> None:
    assert write_scope(method, path, _raw(body)) == EXCLUSIVE
