"""Text formats (UUID, MAC address) checked by the envelope: on decode and on construction, each value once."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from novakit import dump, load
from novawatch.notifications import Rejected, decode
from novawatch.notifications.catalog.instance import BlockDevicePayload, IpPayload
from novawatch.objects import NovaObject, Payload, info
from novawatch.objects.fields import UUID, UUID_FORMAT, UUID_PATTERN, TextFormat

GOOD_UUID = "227cc671-f30b-4488-96fd-7d0bf13648d8"


def _swap() -> dict[str, Any]:
    return load("instance-volume_swap-start")


def _reason(document: dict[str, Any]) -> str:
    with pytest.raises(Rejected) as caught:
        decode(dump(document))
    return caught.value.reason


@pytest.mark.parametrize(
    "bad",
    [
        "227cc671-f30b-4488-96fd-7d0bf13648d",  # one digit short
        "227cc671-f30b-4488-96fd-7d0bf13648d8\n",  # a trailing newline that `$` would let through
        "227cc671f30b448896fd7d0bf13648d8",  # no dashes
        "227cc671-f30b-4488-96fd-7d0bf13648dg",  # not hex
        "",
    ],
)
def test_a_bad_uuid_is_rejected_naming_field_and_value(bad: str) -> None:
    document = _swap()
    document["payload"]["nova_object.data"]["new_volume_id"] = bad
    assert _reason(document) == f"Expected a UUID, got {bad!r} - at `payload.new_volume_id`"


def test_a_value_once_good_stays_good_and_a_bad_one_is_still_caught_after_it() -> None:
    document = _swap()
    new = document["payload"]["nova_object.data"]["new_volume_id"]
    assert decode(dump(document)).payload.data.new_volume_id == new
    assert new in UUID_FORMAT.known  # remembered: the next time it costs a set lookup
    assert decode(dump(document)).payload.data.new_volume_id == new
    document["payload"]["nova_object.data"]["old_volume_id"] = "nope"
    assert "got 'nope' - at `payload.old_volume_id`" in _reason(document)


def test_nested_mac_and_port_uuid_are_checked_where_they_are() -> None:
    document = _swap()
    ip = document["payload"]["nova_object.data"]["ip_addresses"][0]["nova_object.data"]
    ip["port_uuid"] = "port-1"
    assert _reason(document) == "Expected a UUID, got 'port-1' - at `payload.ip_addresses[0].port_uuid`"
    ip["port_uuid"] = None  # nullable: null is fine
    ip["mac"] = "fa:16:3e:4c:2c"
    assert _reason(document) == "Expected a MAC address, got 'fa:16:3e:4c:2c' - at `payload.ip_addresses[0].mac`"


def test_a_huge_bad_value_is_shown_cut_short() -> None:
    document = _swap()
    document["payload"]["nova_object.data"]["new_volume_id"] = "x" * 100_000
    reason = _reason(document)
    assert len(reason) < 200
    assert reason.startswith("Expected a UUID, got 'xxxx") and "...' - at `payload.new_volume_id`" in reason


def test_building_a_payload_with_a_bad_value_raises_naming_the_field() -> None:
    bdm = BlockDevicePayload(boot_index=None, device_name="/dev/vdb", tag=None, volume_id="vol-1")
    with pytest.raises(ValueError, match=r"Expected a UUID, got 'vol-1' \(field `volume_id`\)"):
        bdm.wrap()
    ip = IpPayload(address="10.0.0.3", device_name=None, label="private", mac="fa:16:3e:4c:2c:30", meta={},
                   port_uuid=GOOD_UUID, version=4)
    assert ip.wrap().data.port_uuid == GOOD_UUID


@given(st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper()))
def test_every_canonical_uuid_is_accepted(value: str) -> None:
    bdm = BlockDevicePayload(boot_index=0, device_name=None, tag=None, volume_id=value)
    assert bdm.wrap().data.volume_id == value


@given(st.text(max_size=40))
def test_text_that_is_not_a_uuid_is_refused(value: str) -> None:
    fmt = TextFormat("a UUID", UUID_PATTERN)
    is_uuid = len(value) == 36 and all(
        (c == "-") if i in (8, 13, 18, 23) else (c in "0123456789abcdefABCDEF") for i, c in enumerate(value))
    if is_uuid:
        fmt.check(("f",), (value,))
        assert value in fmt.known
    else:
        with pytest.raises(ValueError, match="field `f`"):
            fmt.check(("f",), (value,))
        assert value not in fmt.known


def test_the_memory_of_good_values_is_bounded_and_starts_afresh() -> None:
    fmt = TextFormat("digits", r"[0-9]+", limit=10)
    for n in range(25):
        fmt.check(("f",), (str(n),))
        assert len(fmt.known) <= 10
    assert "24" in fmt.known and None in fmt.known and msgspec.UNSET in fmt.known
    with pytest.raises(ValueError, match="Expected digits, got 'x1'"):
        fmt.check(("f",), ("x1",))


def test_each_payload_class_knows_its_checked_fields() -> None:
    (mac, uuid) = sorted(info(IpPayload).text_checks, key=lambda c: c.format.name)
    assert (mac.format.name, mac.fields) == ("a MAC address", ("mac",))
    assert (uuid.format.name, uuid.fields) == ("a UUID", ("port_uuid",))


def test_a_format_inside_a_container_is_refused_when_the_class_is_first_used() -> None:
    class Listed(Payload, kw_only=True):
        VERSION = "1.0"
        ids: list[UUID]

    with pytest.raises(TypeError, match=r"Listed.ids: a UUID inside a container would go unchecked"):
        NovaObject(name="Listed", namespace="nova", version="1.0", data=Listed(ids=[GOOD_UUID]))
