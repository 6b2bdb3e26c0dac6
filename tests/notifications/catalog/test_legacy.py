"""Legacy ``compute.instance.*`` notifications: Nova's plain dicts, read leniently."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from novakit import dump
from novawatch.notifications import Notifier, Rejected, decode, encode
from novawatch.notifications.catalog import events, spec
from novawatch.notifications.catalog.legacy import (
    LEGACY_EVENT_TYPES,
    LegacyInstanceExistsPayload,
    LegacyInstancePayload,
    LegacyInstanceUpdatePayload,
    LegacyInstanceVolumePayload,
)
from novawatch.notifications.drivers import MemoryDriver


def info_dict(**changes: Any) -> dict[str, Any]:
    """The dict Nova's ``info_from_instance`` builds, with the value formats it writes."""
    payload: dict[str, Any] = {
        "tenant_id": "6f70656e737461636b20342065766572", "user_id": "fake",
        "instance_id": "178b0921-8f85-4257-88b6-2e743b5a975c", "display_name": "some-server",
        "reservation_id": "r-npxv0e40", "hostname": "some-server", "instance_type": "test_flavor",
        "instance_type_id": 1, "instance_flavor_id": "a22d5517-147c-4147-a0d1-e698df5cd4e3",
        "architecture": "x86_64", "memory_mb": 512, "disk_gb": 1, "vcpus": 1, "root_gb": 1, "ephemeral_gb": 0,
        "host": "compute", "node": "fake-mini", "availability_zone": "nova", "cell_name": "",
        "created_at": "2012-10-29 13:42:11+00:00", "terminated_at": "", "deleted_at": "",
        "launched_at": "2012-10-29T13:42:11.000000", "image_ref_url": "http://glance/images/155d900f",
        "os_type": None, "kernel_id": "", "ramdisk_id": "", "state": "active", "state_description": "",
        "progress": "", "access_ip_v4": None, "access_ip_v6": None,
        "image_meta": {"base_image_ref": "155d900f-4e14-4e4c-a73d-069cbf4541e6", "min_disk": "1"},
        "metadata": {},
    }
    payload.update(changes)
    return payload


def notification(event_type: str, payload: dict[str, Any], priority: str = "INFO") -> bytes:
    return dump({"event_type": event_type, "payload": payload, "priority": priority,
                 "publisher_id": "compute.compute", "message_id": "m-1",
                 "timestamp": "2012-10-29 13:42:11.123456"})


def test_compute_instance_events_nova_emits_are_legacy_entries() -> None:
    expected = {
        "compute.instance.create.start", "compute.instance.create.end", "compute.instance.create.error",
        "compute.instance.update", "compute.instance.delete.start", "compute.instance.delete.end",
        "compute.instance.power_off.start", "compute.instance.power_off.end",
        "compute.instance.resize.prep.start", "compute.instance.resize.prep.end",
        "compute.instance.finish_resize.start", "compute.instance.finish_resize.end",
        "compute.instance.resize.confirm.start", "compute.instance.resize.revert.end",
        "compute.instance.live_migration.pre.start", "compute.instance.live_migration._post.end",
        "compute.instance.live_migration.post.dest.start", "compute.instance.live_migration._rollback.end",
        "compute.instance.live_migration.rollback.dest.end", "compute.instance.live.migration.abort.start",
        "compute.instance.live.migration.force.complete.end", "compute.instance.rebuild.scheduled",
        "compute.instance.rebuild.start", "compute.instance.volume.attach", "compute.instance.volume.detach",
        "compute.instance.exists", "compute.instance.shelve.start", "compute.instance.shelve_offload.end",
        "compute.instance.unshelve.end", "compute.instance.soft_delete.start", "compute.instance.evacuate",
        "compute.instance.create_ip.start", "compute.instance.delete_ip.end", "compute.instance.snapshot.end",
    }
    assert expected <= set(LEGACY_EVENT_TYPES)
    # Besides compute.instance.*: the server group API's servergroup.* and the conductor's compute_task.<task>
    # (tested in test_compute_task_legacy below).
    legacy = [e for e in events() if not e.versioned and not e.event_type.startswith("compute_task.")]
    groups = {"servergroup.create", "servergroup.delete", "servergroup.addmember"}
    assert {e.event_type for e in legacy} == set(LEGACY_EVENT_TYPES) | groups
    for entry in (e for e in legacy if e.event_type not in groups):
        assert entry.event_type.startswith("compute.instance.")
        assert entry.source == "compute"
        assert entry.priority == ("ERROR" if entry.event_type.endswith(".error") else "INFO")
        assert issubclass(entry.payload, LegacyInstancePayload)


def test_info_dict_decodes_to_a_typed_struct_and_ignores_unknown_keys() -> None:
    payload = info_dict(bandwidth={}, some_future_key=[1, 2])
    decoded = decode(notification("compute.instance.pause.start", payload))
    data = decoded.payload
    assert type(data) is LegacyInstancePayload
    assert data.instance_id == "178b0921-8f85-4257-88b6-2e743b5a975c"
    assert data.memory_mb == 512
    assert data.progress == ""
    assert data.fixed_ips is msgspec.UNSET
    assert decoded.message_id == "m-1"
    assert "some_future_key" not in json.loads(encode(decoded))["payload"]


def test_error_event_carries_the_fault() -> None:
    payload = info_dict(message="No valid host", code=500, exception={"kwargs": {"code": 500}}, progress=0)
    data = decode(notification("compute.instance.create.error", payload, "ERROR")).payload
    assert data.message == "No valid host"
    assert data.code == 500
    assert data.progress == 0


def test_update_needs_its_state_and_audit_fields() -> None:
    payload = info_dict(old_state="building", old_task_state="scheduling", new_task_state=None,
                        audit_period_beginning="2012-10-01T00:00:00.000000",
                        audit_period_ending="2012-10-29T13:42:11.000000", old_display_name="old")
    data = decode(notification("compute.instance.update", payload)).payload
    assert isinstance(data, LegacyInstanceUpdatePayload)
    assert data.old_state == "building"
    assert data.old_display_name == "old"
    del payload["old_task_state"]
    with pytest.raises(Rejected) as caught:
        decode(notification("compute.instance.update", payload))
    assert "`old_task_state`" in caught.value.reason


def test_volume_and_exists_payloads() -> None:
    volume = decode(notification("compute.instance.volume.attach", info_dict(volume_id="a07f71dc"))).payload
    assert isinstance(volume, LegacyInstanceVolumePayload)
    assert volume.volume_id == "a07f71dc"
    with pytest.raises(Rejected, match="volume_id"):
        decode(notification("compute.instance.volume.detach", info_dict()))
    exists = decode(notification("compute.instance.exists", info_dict(
        audit_period_beginning="2012-10-01 00:00:00", audit_period_ending="2012-10-29 13:42:11"))).payload
    assert isinstance(exists, LegacyInstanceExistsPayload)


@pytest.mark.parametrize(("field", "value"), [("instance_id", None), ("memory_mb", "512"), ("metadata", [])])
def test_wrong_or_missing_fields_are_rejected_naming_them(field: str, value: Any) -> None:
    with pytest.raises(Rejected) as caught:
        decode(notification("compute.instance.pause.end", info_dict(**{field: value})))
    assert f"`payload.{field}`" in caught.value.reason
    payload = info_dict()
    del payload[field]
    with pytest.raises(Rejected) as caught:
        decode(notification("compute.instance.pause.end", payload))
    assert f"`{field}`" in caught.value.reason


def test_notifier_emits_legacy_payloads_on_the_legacy_topic() -> None:
    driver = MemoryDriver()
    notifier = Notifier([driver], notification_format="both")
    payload = msgspec.convert(info_dict(), LegacyInstancePayload)
    sent = notifier.emit("compute.instance.power_on.start", payload, publisher_id="compute.host-1")
    assert sent is not None
    assert driver.sent[0].topic == "notifications"
    assert decode(driver.sent[0].body).payload == payload
    assert Notifier([driver], notification_format="versioned").emit(
        "compute.instance.power_on.end", payload, publisher_id="compute.host-1") is None
    entry = spec("compute.instance.power_on.end")
    assert entry is not None and not entry.versioned


def test_compute_task_legacy() -> None:
    """The conductor's legacy twin of compute_task.<task>.error, as Nova 34 sends it (no phase, ERROR)."""
    for task in ("build_instances", "migrate_server", "rebuild_server"):
        entry = spec(f"compute_task.{task}")
        assert entry is not None and not entry.versioned and entry.priority == "ERROR"
    payload = {"request_spec": {"num_instances": 1}, "instance_properties": {"uuid": "4b97049b"},
               "instance_id": "4b97049b-9edc-4fef-b0a4-2fc021ac0d04", "state": "error", "method": "build_instances",
               "reason": "{'kwargs': {'reason': '', 'code': 500}, 'message': 'No valid host was found. ', "
                         "'class': 'NoValidHost'}"}
    decoded = decode(notification("compute_task.build_instances", payload, "ERROR")).payload
    assert decoded.method == "build_instances" and decoded.state == "error"
    with pytest.raises(Rejected, match="instance_id"):
        decode(notification("compute_task.build_instances", {k: v for k, v in payload.items() if k != "instance_id"},
                            "ERROR"))


def test_notifier_emits_the_legacy_half_of_a_shared_event_type() -> None:
    """scheduler.select_destinations.* goes out in both formats under one event type."""
    from novawatch.notifications.catalog.legacy_shared import LegacyRequestSpecPayload

    driver = MemoryDriver()
    notifier = Notifier([driver], notification_format="both")
    sent = notifier.emit("scheduler.select_destinations.start", LegacyRequestSpecPayload(request_spec={"a": 1}),
                         publisher_id="scheduler.scheduler")
    assert sent is not None and driver.sent[0].topic == "notifications"
    assert json.loads(driver.sent[0].body)["payload"] == {"request_spec": {"a": 1}}
    with pytest.raises(ValueError, match="not in the catalog"):
        notifier.emit("instance.lock", LegacyRequestSpecPayload(request_spec={}), publisher_id="x")
