"""Everything Nova sends is accepted, what is wrong is rejected with the field named (issue 12 item 4, 13 item 9).

Legacy payloads below are built the way Nova 34 builds them (the source named on each); the versioned ones
are Nova's published samples.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import msgspec
import pytest

from novakit import dump, load
from novawatch.notifications import Rejected, UnknownEvent, decode, decode_parts, legacy_topic, warnings_of
from novawatch.notifications.catalog import SHARED_LEGACY, events, spec
from novawatch.notifications.catalog.legacy_shared import (
    LegacyAggregatePayload,
    LegacyKeypairPayload,
    LegacyRequestSpecPayload,
    LegacyVolumeUsagePayload,
)
from novawatch.objects import NovaObject, registered

#: ``nova.rpc.LegacyValidatingNotifier.allowed_legacy_notification_event_types`` of Nova 34.0.0: every legacy
#: event type Nova may send.
NOVA_34_LEGACY_EVENT_TYPES = (
    "aggregate.addhost.end", "aggregate.addhost.start", "aggregate.create.end", "aggregate.create.start",
    "aggregate.delete.end", "aggregate.delete.start", "aggregate.removehost.end", "aggregate.removehost.start",
    "aggregate.updatemetadata.end", "aggregate.updatemetadata.start", "aggregate.updateprop.end",
    "aggregate.updateprop.start", "compute.libvirt.error", "compute.metrics.update",
    "compute_task.build_instances", "compute_task.migrate_server", "compute_task.rebuild_server",
    "HostAPI.power_action.end", "HostAPI.power_action.start", "HostAPI.set_enabled.end",
    "HostAPI.set_enabled.start", "HostAPI.set_maintenance.end", "HostAPI.set_maintenance.start",
    "keypair.create.start", "keypair.create.end", "keypair.delete.start", "keypair.delete.end",
    "keypair.import.start", "keypair.import.end", "network.floating_ip.allocate",
    "network.floating_ip.associate", "network.floating_ip.deallocate", "network.floating_ip.disassociate",
    "scheduler.select_destinations.end", "scheduler.select_destinations.start", "servergroup.addmember",
    "servergroup.create", "servergroup.delete", "volume.usage",
)

UUID = "178b0921-8f85-4257-88b6-2e743b5a975c"


def legacy_notification(event_type: str, payload: dict[str, Any], publisher: str) -> dict[str, Any]:
    return {"event_type": event_type, "payload": payload, "priority": "INFO", "publisher_id": publisher,
            "message_id": "a5a1d3d4-5a0e-4a5a-9d5e-6f8f0c3e7a11", "timestamp": "2026-01-01 00:00:01.000001"}


def select_destinations(phase: str) -> dict[str, Any]:
    """``nova.scheduler.manager._select_destinations``: ``{'request_spec': to_legacy_request_spec_dict()}``."""
    flavor = {"id": 1, "name": "m1.tiny", "memory_mb": 512, "vcpus": 1, "root_gb": 1, "ephemeral_gb": 0,
              "flavorid": "1", "swap": 0, "rxtx_factor": 1.0, "vcpu_weight": 0, "disabled": False,
              "is_public": True, "extra_specs": {}, "description": None}
    spec_dict = {
        "num_instances": 1,
        "image": {"id": "155d900f-4e14-4e4c-a73d-069cbf4541e6", "name": "cirros", "min_ram": 0, "min_disk": 0,
                  "size": 25165824, "status": "active", "properties": {"hw_architecture": "x86_64"}},
        "instance_properties": {"project_id": "6f70656e737461636b20342065766572", "user_id": "fake",
                                "availability_zone": None, "uuid": UUID, "numa_topology": None,
                                "pci_requests": {"requests": []}, "root_gb": 1, "ephemeral_gb": 0,
                                "memory_mb": 512, "vcpus": 1},
        "instance_type": flavor,
    }
    return legacy_notification(f"scheduler.select_destinations.{phase}", {"request_spec": spec_dict},
                               "scheduler.host1")


def aggregate(action: str, phase: str) -> dict[str, Any]:
    """``nova.objects.aggregate.Aggregate.create/destroy``: the updates, ``aggregate_id`` once known."""
    payload: dict[str, Any] = {"aggregate_id": 1} if action == "delete" else {"name": "my-aggregate"}
    if action == "create" and phase == "end":
        payload["aggregate_id"] = 1
    return legacy_notification(f"aggregate.{action}.{phase}", payload, "aggregate.my-aggregate")


def keypair(action: str, phase: str) -> dict[str, Any]:
    """``nova.compute.api.KeypairAPI._notify``: tenant, user and key name."""
    payload = {"tenant_id": "6f70656e737461636b20342065766572", "user_id": "fake", "key_name": "my-key"}
    return legacy_notification(f"keypair.{action}.{phase}", payload, "api.host1")


def volume_usage() -> dict[str, Any]:
    """``nova.objects.volume_usage.VolumeUsage.to_dict``."""
    payload = {"volume_id": "a07f71dc-8151-4e7d-a0cc-cd24a3f11113", "tenant_id": "6f70656e737461636b20342065766572",
               "user_id": "fake", "availability_zone": "nova", "instance_id": UUID,
               "last_refreshed": "2012-10-29 13:42:11", "reads": 2, "read_bytes": 2**40, "writes": 3,
               "write_bytes": 5 * 2**40}
    return legacy_notification("volume.usage", payload, "compute.host1")


def legacy_instance() -> dict[str, Any]:
    """``compute.instance.pause.start`` as ``nova.notifications.base.info_from_instance`` fills it."""
    payload = {
        "tenant_id": "p", "user_id": "u", "instance_id": UUID, "display_name": "vm", "reservation_id": "r-1",
        "hostname": "vm", "instance_type": "m1.small", "instance_type_id": 2, "instance_flavor_id": "2",
        "architecture": None, "memory_mb": 512, "disk_gb": 1, "vcpus": 1, "root_gb": 1, "ephemeral_gb": 0,
        "host": "compute", "node": "compute", "availability_zone": "nova", "cell_name": "",
        "created_at": "2012-10-29 13:42:11+00:00", "terminated_at": "", "deleted_at": "",
        "launched_at": "2012-10-29T13:42:11.000000", "image_ref_url": None, "os_type": None, "kernel_id": "",
        "ramdisk_id": "", "state": "active", "state_description": "", "progress": "", "access_ip_v4": None,
        "access_ip_v6": None, "image_meta": {}, "metadata": {},
    }
    return legacy_notification("compute.instance.pause.start", payload, "compute.compute")


def every_shared_legacy() -> list[dict[str, Any]]:
    docs = [select_destinations("start"), select_destinations("end"), volume_usage()]
    docs += [aggregate(a, p) for a in ("create", "delete") for p in ("start", "end")]
    docs += [keypair(a, p) for a in ("create", "import", "delete") for p in ("start", "end")]
    return docs


# --- legacy notifications that share a versioned event type ------------------------------------------


def test_every_event_type_nova_sends_in_both_formats_has_its_legacy_half() -> None:
    both = {t for t in NOVA_34_LEGACY_EVENT_TYPES if (entry := spec(t)) is not None and entry.versioned}
    assert both == set(SHARED_LEGACY)
    assert both >= {"scheduler.select_destinations.start", "scheduler.select_destinations.end", "volume.usage"}
    assert len({doc["event_type"] for doc in every_shared_legacy()}) == len(SHARED_LEGACY)


@pytest.mark.parametrize("doc", every_shared_legacy(), ids=lambda d: d["event_type"])
def test_legacy_half_is_accepted_by_shape_and_by_topic(doc: dict[str, Any]) -> None:
    expected = SHARED_LEGACY[doc["event_type"]].payload
    for legacy in (None, True):
        n = decode(dump(doc), legacy=legacy)
        assert type(n.payload) is expected and not isinstance(n.payload, NovaObject)
        assert warnings_of(n) == []
    parts = decode_parts(dump(doc), True)
    assert (parts.event_type, type(parts.payload), parts.key) == (doc["event_type"], expected,
                                                                  "2026-01-01 00:00:01.000001")


def test_legacy_payloads_keep_what_nova_put_in_them() -> None:
    spec_payload = decode(dump(select_destinations("start"))).payload
    assert isinstance(spec_payload, LegacyRequestSpecPayload)
    assert spec_payload.request_spec["instance_properties"]["uuid"] == UUID
    agg = decode(dump(aggregate("create", "end"))).payload
    assert isinstance(agg, LegacyAggregatePayload) and (agg.aggregate_id, agg.name) == (1, "my-aggregate")
    key = decode(dump(keypair("import", "start"))).payload
    assert isinstance(key, LegacyKeypairPayload) and key.key_name == "my-key"
    usage = decode(dump(volume_usage())).payload
    assert isinstance(usage, LegacyVolumeUsagePayload) and usage.write_bytes == 5 * 2**40


@pytest.mark.parametrize("name", ["scheduler-select_destinations-start", "keypair-create-end", "volume-usage",
                                  "aggregate-delete-start"])
def test_versioned_half_is_still_versioned_by_shape_and_by_topic(name: str) -> None:
    doc = load(name)
    for legacy in (None, False):
        n = decode(dump(doc), legacy=legacy)
        assert isinstance(n.payload, NovaObject) and n.payload.name == doc["payload"]["nova_object.name"]


def test_a_payload_that_contradicts_its_topic_is_rejected_naming_the_topic() -> None:
    with pytest.raises(Rejected) as caught:
        decode(dump(load("scheduler-select_destinations-start")), legacy=True)
    assert "carries a nova_object envelope but came on the legacy topic 'notifications'" in caught.value.reason
    with pytest.raises(Rejected) as caught:
        decode(dump(select_destinations("start")), legacy=False)
    assert "came on the versioned topic but its payload has no nova_object envelope" in caught.value.reason


def test_broken_legacy_half_is_rejected_as_legacy_naming_the_field() -> None:
    doc = keypair("create", "start")
    del doc["payload"]["key_name"]
    with pytest.raises(Rejected) as caught:
        decode(dump(doc))
    assert caught.value.reason == (
        "legacy keypair.create.start (no nova_object envelope): Object missing required field `key_name` "
        "- at `payload`")


def test_a_versioned_only_event_type_without_envelope_is_rejected_saying_so() -> None:
    doc = legacy_notification("instance.update", {"instance_id": UUID}, "compute.host1")
    with pytest.raises(Rejected) as caught:
        decode(dump(doc))
    assert caught.value.reason == (
        "payload has no nova_object envelope: instance.update is a versioned notification "
        "(Nova sends no legacy one of that type)")


def test_legacy_only_event_types_nova_sends_are_unknown_not_rejected() -> None:
    for event_type in ("servergroup.create", "aggregate.addhost.start", "compute.metrics.update"):
        with pytest.raises(UnknownEvent):
            decode(dump(legacy_notification(event_type, {"name": "x"}, "api.host1")))


@pytest.mark.parametrize(("topic", "legacy"), [
    ("notifications", True), ("notifications.info", True), ("versioned_notifications", False),
    ("versioned_notifications.error", False), ("notifications_designate.info", None), ("", None), (None, None),
])
def test_topic_or_routing_key_says_the_format(topic: str | None, legacy: bool | None) -> None:
    assert legacy_topic(topic) is legacy


# --- what captured notifications lack ---------------------------------------------------------------


@pytest.mark.parametrize("missing", [("priority",), ("message_id",), ("timestamp",),
                                     ("priority", "message_id", "timestamp")])
def test_priority_message_id_and_timestamp_may_be_absent(missing: tuple[str, ...]) -> None:
    for doc in (load("instance-update"), select_destinations("end"), load("service-update")):
        doc.update(message_id="m-1", timestamp="2026-01-01 00:00:01.000001")
        for field in missing:
            del doc[field]
        n = decode(dump(doc))
        assert n.priority == (doc.get("priority") or "INFO")
        assert n.message_id == doc.get("message_id", msgspec.UNSET)
        assert n.timestamp == doc.get("timestamp", msgspec.UNSET)
        doc["priority"] = None
        assert decode(dump(doc)).priority == "INFO"


# --- enum values Nova added in a minor version -------------------------------------------------------


def test_unknown_enum_values_are_kept_as_text_and_warned_about() -> None:
    doc = load("instance-update")
    data = doc["payload"]["nova_object.data"]
    data.update(state="hibernated", power_state="dozing", task_state="napping")
    doc["payload"]["nova_object.version"] = "2.9"  # a newer minor of the same major
    n = decode(dump(doc))
    assert (n.payload.data.state, n.payload.data.power_state, n.payload.data.task_state) == (
        "hibernated", "dozing", "napping")
    assert warnings_of(n) == [
        "unknown InstancePowerState value 'dozing' in `InstanceUpdatePayload.power_state`, kept as text",
        "unknown InstanceState value 'hibernated' in `InstanceUpdatePayload.state`, kept as text",
        "unknown InstanceTaskState value 'napping' in `InstanceUpdatePayload.task_state`, kept as text",
    ]


def test_unknown_enum_value_in_a_nested_object_is_found() -> None:
    doc = load("scheduler-select_destinations-start")
    props = doc["payload"]["nova_object.data"]["image"]["nova_object.data"]["properties"]["nova_object.data"]
    props["hw_architecture"] = "riscv64"
    n = decode(dump(doc))
    (warning,) = warnings_of(n)
    assert warning == "unknown Architecture value 'riscv64' in `ImageMetaPropsPayload.hw_architecture`, kept as text"


def test_an_unknown_major_is_still_rejected_with_its_reason() -> None:
    doc = load("instance-update")
    doc["payload"]["nova_object.version"] = "3.0"
    with pytest.raises(Rejected) as caught:
        decode(dump(doc))
    assert caught.value.reason == "unknown major version 3.0 of InstanceUpdatePayload: this reader knows 2.x"


def test_an_enum_of_the_wrong_type_is_rejected() -> None:
    doc = load("instance-update")
    doc["payload"]["nova_object.data"]["state"] = {"not": "text"}
    with pytest.raises(Rejected) as caught:
        decode(dump(doc))
    assert caught.value.reason == "Expected `str | null`, got `object` - at `payload.state`"


# --- numbers within Nova's columns -------------------------------------------------------------------


def _flavor(doc: dict[str, Any]) -> dict[str, Any]:
    flavor: dict[str, Any] = doc["payload"]["nova_object.data"]["flavor"]["nova_object.data"]
    return flavor


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("memory_mb", 2**70, "Expected `int` <= 2147483647 - at `payload.flavor.memory_mb`"),
    ("memory_mb", -(2**40), "Expected `int` >= 0 - at `payload.flavor.memory_mb`"),
    ("vcpus", -1, "Expected `int` >= 0 - at `payload.flavor.vcpus`"),
    ("vcpus", True, "Expected `int | null`, got `bool` - at `payload.flavor.vcpus`"),
    ("vcpus", 2.0, "Expected `int | null`, got `float` - at `payload.flavor.vcpus`"),
    ("root_gb", 2**31, "Expected `int` <= 2147483647 - at `payload.flavor.root_gb`"),
    ("swap", -1, "Expected `int` >= 0 - at `payload.flavor.swap`"),
])
def test_flavor_numbers_out_of_range_or_of_the_wrong_type_are_rejected(field: str, value: Any, reason: str) -> None:
    doc = load("instance-update")
    _flavor(doc)[field] = value
    with pytest.raises(Rejected) as caught:
        decode(dump(doc))
    assert caught.value.reason == reason


def test_the_bounds_themselves_are_accepted() -> None:
    doc = load("instance-update")
    _flavor(doc).update(memory_mb=2**31 - 1, vcpus=0)
    flavor = decode(dump(doc)).payload.data.flavor.data
    assert (flavor.memory_mb, flavor.vcpus) == (2**31 - 1, 0)


def test_legacy_numbers_are_range_checked_too() -> None:
    for field, value, reason in [
        ("memory_mb", 2**70, "Expected `int` <= 2147483647 - at `payload.memory_mb`"),
        ("vcpus", True, "Expected `int`, got `bool` - at `payload.vcpus`"),
        ("disk_gb", -1, "Expected `int` >= 0 - at `payload.disk_gb`"),
    ]:
        doc = legacy_instance()
        doc["payload"][field] = value
        with pytest.raises(Rejected) as caught:
            decode(dump(doc))
        assert caught.value.reason == reason


def test_volume_usage_counters_are_64_bit() -> None:
    doc = load("volume-usage")
    doc["payload"]["nova_object.data"]["write_bytes"] = 2**62
    assert decode(dump(doc)).payload.data.write_bytes == 2**62
    doc["payload"]["nova_object.data"]["write_bytes"] = 2**63
    with pytest.raises(Rejected) as caught:
        decode(dump(doc))
    assert caught.value.reason == "Expected `int` <= 9223372036854775807 - at `payload.write_bytes`"


def _bare_ints(tp: Any, where: str) -> list[str]:
    if tp is int:
        return [where]
    if typing.get_origin(tp) is typing.Annotated:
        base, *extras = typing.get_args(tp)
        bounded = any(isinstance(e, msgspec.Meta) and e.ge is not None and e.le is not None for e in extras)
        return [] if bounded and base is int else _bare_ints(base, where)
    if typing.get_origin(tp) in (typing.Union, types.UnionType, list, dict):
        return [found for arg in typing.get_args(tp) for found in _bare_ints(arg, where)]
    return []


def test_every_integer_of_the_catalog_is_bounded() -> None:
    classes = {*registered(), *(e.payload for e in events()), *(e.payload for e in SHARED_LEGACY.values())}
    unbounded = []
    for cls in classes:
        hints = typing.get_type_hints(cls, include_extras=True)
        for field in msgspec.structs.fields(cls):
            unbounded += _bare_ints(hints[field.name], f"{cls.__name__}.{field.name}")
    assert unbounded == []


def test_json_cannot_carry_nan_infinity_or_a_number_too_large_for_a_double() -> None:
    text = dump(load("instance-update")).decode()
    for token in ("NaN", "Infinity", "-Infinity", "1e400"):
        broken = text.replace('"rxtx_factor": 1.0', f'"rxtx_factor": {token}')
        assert broken != text
        with pytest.raises(Rejected) as caught:
            decode(broken)
        assert caught.value.reason.startswith(("not valid JSON", "Number out of range")), caught.value.reason
    assert json.loads(text)  # the untouched document is fine


def test_an_unknown_enum_value_does_not_hide_another_error() -> None:
    doc = load("instance-update")
    data = doc["payload"]["nova_object.data"]
    data["state"] = "hibernated"
    _flavor(doc)["memory_mb"] = 2**70
    with pytest.raises(Rejected) as caught:
        decode(dump(doc))
    assert caught.value.reason == "Expected `int` <= 2147483647 - at `payload.flavor.memory_mb`"


def test_known_enum_values_come_back_shared_and_unknown_ones_in_a_lenient_twin() -> None:
    first, second = decode(dump(load("instance-update"))), decode(dump(load("instance-update")))
    assert first.payload.data.state is second.payload.data.state  # Nova's values are not copied per notification
    doc = load("instance-update")
    doc["payload"]["nova_object.data"]["state"] = "hibernated"
    lenient = decode(dump(doc)).payload
    assert isinstance(lenient.data, type(first.payload.data)) and type(lenient.data) is not type(first.payload.data)
    assert lenient.name == "InstanceUpdatePayload" and lenient.data.state == "hibernated"
    assert json.loads(msgspec.json.encode(lenient)) == doc["payload"]  # encodes back to what came in
