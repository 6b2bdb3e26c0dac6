"""The event table: which payload each event type carries, at which priority, from which service."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import msgspec

from novawatch.objects import NovaObject, Payload, register


class EventSpec(NamedTuple):
    """One catalog entry. ``payload`` is a versioned :class:`Payload` or a legacy payload ``Struct``."""

    event_type: str
    payload: type[msgspec.Struct]
    priority: str
    source: str
    versioned: bool
    decoder: msgspec.json.Decoder[Any]


_EVENTS: dict[str, EventSpec] = {}
#: The table, read-only: ``len(TABLE)`` is :func:`count` without a function call, for hot paths.
TABLE: Mapping[str, EventSpec] = MappingProxyType(_EVENTS)
_SHARED: dict[str, EventSpec] = {}
#: Legacy notifications whose event type Nova also sends versioned (``scheduler.select_destinations.start``
#: ...): the legacy half of each pair, by event type. The versioned half is in :data:`TABLE`.
SHARED_LEGACY: Mapping[str, EventSpec] = MappingProxyType(_SHARED)


def event(event_type: str, payload: type[msgspec.Struct], priority: str = "INFO", source: str = "nova-compute") -> None:
    """Add an event type to the catalog; versioned payloads are registered as a side effect."""
    if event_type in _EVENTS:
        raise ValueError(f"event type {event_type!r} is in the catalog twice")
    versioned = issubclass(payload, Payload)
    if versioned:
        register(payload)  # type: ignore[type-var]
        decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(NovaObject[payload])  # type: ignore[valid-type]
    else:
        decoder = msgspec.json.Decoder(payload)
    _EVENTS[event_type] = EventSpec(event_type, payload, priority, source, versioned, decoder)


def shared_legacy_event(event_type: str, payload: type[msgspec.Struct], source: str) -> None:
    """Add the legacy (plain dict) form of an event type the catalog already has as a versioned one."""
    versioned = _EVENTS.get(event_type)
    if versioned is None or not versioned.versioned:
        raise ValueError(f"{event_type!r} is not a versioned event type of the catalog")
    if issubclass(payload, Payload) or event_type in _SHARED:
        raise ValueError(f"{event_type!r}: one plain legacy payload per shared event type")
    _SHARED[event_type] = EventSpec(event_type, payload, "INFO", source, False, msgspec.json.Decoder(payload))


def shared_legacy(event_type: str) -> EventSpec | None:
    """The legacy half of an event type Nova sends in both formats, or None."""
    return _SHARED.get(event_type)


def count() -> int:
    """How many event types the catalog holds (it only grows), for caches built from it."""
    return len(_EVENTS)


def spec(event_type: str) -> EventSpec | None:
    """The catalog entry of an event type, or None for one the catalog does not know."""
    return _EVENTS.get(event_type)


def events() -> list[EventSpec]:
    """Every catalog entry, sorted by event type."""
    return [_EVENTS[k] for k in sorted(_EVENTS)]
