"""Property tests: generated payloads of every catalog entry survive encode -> decode unchanged.

The strategies are derived from the payload classes' own field types, so a new catalog entry is covered
without touching this file.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import types
import typing
from functools import cache
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from novawatch.notifications import decode, encode, encode_envelope
from novawatch.notifications.catalog import EventSpec, events
from novawatch.notifications.message import Notification
from novawatch.objects import NovaObject, Payload
from novawatch.objects.fields import EnumFormat, check_ip

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


def _annotated(base: Any, extras: list[Any]) -> st.SearchStrategy[Any]:
    for extra in extras:
        if isinstance(extra, EnumFormat):
            return st.sampled_from(extra.values)
    metas = [e for e in extras if isinstance(e, msgspec.Meta)]
    for meta in metas:
        if base is int and (meta.ge is not None or meta.le is not None):
            return st.integers(meta.ge, meta.le)
        if meta.description == "UUID":
            return st.uuids().map(str)
        if meta.description == "IP address":
            return st.ip_addresses().map(str)
        if meta.description == "MAC address":
            return st.lists(st.integers(0, 255), min_size=6, max_size=6).map(
                lambda octets: ":".join(f"{o:02x}" for o in octets))
        if meta.pattern is not None:
            return st.from_regex(re.compile(meta.pattern), fullmatch=True)
    return strategy_for(base, allow_unset=False)


def strategy_for(tp: Any, *, allow_unset: bool) -> st.SearchStrategy[Any]:
    """A strategy for values of a msgspec field type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not msgspec.UnsetType]
        choices = [strategy_for(a, allow_unset=False) for a in options]
        if allow_unset and msgspec.UnsetType in typing.get_args(tp):
            choices.append(st.just(msgspec.UNSET))
        return st.one_of(choices)
    if origin is typing.Annotated:
        base, *extras = typing.get_args(tp)
        return _annotated(base, extras)
    if origin is typing.Literal:
        return st.sampled_from(typing.get_args(tp))
    if origin is list:
        return st.lists(strategy_for(typing.get_args(tp)[0], allow_unset=False), max_size=2)
    if origin is dict:
        key, value = typing.get_args(tp)
        return st.dictionaries(strategy_for(key, allow_unset=False), strategy_for(value, allow_unset=False),
                               max_size=2)
    if origin is not None and isinstance(origin, type) and issubclass(origin, NovaObject):
        return payloads(typing.get_args(tp)[0]).map(lambda p: p.wrap())
    if tp is type(None):
        return st.none()
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(-(2**63), 2**63 - 1)
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if tp is str:
        return st.text(max_size=10)
    if tp is dt.datetime:
        return st.datetimes(min_value=dt.datetime(1970, 1, 1), timezones=st.just(dt.UTC)).map(
            lambda d: d.replace(microsecond=0))
    if tp is Any:
        return _JSON
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return payloads(tp)
    raise TypeError(f"no strategy for {tp!r}")


@cache
def payloads(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    """Instances of a payload class, every field filled as its version requires."""
    hints = typing.get_type_hints(cls, include_extras=True)
    since = cls.SINCE if issubclass(cls, Payload) else {}
    fields = {}
    for field in msgspec.structs.fields(cls):
        # A field of SINCE is required at the class's own version; other UNSET-default fields are optional.
        fields[field.name] = strategy_for(hints[field.name], allow_unset=field.name not in since)
    return st.fixed_dictionaries(fields).map(lambda values: cls(**values))


def notifications(entry: EventSpec) -> st.SearchStrategy[Notification[Any]]:
    body = payloads(entry.payload)
    if entry.versioned:
        body = body.map(lambda p: p.wrap())
    return st.builds(
        Notification,
        event_type=st.just(entry.event_type),
        payload=body,
        priority=st.just(entry.priority),
        publisher_id=st.sampled_from([f"{entry.source}:host-1", f"{entry.source}.host-1"]),
        message_id=st.uuids().map(str) | st.just(msgspec.UNSET),
        timestamp=st.just("2012-10-29 13:42:11.123456") | st.just(msgspec.UNSET),
    )


ENTRIES = events()


def test_every_payload_class_has_a_strategy() -> None:
    assert len(ENTRIES) >= 215
    for entry in ENTRIES:
        assert payloads(entry.payload) is not None


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.event_type for e in ENTRIES])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_generated_notification_round_trips(entry: EventSpec, data: st.DataObject) -> None:
    notification = data.draw(notifications(entry))
    body = encode(notification)

    decoded = decode(body)

    assert decoded == notification
    assert encode(decoded) == body
    assert decode(encode_envelope(notification)) == notification


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=45) | st.ip_addresses().map(str))
def test_check_ip_agrees_with_ipaddress(text: str) -> None:
    try:
        ipaddress.ip_address(text)
        valid = True
    except ValueError:
        valid = False
    if valid:
        check_ip(text)
    else:
        with pytest.raises(ValueError, match="is not an IP address"):
            check_ip(text)

