"""The model's decoder (issue 15): it checks every field the model uses exactly as ``decode`` does, skips the
others, and leaves the model exactly as the catalog's full decoder would."""

from __future__ import annotations

import json
from typing import Any

import pytest
from modelkit import UUIDS, instance

from novakit import load, sample_names
from novawatch.model import Consumer, from_snapshot, to_snapshot
from novawatch.model.decoder import MODEL_READER, USED
from novawatch.model.handlers import HANDLERS
from novawatch.model.outcome import APPLIED, REJECTED
from novawatch.notifications import Rejected, decode
from novawatch.notifications.catalog import TABLE
from novawatch.notifications.codec import Reader
from novawatch.simulate import Config
from novawatch.snapshot import dumps
from simkit import simulate_collected


def _reason(data: bytes, reader: Any = None) -> str:
    with pytest.raises(Rejected) as caught:
        (reader or MODEL_READER).decode(data) if reader is not None else decode(data)
    return caught.value.reason


def _doc(**data: Any) -> bytes:
    doc = json.loads(instance("instance.update", UUIDS[0], when=1, mid="m"))
    doc["payload"]["nova_object.data"].update(data)
    return json.dumps(doc).encode()


@pytest.mark.parametrize("notification_format", ["versioned", "unversioned"])
def test_the_model_ends_as_with_the_full_decoder(notification_format: str) -> None:
    initial, bodies, _truth = simulate_collected(Config(hosts=3, instances=8, actions=80, seed=3, failure_rate=0.1,
                                                        notification_format=notification_format))
    samples = tuple(json.dumps(load(name)).encode() for name in sample_names())
    results = []
    for reader in (MODEL_READER, Reader()):
        consumer = Consumer(from_snapshot(initial), reader=reader)
        stats = consumer.process_all(bodies + samples)
        results.append((dumps(to_snapshot(consumer.cluster)), stats))
    (projected, by_model), (full, by_catalog) = results
    assert projected == full
    assert by_model == by_catalog and by_model.rejected == 0


def test_a_field_the_model_uses_is_checked_as_decode_checks_it() -> None:
    for bad in ({"host": 5}, {"locked": "yes"}, {"uuid": "not-a-uuid"}, {"state": 7}, {"flavor": []},
                {"block_devices": [{"nova_object.data": {"volume_id": 1}}]}):
        data = _doc(**bad)
        assert _reason(data, MODEL_READER) == _reason(data), bad
        assert Consumer().process(data) == REJECTED


def test_a_field_the_model_does_not_use_is_not_read() -> None:
    data = _doc(architecture=5, kernel_id=["x"])
    assert "architecture" in _reason(data)
    consumer = Consumer()
    assert consumer.process(data) == APPLIED
    assert consumer.cluster.store.instances[UUIDS[0]].host == "compute"


def test_the_envelope_is_checked_as_decode_checks_it() -> None:
    doc = json.loads(instance("instance.update", UUIDS[0], when=1))
    for name, version in (("InstanceUpdatePayload", "9.0"), ("InstanceActionPayload", "2.0"),
                          ("InstanceUpdatePayload", "two")):
        doc["payload"]["nova_object.name"], doc["payload"]["nova_object.version"] = name, version
        data = json.dumps(doc).encode()
        assert _reason(data, MODEL_READER) == _reason(data), (name, version)


def test_an_unknown_enum_value_is_kept_as_text_as_decode_keeps_it() -> None:
    data = _doc(state="hibernating")
    consumer = Consumer()
    assert consumer.process(data) == APPLIED
    assert consumer.cluster.store.instances[UUIDS[0]].state == "hibernating"
    assert decode(data).payload.data.state == "hibernating"


def test_events_the_model_does_not_handle_are_decoded_whole() -> None:
    for event_type, entry in TABLE.items():
        projected = USED.of(entry.payload)
        if event_type in HANDLERS:
            assert projected is not entry.payload and set(projected.__struct_fields__) < set(
                entry.payload.__struct_fields__), event_type
        else:
            assert MODEL_READER._payload_of is not None and MODEL_READER._payload_of(entry) is entry.payload


def test_a_projection_names_only_fields_that_exist() -> None:
    from novawatch.notifications.catalog.flavor import FlavorPayload
    from novawatch.objects.projection import Projection

    with pytest.raises(TypeError, match="no field ram"):
        Projection({FlavorPayload: ("ram",)}).of(FlavorPayload)
