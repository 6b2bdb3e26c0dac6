"""``Payload.populate``: SCHEMA sources, explicit values, date-time normalisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import msgspec
import pytest

from novawatch.notifications.catalog.image import ImageMetaPropsPayload
from novawatch.notifications.catalog.request_spec import SchedulerRetriesPayload
from novawatch.notifications.catalog.service import ServiceStatusPayload
from novawatch.notifications.catalog.volume import VolumeUsagePayload


def service(**changes: object) -> SimpleNamespace:
    values: dict[str, object] = {
        "host": "host1", "binary": "nova-compute", "topic": "compute", "report_count": 1, "disabled": False,
        "disabled_reason": None, "availability_zone": None, "last_seen_up": None, "forced_down": False,
        "version": 23, "uuid": "fa69c544-906b-4a6a-a9c6-c1f7a8078c73",
    }
    values.update(changes)
    return SimpleNamespace(**values)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (datetime(2012, 10, 29, 13, 42, 5, tzinfo=UTC), datetime(2012, 10, 29, 13, 42, 5, tzinfo=UTC)),
        (datetime(2012, 10, 29, 13, 42, 5, 999999, tzinfo=UTC), datetime(2012, 10, 29, 13, 42, 5, tzinfo=UTC)),
        (datetime(2012, 10, 29, 13, 42, 5), datetime(2012, 10, 29, 13, 42, 5, tzinfo=UTC)),
        (datetime(2012, 10, 29, 15, 42, 5, tzinfo=timezone(timedelta(hours=2))),
         datetime(2012, 10, 29, 13, 42, 5, tzinfo=UTC)),
    ],
)
def test_datetimes_are_normalised_to_what_nova_sends(given: datetime, expected: datetime) -> None:
    payload = ServiceStatusPayload.populate({"service": service(last_seen_up=given)})
    assert payload.last_seen_up == expected
    assert msgspec.json.encode(payload).count(b'"2012-10-29T13:42:05Z"') == 1


def test_schema_reads_every_attribute_of_the_source() -> None:
    usage = SimpleNamespace(
        volume_id="a07f71dc-8151-4e7d-a0cc-cd24a3f11113", project_id="p", user_id="u", availability_zone="nova",
        instance_uuid=None, last_refreshed=None, reads=1, read_bytes=2, writes=3, write_bytes=4,
    )
    payload = VolumeUsagePayload.populate({"vol_usage": usage})
    assert (payload.reads, payload.read_bytes, payload.writes, payload.write_bytes) == (1, 2, 3, 4)
    assert payload.availability_zone == "nova"


def test_single_attribute_schema_and_explicit_values() -> None:
    payload = SchedulerRetriesPayload.populate({"retry": SimpleNamespace(num_attempts=2)}, hosts=["h1", "h2"])
    assert payload == SchedulerRetriesPayload(num_attempts=2, hosts=["h1", "h2"])


def test_missing_source_or_attribute_is_an_error() -> None:
    with pytest.raises(KeyError):
        ServiceStatusPayload.populate({})
    broken = service()
    del broken.version
    with pytest.raises(AttributeError):
        ServiceStatusPayload.populate({"service": broken})


def test_image_properties_leave_out_what_the_image_does_not_set() -> None:
    props = SimpleNamespace(hw_architecture="x86_64", hw_disk_bus=None, os_distro="ubuntu")
    payload = ImageMetaPropsPayload.populate({"image_meta_props": props})
    assert msgspec.json.decode(msgspec.json.encode(payload)) == {"hw_architecture": "x86_64", "os_distro": "ubuntu"}
