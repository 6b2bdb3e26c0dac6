"""Decode and validate notifications from bytes: the first step of the consumer's hot path."""

from __future__ import annotations

import re
from typing import Any, Union

import msgspec

from novawatch.notifications.catalog import TABLE, EventSpec, count, events, spec
from novawatch.notifications.message import Notification
from novawatch.objects import NovaObject, UnknownPayload, lookup

_UNSET = msgspec.UNSET

#: Documents larger than this are rejected before parsing.
DEFAULT_MAX_BYTES = 4 * 1024 * 1024


class Rejected(ValueError):
    """A notification that cannot be accepted; ``reason`` names the field or the problem."""

    def __init__(self, event_type: str | None, reason: str) -> None:
        super().__init__(f"{event_type or '<no event_type>'}: {reason}")
        self.event_type = event_type
        self.reason = reason


class UnknownEvent(LookupError):
    """A well-formed notification whose event type is not in the catalog."""

    def __init__(self, event_type: str) -> None:
        super().__init__(event_type)
        self.event_type = event_type


class _Wire(msgspec.Struct):
    """The outer layer: either oslo.messaging's plain dict or its ``oslo.message`` envelope."""

    event_type: str | msgspec.UnsetType = msgspec.UNSET
    payload: msgspec.Raw = msgspec.Raw()
    priority: str | msgspec.UnsetType = msgspec.UNSET
    publisher_id: str | msgspec.UnsetType = msgspec.UNSET
    message_id: str | msgspec.UnsetType | None = msgspec.UNSET
    timestamp: str | msgspec.UnsetType | None = msgspec.UNSET
    oslo_message: str | msgspec.UnsetType = msgspec.field(name="oslo.message", default=msgspec.UNSET)


class _Peek(msgspec.Struct):
    name: str | msgspec.UnsetType = msgspec.field(name="nova_object.name", default=msgspec.UNSET)
    version: str | msgspec.UnsetType = msgspec.field(name="nova_object.version", default=msgspec.UNSET)


_wire = msgspec.json.Decoder(_Wire)
_peek = msgspec.json.Decoder(_Peek)

# The fast path: one decoder for the whole catalog, a union of one struct per event type tagged by
# ``event_type``, so a plain notification is parsed once, payload included. Anything it does not
# accept (envelopes, unknown events, bad input) goes the slow way, which explains the rejection.
_fast: tuple[int, msgspec.json.Decoder[Any] | None] = (-1, None)


def _fast_decoder() -> msgspec.json.Decoder[Any] | None:
    global _fast
    size = count()
    if _fast[0] != size:
        decoder: msgspec.json.Decoder[Any] | None = None
        kinds = [_tagged(entry) for entry in events()]
        if kinds:
            try:
                decoder = msgspec.json.Decoder(Union[tuple(kinds)])  # noqa: UP007
            except (TypeError, ValueError):  # a catalog msgspec cannot unite: the slow path still works
                decoder = None
        _fast = (size, decoder)
    return _fast[1]


def _tagged(entry: EventSpec) -> type[msgspec.Struct]:
    payload: Any = NovaObject[entry.payload] if entry.versioned else entry.payload  # type: ignore[name-defined]
    return msgspec.defstruct(
        "_Fast",
        [
            ("payload", payload),
            ("priority", str),
            ("publisher_id", str),
            ("message_id", str | msgspec.UnsetType | None, msgspec.UNSET),
            ("timestamp", str | msgspec.UnsetType | None, msgspec.UNSET),
            ("oslo_message", str | msgspec.UnsetType, msgspec.field(name="oslo.message", default=msgspec.UNSET)),
        ],
        tag=entry.event_type,
        tag_field="event_type",
        namespace={"EVENT_TYPE": entry.event_type},
    )


def decode(data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Notification[Any]:
    """Decode one notification and validate its payload against the catalog.

    Raises :class:`Rejected` (with a reason) or :class:`UnknownEvent`; never anything else.
    """
    hit = _decode_fast(data, max_bytes)
    if hit is not None:
        return Notification(
            event_type=hit.EVENT_TYPE,
            payload=hit.payload,
            priority=hit.priority,
            publisher_id=hit.publisher_id,
            message_id=hit.message_id if hit.message_id is not None else msgspec.UNSET,
            timestamp=hit.timestamp if hit.timestamp is not None else msgspec.UNSET,
        )
    return _decode_slow(data)


def decode_parts(
    data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[str, Any, str | msgspec.UnsetType, str | msgspec.UnsetType]:
    """What :func:`decode` finds, as ``(event_type, payload, message_id, timestamp)``.

    For the consumer's hot path: the same validation and the same exceptions, without building the
    :class:`Notification`. An absent (or null) ``message_id`` or ``timestamp`` is ``msgspec.UNSET``.
    """
    hit = _decode_fast(data, max_bytes)
    if hit is not None:
        message_id = hit.message_id
        timestamp = hit.timestamp
        return (
            hit.EVENT_TYPE,
            hit.payload,
            _UNSET if message_id is None else message_id,
            _UNSET if timestamp is None else timestamp,
        )
    n = _decode_slow(data)
    return n.event_type, n.payload, n.message_id, n.timestamp


def _decode_fast(data: bytes | str, max_bytes: int) -> Any:
    """The fast path's result for a plain notification it accepts, else None (after the size check)."""
    if len(data) > max_bytes:
        raise Rejected(None, f"document is {len(data)} bytes, over the limit of {max_bytes}")
    size, fast = _fast
    if size != len(TABLE):
        fast = _fast_decoder()
    if fast is not None:
        try:
            hit = fast.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return None
        if hit.oslo_message is _UNSET:
            return hit
    return None


def _decode_slow(data: bytes | str) -> Notification[Any]:
    """Decode the way that explains: the outer layer first (unwrapping an envelope), then the payload."""
    wire = _parse(_wire, data, None)
    if wire.oslo_message is not msgspec.UNSET:
        wire = _parse(_wire, wire.oslo_message, None)
    event_type = wire.event_type
    if event_type is msgspec.UNSET:
        raise Rejected(None, "missing field 'event_type'")
    for name in ("priority", "publisher_id"):
        if getattr(wire, name) is msgspec.UNSET:
            raise Rejected(event_type, f"missing field {name!r}")
    if not wire.payload:
        raise Rejected(event_type, "missing field 'payload'")
    entry = spec(event_type)
    if entry is None:
        raise UnknownEvent(event_type)
    try:
        payload = entry.decoder.decode(wire.payload)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise Rejected(event_type, _explain(entry, wire.payload, exc)) from None
    except RecursionError:
        raise Rejected(event_type, "payload is nested too deeply") from None
    return Notification(
        event_type=event_type,
        payload=payload,
        priority=wire.priority,  # type: ignore[arg-type]
        publisher_id=wire.publisher_id,  # type: ignore[arg-type]
        message_id=wire.message_id if wire.message_id is not None else msgspec.UNSET,
        timestamp=wire.timestamp if wire.timestamp is not None else msgspec.UNSET,
    )


def _parse(decoder: msgspec.json.Decoder[_Wire], data: bytes | str, event_type: str | None) -> _Wire:
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: JSON, but not a notification
        raise Rejected(event_type, _tidy(str(exc), "")) from None
    except msgspec.DecodeError as exc:
        raise Rejected(event_type, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise Rejected(event_type, "document is nested too deeply") from None


def _explain(entry: EventSpec, raw: msgspec.Raw, exc: Exception) -> str:
    """Turn a decode error into a reason; a wrong name or major is named as such, not as a field error."""
    if entry.versioned:
        try:
            head = _peek.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            head = _Peek()
        if isinstance(head.name, str) and isinstance(head.version, str):
            try:
                cls = lookup(head.name, head.version)
            except UnknownPayload as unknown:
                return str(unknown)
            if cls is not entry.payload:
                return f"{entry.event_type} carries {entry.payload.__name__}, not {head.name}"
    reason = _tidy(str(exc), "payload")
    # msgspec names no path for an error at the root of what it decoded: the payload itself.
    return reason if " - at `" in reason or isinstance(exc, RecursionError) else f"{reason} - at `payload`"


_FIELD_AT = re.compile(r" \(field `([^`]+)`\) - at `([^`]+)`")
_FIELD_AT_ROOT = re.compile(r" \(field `([^`]+)`\)$")


def _tidy(message: str, root: str) -> str:
    # A text format's check names its field; msgspec adds where the payload holding it is.
    # (msgspec names no place for the object it was asked to decode: that is the root.)
    message = _FIELD_AT.sub(r" - at `\2.\1`", message)
    message = _FIELD_AT_ROOT.sub(r" - at `$.\1`", message)
    # msgspec paths spell out every envelope level; readers want the payload field.
    message = message.replace(".nova_object.data", "")
    return message.replace("`$`", f"`{root or 'document'}`").replace("`$.", f"`{root}." if root else "`")
