"""Version rules of the envelope, on real catalog payloads: any minor of a known major, defaults, rejections."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from novakit import dump, load
from novawatch.notifications import Rejected, decode, encode
from novawatch.notifications.catalog.flavor import FlavorPayload
from novawatch.notifications.catalog.instance import InstanceActionPayload, InstanceCreatePayload
from novawatch.objects import NovaObject, Since, info, lookup, parse_version


def _data(document: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = document["payload"]["nova_object.data"]
    return data


def _reason(document: dict[str, Any]) -> str:
    with pytest.raises(Rejected) as caught:
        decode(dump(document))
    return caught.value.reason


LATE_IN_ACTION = ["locked", "display_description", "auto_disk_config", "key_name", "block_devices", "updated_at",
                  "request_id", "action_initiator_user", "action_initiator_project", "locked_reason", "shares"]


def test_older_minor_without_later_fields_decodes_with_their_defaults() -> None:
    document = load("instance-pause-start")
    document["payload"]["nova_object.version"] = "1.0"
    for field in LATE_IN_ACTION:
        del _data(document)[field]

    payload = decode(dump(document)).payload

    assert isinstance(payload, NovaObject)
    assert payload.version == "1.9"  # left at the reader's version
    data = payload.data
    assert isinstance(data, InstanceActionPayload)
    assert data.locked is False
    assert data.auto_disk_config == "MANUAL"
    assert data.block_devices is None  # "not reported", not "no volumes"
    assert data.shares is None
    assert data.display_description is None
    assert data.request_id is None
    assert data.uuid == "178b0921-8f85-4257-88b6-2e743b5a975c"


def test_each_minor_needs_exactly_the_fields_it_had() -> None:
    since = InstanceActionPayload.SINCE
    for minor in range(10):
        document = load("instance-pause-start")
        document["payload"]["nova_object.version"] = f"1.{minor}"
        for field in LATE_IN_ACTION:
            if since[field].minor > minor:
                del _data(document)[field]
        decode(dump(document))  # accepted
        required = [f for f in LATE_IN_ACTION if since[f].minor <= minor]
        for field in required:
            broken = json.loads(dump(document))
            del _data(broken)[field]
            assert repr(field) in _reason(broken), (minor, field)


def test_field_missing_at_the_newest_minor_is_rejected_naming_it() -> None:
    document = load("instance-pause-start")
    del _data(document)["shares"]
    reason = _reason(document)
    assert "'shares'" in reason
    assert "InstanceActionPayload 1.9" in reason


def test_field_of_first_version_missing_is_rejected_naming_it() -> None:
    document = load("instance-pause-start")
    document["payload"]["nova_object.version"] = "1.0"
    del _data(document)["uuid"]
    assert "`uuid`" in _reason(document)


def test_newer_minor_than_the_reader_knows_is_accepted() -> None:
    document = load("instance-pause-start")
    document["payload"]["nova_object.version"] = "1.42"
    _data(document)["a_field_from_the_future"] = {"x": 1}
    payload = decode(dump(document)).payload
    assert payload.version == "1.9"


def test_unknown_major_is_rejected_with_a_reason() -> None:
    document = load("instance-pause-start")
    document["payload"]["nova_object.version"] = "2.0"
    reason = _reason(document)
    assert "unknown major version 2.0" in reason
    assert "InstanceActionPayload" in reason
    assert "1.x" in reason


@pytest.mark.parametrize("version", ["1", "1.", "x.1", "", "1.9.1"])
def test_malformed_version_is_rejected(version: str) -> None:
    document = load("instance-pause-start")
    document["payload"]["nova_object.version"] = version
    assert "version" in _reason(document)


def test_unknown_extra_fields_are_ignored_at_every_level() -> None:
    document = load("instance-pause-start")
    _data(document)["brand_new"] = [1, 2, 3]
    _data(document)["flavor"]["nova_object.data"]["also_new"] = "x"
    _data(document)["ip_addresses"][0]["nova_object.data"]["new_too"] = None
    document["payload"]["extra_envelope_key"] = 1

    notification = decode(dump(document))

    assert json.loads(encode(notification)) == load("instance-pause-start")


def test_nested_object_at_an_older_minor_takes_defaults() -> None:
    document = load("instance-pause-start")
    flavor = _data(document)["flavor"]
    flavor["nova_object.version"] = "1.0"
    for field in ("name", "swap", "rxtx_factor", "vcpu_weight", "disabled", "is_public", "extra_specs", "projects",
                  "description"):
        del flavor["nova_object.data"][field]

    data = decode(dump(document)).payload.data

    assert data.flavor.version == "1.4"
    assert data.flavor.data.memory_mb == 512
    assert data.flavor.data.name == ""
    assert data.flavor.data.is_public is True
    assert data.flavor.data.extra_specs is None
    assert data.flavor.data.description is None


def test_nested_object_missing_a_field_of_its_version_is_rejected_naming_it_and_where() -> None:
    document = load("instance-pause-start")
    del _data(document)["flavor"]["nova_object.data"]["description"]
    reason = _reason(document)
    assert "'description'" in reason
    assert "FlavorPayload 1.4" in reason
    assert "payload.flavor" in reason


def test_nested_object_of_unknown_major_is_rejected() -> None:
    document = load("instance-pause-start")
    _data(document)["ip_addresses"][0]["nova_object.version"] = "7.3"
    reason = _reason(document)
    assert "unknown major version 7.3 of IpPayload" in reason
    assert "ip_addresses[0]" in reason


def test_nested_object_of_the_wrong_class_is_rejected() -> None:
    document = load("instance-pause-start")
    _data(document)["flavor"]["nova_object.name"] = "KeypairPayload"
    assert "expected a FlavorPayload, got a KeypairPayload" in _reason(document)


def test_since_defaults_from_factories_are_fresh_objects() -> None:
    decoder = msgspec.json.Decoder(NovaObject[InstanceCreatePayload])
    document = load("instance-create-start")["payload"]
    document["nova_object.version"] = "1.2"
    for field, since in InstanceCreatePayload.SINCE.items():
        if since.minor > 2:
            del document["nova_object.data"][field]
    first = decoder.decode(dump(document)).data
    second = decoder.decode(dump(document)).data
    assert first.tags == [] and first.keypairs == []
    assert first.tags is not second.tags


def test_payload_info_validates_the_class() -> None:
    class Broken(FlavorPayload, kw_only=True):
        VERSION = "1.4"
        SINCE = {"memory_mb": Since(1)}

    with pytest.raises(TypeError, match=r"default must be msgspec\.UNSET"):
        info(Broken)


def test_writers_emit_the_newest_version() -> None:
    for name in ("FlavorPayload", "InstanceActionPayload", "InstanceUpdatePayload", "ImageMetaPropsPayload"):
        cls = lookup(name)
        assert info(cls).version == cls.VERSION
    assert parse_version(lookup("InstanceUpdatePayload").VERSION) == (2, 1)
    assert lookup("ImageMetaPropsPayload").VERSION == "1.20"  # as Nova 34 sends it (its older samples say 1.19)
