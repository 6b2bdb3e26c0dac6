"""Bad input is rejected with a reason that names the field or the problem; the decoder raises nothing else."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from novakit import dump, load, raw, sample_names
from novawatch.notifications import DEFAULT_MAX_BYTES, Rejected, UnknownEvent, decode, encode, encode_envelope
from novawatch.notifications.message import Notification


def _data(document: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = document["payload"]["nova_object.data"]
    return data


def reason_of(data: bytes | str) -> str:
    with pytest.raises(Rejected) as caught:
        decode(data)
    return caught.value.reason


def swap() -> dict[str, Any]:
    return load("instance-volume_swap-start")


# --- wrong types, missing fields, unknown payloads ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["flavor", "nova_object.data", "memory_mb"], "512", "`payload.flavor.memory_mb`"),
        (["locked"], "no", "`payload.locked`"),
        (["state"], 3, "Expected `str | null`, got `int` - at `payload.state`"),
        (["flavor", "nova_object.data", "vcpus"], True, "Expected `int | null`, got `bool` - at `payload.flavor.vcpus`"),
        (["created_at"], "yesterday", "`payload.created_at`"),
        (["old_volume_id"], "not-a-uuid", "Expected a UUID, got 'not-a-uuid' - at `payload.old_volume_id`"),
        (["metadata"], {"a": 1}, "`payload.metadata[...]`"),
        (["ip_addresses"], {}, "`payload.ip_addresses`"),
        (["block_devices", 0, "nova_object.data", "boot_index"], 1.5, "`payload.block_devices[0].boot_index`"),
        (["ip_addresses", 0, "nova_object.data", "mac"], "zz:16:3e:4c:2c:30", "`payload.ip_addresses[0].mac`"),
    ],
)
def test_wrong_type_is_rejected_naming_the_field(path: list[Any], value: Any, expected: str) -> None:
    document = swap()
    target: Any = _data(document)
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    reason = reason_of(dump(document))
    assert expected in reason


def test_bad_ip_address_is_rejected_naming_the_value_and_where() -> None:
    document = swap()
    _data(document)["ip_addresses"][0]["nova_object.data"]["address"] = "999.1.1.1"
    reason = reason_of(dump(document))
    assert "'999.1.1.1' is not an IP address" in reason
    assert "payload.ip_addresses[0]" in reason


@pytest.mark.parametrize("field", ["uuid", "flavor", "ip_addresses", "metadata", "fault", "new_volume_id"])
def test_missing_required_field_is_rejected_naming_it(field: str) -> None:
    document = swap()
    del _data(document)[field]
    assert f"`{field}`" in reason_of(dump(document))


def test_unknown_payload_name_is_rejected() -> None:
    document = swap()
    document["payload"]["nova_object.name"] = "NoSuchPayload"
    assert reason_of(dump(document)) == "unknown payload nova.NoSuchPayload"


def test_payload_of_another_class_is_rejected() -> None:
    document = load("service-update")
    document["event_type"] = "instance.update"
    assert reason_of(dump(document)) == "instance.update carries InstanceUpdatePayload, not ServiceStatusPayload"


def test_unknown_major_is_rejected() -> None:
    document = load("service-update")
    document["payload"]["nova_object.version"] = "9.1"
    assert "unknown major version 9.1 of ServiceStatusPayload" in reason_of(dump(document))


def test_payload_that_is_not_an_object_is_rejected() -> None:
    document = load("service-update")
    document["payload"] = "service"
    assert reason_of(dump(document)) == "Expected `object`, got `str` - at `payload`"


@pytest.mark.parametrize("field", ["event_type", "publisher_id", "payload"])
def test_missing_envelope_field_is_rejected_naming_it(field: str) -> None:
    document = load("service-update")
    del document[field]
    assert f"'{field}'" in reason_of(dump(document))


def test_unknown_event_type_is_reported_as_unknown_not_rejected() -> None:
    document = load("service-update")
    document["event_type"] = "service.explode"
    with pytest.raises(UnknownEvent) as caught:
        decode(dump(document))
    assert caught.value.event_type == "service.explode"


def test_envelope_field_of_the_wrong_type_is_rejected_naming_it() -> None:
    assert reason_of(b'{"event_type": 5}') == "Expected `str`, got `int` - at `event_type`"
    assert reason_of(b"[1, 2]") == "Expected `object`, got `array`"


# --- malformed documents --------------------------------------------------------------------------


def test_truncated_json_is_rejected() -> None:
    assert reason_of(raw("instance-update")[:700]).startswith("not valid JSON: Input data was truncated")


@pytest.mark.parametrize("data", [b"", b"hello", b"\xff\xfe", b"{'single': 'quotes'}", b"{} trailing", "\x00"])
def test_non_json_is_rejected(data: bytes | str) -> None:
    assert reason_of(data).startswith("not valid JSON")


def test_deeply_nested_lists_in_a_dict_field_are_rejected() -> None:
    depth = 10_000
    text = dump(swap()).decode().replace('"metadata": {}', '"metadata": {"a": ' + "[" * depth + "]" * depth + "}")
    reason = reason_of(text)
    assert "nested too deeply" in reason or "`payload.metadata.a`" in reason


def test_deeply_nested_value_in_a_field_of_any_json_is_rejected() -> None:
    document = legacy_document()
    deep = "[" * 50_000 + "]" * 50_000
    text = dump(document).decode().replace('"image_meta": {}', '"image_meta": {"a": ' + deep + "}")
    assert "nested too deeply" in reason_of(text)


def test_oversized_document_is_rejected_before_parsing() -> None:
    document = load("service-update")
    _data(document)["disabled_reason"] = "x" * DEFAULT_MAX_BYTES
    reason = reason_of(dump(document))
    assert "over the limit of" in reason
    assert str(DEFAULT_MAX_BYTES) in reason
    assert "over the limit of 500" in reason_of_limit(raw("service-update"), 500)


def reason_of_limit(data: bytes, limit: int) -> str:
    with pytest.raises(Rejected) as caught:
        decode(data, max_bytes=limit)
    return caught.value.reason


def test_oslo_envelope_is_accepted_and_broken_inner_json_is_rejected() -> None:
    notification = decode(raw("service-update"))
    assert decode(encode_envelope(notification)) == notification
    inner = encode(notification).decode()
    broken = json.dumps({"oslo.version": "2.0", "oslo.message": inner[:-5]})
    assert reason_of(broken).startswith("not valid JSON")
    not_a_notification = json.dumps({"oslo.version": "2.0", "oslo.message": "[]"})
    assert "Expected `object`, got `array`" in reason_of(not_a_notification)


def test_message_id_and_timestamp_are_optional_and_kept() -> None:
    document = load("service-update")
    assert decode(dump(document)).message_id is not None
    document["message_id"] = "m-1"
    document["timestamp"] = "2012-10-29 13:42:11.123456"
    notification = decode(dump(document))
    assert notification.message_id == "m-1"
    assert notification.time is not None and notification.time.microsecond == 123456
    document["message_id"] = None
    assert isinstance(decode(dump(document)), Notification)


def legacy_document() -> dict[str, Any]:
    payload = {
        "tenant_id": "p", "user_id": "u", "instance_id": "178b0921-8f85-4257-88b6-2e743b5a975c",
        "display_name": "vm", "reservation_id": "r-1", "hostname": "vm", "instance_type": "m1.small",
        "instance_type_id": 2, "instance_flavor_id": "2", "architecture": None, "memory_mb": 512, "disk_gb": 1,
        "vcpus": 1, "root_gb": 1, "ephemeral_gb": 0, "host": "compute", "node": "compute",
        "availability_zone": "nova", "cell_name": "", "created_at": "2012-10-29 13:42:11+00:00",
        "terminated_at": "", "deleted_at": "", "launched_at": "2012-10-29T13:42:11.000000",
        "image_ref_url": None, "os_type": None, "kernel_id": "", "ramdisk_id": "", "state": "active",
        "state_description": "", "progress": "", "access_ip_v4": None, "access_ip_v6": None,
        "image_meta": {}, "metadata": {},
    }
    return {"event_type": "compute.instance.pause.start", "payload": payload, "priority": "INFO",
            "publisher_id": "compute.compute"}


# --- the decoder raises only Rejected / UnknownEvent -------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)


def _decode_only_raises_ours(data: bytes | str) -> None:
    with contextlib.suppress(Rejected, UnknownEvent):
        decode(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise_anything_else(data: bytes) -> None:
    _decode_only_raises_ours(data)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_arbitrary_json_never_raises_anything_else(document: Any) -> None:
    _decode_only_raises_ours(json.dumps(document))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sample_names()), st.data())
def test_mutated_samples_never_raise_anything_else(name: str, data: st.DataObject) -> None:
    document = load(name)
    # Replace one value somewhere in the document with arbitrary JSON.
    containers: list[Any] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            if value:
                containers.append(value)
            for item in value.values():
                collect(item)
        elif isinstance(value, list) and value:
            containers.append(value)
            for item in value:
                collect(item)

    collect(document)
    target = data.draw(st.sampled_from(containers))
    key = data.draw(st.sampled_from(list(target) if isinstance(target, dict) else list(range(len(target)))))
    if data.draw(st.booleans()) and isinstance(target, dict):
        del target[key]
    else:
        target[key] = data.draw(_json)
    envelope = data.draw(st.booleans())
    text = json.dumps(document)
    _decode_only_raises_ours(json.dumps({"oslo.version": "2.0", "oslo.message": text}) if envelope else text)


@pytest.mark.parametrize("name", ["instance-update", "service-update", "instance-create-error"])
def test_key_order_and_envelope_do_not_change_the_result(name: str) -> None:
    document = load(name)
    event_type_last = {key: document[key] for key in ("payload", "priority", "publisher_id", "event_type")}
    plain = decode(dump(document))
    assert decode(dump(event_type_last)) == plain
    assert decode(encode_envelope(plain)) == plain
