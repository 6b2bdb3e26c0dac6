"""Every one of Nova's 140 published samples against the catalog: decode, re-encode, populate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from novakit import dump, load, nested_objects, raw, sample_names
from novawatch.notifications import Notification, decode, encode
from novawatch.notifications.catalog import events, spec
from novawatch.notifications.catalog.flavor import FlavorPayload
from novawatch.notifications.catalog.instance import InstancePayload, InstanceUpdatePayload
from novawatch.objects import NovaObject, Payload, lookup

SAMPLES = sample_names()


def test_there_are_140_samples() -> None:
    assert len(SAMPLES) == 140


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_decodes_to_typed_objects_and_re_encodes_identically(name: str) -> None:
    sample = load(name)
    notification = decode(raw(name))

    assert isinstance(notification, Notification)
    assert notification.event_type == sample["event_type"]
    assert notification.priority == sample["priority"]
    assert notification.publisher_id == sample["publisher_id"]
    # Every envelope of the sample became an object of the class registered under its name.
    decoded_names = sorted(_walk(notification.payload))
    assert decoded_names == sorted(env["nova_object.name"] for env in nested_objects(sample["payload"]))
    assert json.loads(encode(notification)) == sample


def _walk(value: Any) -> list[str]:
    names: list[str] = []
    if isinstance(value, NovaObject):
        cls = lookup(value.name, value.version)
        assert type(value.data) is cls
        assert value.version == cls.VERSION
        names.append(value.name)
        names.extend(_walk(value.data))
    elif isinstance(value, msgspec.Struct):
        for field in msgspec.structs.fields(value):
            names.extend(_walk(getattr(value, field.name)))
    elif isinstance(value, list):
        for item in value:
            names.extend(_walk(item))
    return names


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_event_is_in_the_catalog_with_its_priority_and_payload(name: str) -> None:
    sample = load(name)
    entry = spec(sample["event_type"])
    assert entry is not None
    assert entry.versioned
    assert entry.priority == sample["priority"]
    assert entry.payload.__name__ == sample["payload"]["nova_object.name"]
    assert sample["payload"]["nova_object.version"] == entry.payload.VERSION  # type: ignore[attr-defined]


def test_error_events_have_error_priority_and_the_others_info() -> None:
    for entry in events():
        # The conductor's legacy compute_task.<task> (the twin of compute_task.<task>.error) has no phase.
        expected = "ERROR" if entry.event_type.endswith(".error") or entry.event_type in {
            "compute.exception", "libvirt.connect.error"} or (
            entry.event_type.startswith("compute_task.") and not entry.versioned) else "INFO"
        assert entry.priority == expected, entry.event_type


def test_volume_swap_and_events_nova_sends_without_a_sample_are_in_the_catalog() -> None:
    for event_type, payload in [
        ("instance.volume_swap.start", "InstanceActionVolumeSwapPayload"),
        ("instance.volume_swap.end", "InstanceActionVolumeSwapPayload"),
        ("instance.volume_swap.error", "InstanceActionVolumeSwapPayload"),
        ("instance.shutdown.start", "InstanceActionPayload"),
        ("instance.trigger_crash_dump.end", "InstanceActionPayload"),
        ("instance.soft_delete.start", "InstanceActionPayload"),
        ("instance.restore.end", "InstanceActionPayload"),
        ("instance.live_migration_rollback_dest.start", "InstanceActionPayload"),
        ("instance.rebuild_scheduled", "InstanceActionRebuildPayload"),
        ("instance.share_detach.error", "InstanceActionSharePayload"),
        ("keypair.import.start", "KeypairPayload"),
    ]:
        entry = spec(event_type)
        assert entry is not None, event_type
        assert entry.payload.__name__ == payload


# --- populating payloads through SCHEMA -----------------------------------------------------------


def _cases() -> list[tuple[str, int]]:
    cases = []
    for name in SAMPLES:
        for index, env in enumerate(nested_objects(load(name)["payload"])):
            if lookup(env["nova_object.name"], env["nova_object.version"]).SCHEMA:
                cases.append((name, index))
    return cases


@pytest.mark.parametrize(("name", "index"), _cases())
def test_populating_from_source_objects_gives_the_sample_payload(name: str, index: int) -> None:
    envelope = nested_objects(load(name)["payload"])[index]
    cls = lookup(envelope["nova_object.name"], envelope["nova_object.version"])
    data = msgspec.json.decode(dump(envelope), type=NovaObject[cls]).data  # type: ignore[valid-type]

    sources: dict[str, SimpleNamespace] = {}
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        value = getattr(data, field.name)
        if value is msgspec.UNSET:
            continue
        if field.name in cls.SCHEMA:
            source, attribute = cls.SCHEMA[field.name]
            setattr(sources.setdefault(source, SimpleNamespace()), attribute, value)
        else:
            values[field.name] = value
    for source, _attribute in cls.SCHEMA.values():
        sources.setdefault(source, SimpleNamespace())

    payload = cls.populate(sources, **values)

    assert json.loads(msgspec.json.encode(payload.wrap())) == envelope


def test_instance_schema_reads_novas_instance_attributes() -> None:
    """The SCHEMA names Nova's Instance attributes (project_id, hostname, image_ref, vm_state ...)."""
    sample = load("instance-update")
    data = sample["payload"]["nova_object.data"]
    at = datetime(2012, 10, 29, 13, 42, 11, 654321)  # naive and with microseconds: populate normalises it
    instance = SimpleNamespace(
        uuid=data["uuid"], user_id="fake", project_id="6f70656e737461636b20342065766572",
        reservation_id="r-npxv0e40", display_name="some-server", display_description="some-server",
        hostname="some-server", host="compute", node="fake-mini", os_type=None, architecture="x86_64",
        availability_zone="nova", image_ref="155d900f-4e14-4e4c-a73d-069cbf4541e6", key_name="my-key",
        kernel_id="", ramdisk_id="", created_at=at, launched_at=None, terminated_at=None, deleted_at=None,
        updated_at=None, vm_state="active", power_state="pending", task_state="scheduling", progress=0,
        metadata={}, locked=False, auto_disk_config="MANUAL",
    )
    flavor = SimpleNamespace(
        flavorid="a22d5517-147c-4147-a0d1-e698df5cd4e3", memory_mb=512, vcpus=1, root_gb=1, ephemeral_gb=0,
        name="test_flavor", swap=0, rxtx_factor=1.0, vcpu_weight=0, disabled=False, is_public=True,
        extra_specs={"hw:watchdog_action": "disabled"}, projects=None, description=None,
    )
    nested = {key: data[key] for key in ("state_update", "audit_period")}
    decoded_nested = msgspec.json.decode(dump(data), type=InstanceUpdatePayload)
    payload = InstanceUpdatePayload.populate(
        {"instance": instance},
        flavor=FlavorPayload.populate({"flavor": flavor}).wrap(),
        ip_addresses=[], block_devices=[], shares=[], tags=[], old_display_name=None,
        request_id="req-5b6c791d-5709-4f36-8fbe-c3e02869e35d", action_initiator_user="fake",
        action_initiator_project="6f70656e737461636b20342065766572", locked_reason=None,
        state_update=decoded_nested.state_update, audit_period=decoded_nested.audit_period,
    )
    assert payload.created_at == datetime(2012, 10, 29, 13, 42, 11, tzinfo=UTC)
    encoded = json.loads(msgspec.json.encode(payload.wrap()))
    assert {k: v for k, v in encoded["nova_object.data"].items() if k not in nested} == {
        k: v for k, v in data.items() if k not in nested
    }
    assert encoded == sample["payload"]


def test_every_concrete_instance_payload_names_all_fields_added_after_its_first_version() -> None:
    """A field optional in InstancePayload is either required in a subclass or listed in its SINCE."""
    optional = {f.name for f in msgspec.structs.fields(InstancePayload) if f.default is msgspec.UNSET}
    for entry in events():
        cls = entry.payload
        if not (isinstance(cls, type) and issubclass(cls, InstancePayload)):
            continue
        fields = {f.name: f for f in msgspec.structs.fields(cls)}
        for name in optional:
            assert fields[name].required or name in cls.SINCE, f"{cls.__name__}.{name}"


def test_since_minors_follow_novas_version_history() -> None:
    """Spot checks against the "Version 1.x: added ..." comments of Nova 34."""
    expectations: dict[str, dict[str, int]] = {
        "InstanceActionPayload": {"locked": 1, "auto_disk_config": 2, "key_name": 3, "block_devices": 4,
                                  "updated_at": 5, "request_id": 6, "action_initiator_user": 7,
                                  "locked_reason": 8, "shares": 9},
        "InstanceActionVolumePayload": {"key_name": 1, "block_devices": 2, "updated_at": 3, "request_id": 4,
                                        "action_initiator_project": 5, "locked_reason": 6, "shares": 7},
        "InstanceCreatePayload": {"keypairs": 3, "key_name": 4, "block_devices": 5, "tags": 6, "updated_at": 7,
                                  "request_id": 8, "trusted_image_certificates": 9, "action_initiator_user": 10,
                                  "instance_name": 11, "locked_reason": 12, "shares": 13},
        "InstanceActionResizePrepPayload": {"request_id": 1, "action_initiator_user": 2, "locked_reason": 3,
                                            "shares": 4},
        "InstanceActionRebuildPayload": {"action_initiator_user": 8, "locked_reason": 9, "shares": 10},
        "InstanceActionSnapshotPayload": {"request_id": 7, "action_initiator_user": 8, "locked_reason": 9,
                                          "shares": 10},
        "InstanceUpdatePayload": {"shares": 1},
        "InstanceExistsPayload": {"shares": 1},
        "FlavorPayload": {"name": 1, "is_public": 1, "extra_specs": 2, "projects": 2, "description": 4},
        "ServiceStatusPayload": {"uuid": 1},
        "ExceptionPayload": {"traceback": 1},
        "RequestSpecPayload": {"security_groups": 1, "retry": 1, "scheduler_hints": 1},
        "ServerGroupPayload": {"policy": 1, "rules": 1},
        "InstanceNUMACellPayload": {"pcpuset": 1},
    }
    for name, fields in expectations.items():
        cls: type[Payload] = lookup(name)
        for field, minor in fields.items():
            assert cls.SINCE[field].minor == minor, f"{name}.{field}"
    assert lookup("InstanceActionSharePayload").SINCE == {}
