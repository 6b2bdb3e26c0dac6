"""Decode and validate notifications from bytes: the first step of the consumer's hot path.

What is accepted beyond the strict wire format, because Nova or the tools around it send it:

* ``priority`` may be absent (captured notifications, test fixtures): it is ``INFO``; ``message_id`` and
  ``timestamp`` may be absent too. A ``timestamp`` that is present must be a date-time in UTC's range.
* An event type Nova sends in both formats (``scheduler.select_destinations.start`` ...) is legacy when the
  topic says so (``legacy=True``), else when its payload has no ``nova_object`` envelope.
* An enum value this reader does not know, in a major version it knows, is kept as text and reported by
  :func:`take_warnings`; an unknown major version is rejected.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Union

import msgspec

from novawatch.notifications.catalog import SHARED_LEGACY, TABLE, EventSpec, count, events, spec
from novawatch.notifications.message import Notification
from novawatch.notifications.timestamp import sort_key
from novawatch.objects import NovaObject, UnknownPayload, lookup
from novawatch.objects.fields import NOTES, take_notes

_UNSET = msgspec.UNSET
_fromisoformat = datetime.fromisoformat

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
    priority: str | msgspec.UnsetType | None = msgspec.UNSET
    publisher_id: str | msgspec.UnsetType = msgspec.UNSET
    message_id: str | msgspec.UnsetType | None = msgspec.UNSET
    timestamp: str | msgspec.UnsetType | None = msgspec.UNSET
    oslo_message: str | msgspec.UnsetType = msgspec.field(name="oslo.message", default=msgspec.UNSET)


class _Peek(msgspec.Struct):
    name: str | msgspec.UnsetType = msgspec.field(name="nova_object.name", default=msgspec.UNSET)
    version: str | msgspec.UnsetType = msgspec.field(name="nova_object.version", default=msgspec.UNSET)
    data: msgspec.Raw = msgspec.field(name="nova_object.data", default=msgspec.Raw())
    namespace: msgspec.Raw = msgspec.field(name="nova_object.namespace", default=msgspec.Raw())


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
            ("priority", str | None, None),
            ("publisher_id", str),
            ("message_id", str | msgspec.UnsetType | None, msgspec.UNSET),
            ("timestamp", str | msgspec.UnsetType | None, msgspec.UNSET),
            ("oslo_message", str | msgspec.UnsetType, msgspec.field(name="oslo.message", default=msgspec.UNSET)),
        ],
        tag=entry.event_type,
        tag_field="event_type",
        kw_only=True,
        namespace={"EVENT_TYPE": entry.event_type},
    )


def decode(
    data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES, legacy: bool | None = None
) -> Notification[Any]:
    """Decode one notification and validate its payload and timestamp against the catalog.

    ``legacy`` is what the topic it came on says (see ``event.legacy_topic``), None when unknown. Raises
    :class:`Rejected` (with a reason) or :class:`UnknownEvent`; never anything else. What was accepted
    with a warning (an unknown enum value) is then in :func:`take_warnings`.
    """
    if NOTES.items:
        NOTES.items = []
    hit = _decode_fast(data, max_bytes, legacy)
    if hit is not None:
        timestamp = hit.timestamp
        if timestamp is not None and timestamp is not _UNSET:
            _key(hit.EVENT_TYPE, timestamp)
        return Notification(
            event_type=hit.EVENT_TYPE,
            payload=hit.payload,
            priority=hit.priority or "INFO",
            publisher_id=hit.publisher_id,
            message_id=hit.message_id if hit.message_id is not None else msgspec.UNSET,
            timestamp=timestamp if timestamp is not None else msgspec.UNSET,
        )
    return _decode_slow(data, legacy)


def take_warnings() -> list[str]:
    """What the decoding done in this thread accepted with a warning since the last call (unknown enum
    values), and forget it."""
    return take_notes()


def decode_parts(
    data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES, legacy: bool | None = None
) -> tuple[str, Any, str | msgspec.UnsetType, str | None]:
    """What :func:`decode` finds, as ``(event_type, payload, message_id, timestamp key)``.

    For the consumer's hot path: the same validation and the same exceptions, without building the
    :class:`Notification`; the timestamp comes as its sortable key (``timestamp.sort_key``), None when
    absent or null. An absent (or null) ``message_id`` is ``msgspec.UNSET``. Warnings are left for the
    caller to take (:func:`take_warnings`): this does not forget earlier ones.
    """
    hit = _decode_fast(data, max_bytes, legacy)
    if hit is not None:
        message_id = hit.message_id
        ts = hit.timestamp
        key: str | None
        if ts is None or ts is _UNSET:
            key = None
        elif len(ts) == 26 and ts[10] == " " and ts[19] == ".":
            # sort_key's usual case, inlined: fromisoformat validates it, a naive one is already the key.
            try:
                key = ts if _fromisoformat(ts).tzinfo is None else _key(hit.EVENT_TYPE, ts)
            except ValueError:
                key = _key(hit.EVENT_TYPE, ts)
        else:
            key = _key(hit.EVENT_TYPE, ts)
        return hit.EVENT_TYPE, hit.payload, _UNSET if message_id is None else message_id, key
    n = _decode_slow(data, legacy)
    ts = n.timestamp
    return n.event_type, n.payload, n.message_id, None if ts is _UNSET else _key(n.event_type, ts)


def _key(event_type: str, timestamp: str) -> str:
    try:
        return sort_key(timestamp)
    except ValueError as exc:
        raise Rejected(event_type, str(exc)) from None


def _decode_fast(data: bytes | str, max_bytes: int, legacy: bool | None) -> Any:
    """The fast path's result for a plain notification it accepts, else None (after the size check)."""
    if len(data) > max_bytes:
        raise Rejected(None, f"document is {len(data)} bytes, over the limit of {max_bytes}")
    size, fast = _fast
    if size != len(TABLE):
        fast = _fast_decoder()
    if fast is not None:
        try:
            hit = fast.decode(data)
        except UnicodeEncodeError as exc:  # text (not bytes) holding a lone surrogate
            raise Rejected(None, _not_utf8(exc)) from None
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            if NOTES.items:  # noted by objects the slow path decodes again
                NOTES.items = []
            return None
        # The fast path knows only the versioned half of an event type Nova sends in both formats: one
        # that came on the legacy topic goes the slow way, which follows the topic.
        if hit.oslo_message is _UNSET and not (legacy and hit.EVENT_TYPE in SHARED_LEGACY):
            return hit
    return None


def _decode_slow(data: bytes | str, legacy: bool | None) -> Notification[Any]:
    """Decode the way that explains: the outer layer first (unwrapping an envelope), then the payload."""
    wire = _parse(_wire, data, None)
    if wire.oslo_message is not msgspec.UNSET:
        wire = _parse(_wire, wire.oslo_message, None)
    event_type = wire.event_type
    if event_type is msgspec.UNSET:
        raise Rejected(None, "missing field 'event_type'")
    if wire.publisher_id is msgspec.UNSET:
        raise Rejected(event_type, "missing field 'publisher_id'")
    if not wire.payload:
        raise Rejected(event_type, "missing field 'payload'")
    entry = spec(event_type)
    shared = SHARED_LEGACY.get(event_type)
    if shared is not None and (legacy if legacy is not None else not _enveloped(wire.payload)):
        entry = shared
    if entry is None:
        raise UnknownEvent(event_type)
    if NOTES.items:
        NOTES.items = []
    try:
        payload = entry.decoder.decode(wire.payload)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        if NOTES.items:
            NOTES.items = []
        raise Rejected(event_type, _explain(entry, wire.payload, exc, legacy)) from None
    except RecursionError:
        raise Rejected(event_type, "payload is nested too deeply") from None
    timestamp = wire.timestamp
    if isinstance(timestamp, str):
        _key(event_type, timestamp)
    priority = wire.priority
    return Notification(
        event_type=event_type,
        payload=payload,
        priority=priority if isinstance(priority, str) and priority else "INFO",
        publisher_id=wire.publisher_id,
        message_id=wire.message_id if wire.message_id is not None else msgspec.UNSET,
        timestamp=timestamp if timestamp is not None else msgspec.UNSET,
    )


def _enveloped(raw: msgspec.Raw) -> bool:
    """Whether a payload carries any ``nova_object.*`` key (or is not an object the legacy decoder can read)."""
    try:
        head = _peek.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return True  # not an object: let the versioned decoder explain
    return head.name is not _UNSET or head.version is not _UNSET or bool(head.data) or bool(head.namespace)


def _not_utf8(exc: UnicodeEncodeError) -> str:
    return f"not valid JSON: text with a lone surrogate {exc.object[exc.start:exc.end]!r} at {exc.start}"


def _parse(decoder: msgspec.json.Decoder[_Wire], data: bytes | str, event_type: str | None) -> _Wire:
    try:
        return decoder.decode(data)
    except UnicodeEncodeError as exc:
        raise Rejected(event_type, _not_utf8(exc)) from None
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: JSON, but not a notification
        raise Rejected(event_type, _tidy(str(exc), "")) from None
    except msgspec.DecodeError as exc:
        raise Rejected(event_type, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise Rejected(event_type, "document is nested too deeply") from None


def _explain(entry: EventSpec, raw: msgspec.Raw, exc: Exception, legacy: bool | None = None) -> str:
    """Turn a decode error into a reason; a wrong name or major is named as such, not as a field error."""
    if not entry.versioned and entry.event_type in SHARED_LEGACY:
        if _enveloped(raw):
            return (f"{entry.event_type} carries a nova_object envelope but came on the legacy topic "
                    f"'notifications': is Nova's [notifications] versioned_notifications_topics set to it?")
        return f"legacy {entry.event_type} (no nova_object envelope): {_tidy(str(exc), 'payload')}"
    if entry.versioned and not _enveloped(raw):
        if entry.event_type in SHARED_LEGACY:
            return (f"{entry.event_type} came on the versioned topic but its payload has no nova_object "
                    "envelope (Nova sends that on the legacy topic 'notifications')")
        return (f"payload has no nova_object envelope: {entry.event_type} is a versioned notification "
                "(Nova sends no legacy one of that type)")
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
