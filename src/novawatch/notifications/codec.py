"""Decode and validate notifications from bytes: the first step of the consumer's hot path.

What is accepted beyond the strict wire format, because Nova or the tools around it send it:

* ``priority`` may be absent (captured notifications, test fixtures): it is ``INFO``; ``message_id`` and
  ``timestamp`` may be absent too. A ``timestamp`` that is present must be a date-time in UTC's range.
* An event type Nova sends in both formats (``scheduler.select_destinations.start`` ...) is legacy when the
  topic says so (``legacy=True``), else when its payload has no ``nova_object`` envelope.
* An enum value this reader does not know, in a major version it knows, is kept as text (:func:`warnings_of`
  says which); an unknown major version is rejected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, Union

import msgspec

from novawatch.notifications.catalog import SHARED_LEGACY, TABLE, EventSpec, count, events
from novawatch.notifications.message import Notification
from novawatch.notifications.timestamp import describe_ahead, seconds_ahead, sort_key
from novawatch.objects import NovaObject, UnknownPayload, lookup
from novawatch.objects.enums import unknown_values
from novawatch.objects.lenient import lenient

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
        #: The notification's own ``message_id``, ``publisher_id`` and ``timestamp`` when its outer layer could
        #: be read (the payload or the timestamp was what was wrong), for whoever reports the rejection.
        self.message_id: str | None = None
        self.publisher_id: str | None = None
        self.timestamp: str | None = None


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

class Parts(NamedTuple):
    """What the consumer's hot path needs of a notification, without building a :class:`Notification`.

    ``key`` is the timestamp's sortable form (``timestamp.sort_key``); ``message_id``, ``timestamp`` and
    ``key`` are None when absent or null.
    """

    event_type: str
    payload: Any
    message_id: str | None
    key: str | None
    publisher_id: str
    timestamp: str | None


#: :class:`Parts` as a plain tuple (what :meth:`Reader.fields` returns).
PartsTuple = tuple[str, Any, "str | None", "str | None", str, "str | None"]

#: ``payload_of(entry)``: the class a :class:`Reader` decodes an event type's payload into.
PayloadOf = Callable[[EventSpec], type[msgspec.Struct]]


class Reader:
    """Decodes and validates notifications against the catalog.

    ``payload_of`` chooses, per event type, the class its payload is decoded into: the catalog's own by
    default (everything validated, what ``novawatch decode`` does), or a projection of it that holds only
    the fields a consumer uses (:func:`novawatch.objects.projection.project`): those fields are still
    type-checked and their bad values rejected with the same reasons; the others are skipped, not read.
    """

    def __init__(self, payload_of: PayloadOf | None = None) -> None:
        self._payload_of = payload_of
        self._size = -1
        self._entries: dict[str, EventSpec] = {}
        self._shared: dict[str, EventSpec] = {}
        # The fast path: one decoder for the whole catalog, a union of one struct per event type tagged by
        # ``event_type``, so a plain notification is parsed once, payload included. Anything it does not
        # accept (envelopes, unknown events, bad input) goes the slow way, which explains the rejection.
        self._fast: msgspec.json.Decoder[Any] | None = None
        self._lenient: dict[str, msgspec.json.Decoder[Any] | None] = {}

    def _refresh(self) -> None:
        """(Re)build the entries and the fast decoder from the catalog (which only grows)."""
        self._size = count()
        self._entries = {e.event_type: self._entry(e) for e in events()}
        self._shared = {k: self._entry(e) for k, e in SHARED_LEGACY.items()}
        kinds = [_tagged(entry) for entry in self._entries.values()]
        decoder: msgspec.json.Decoder[Any] | None = None
        if kinds:
            try:
                decoder = msgspec.json.Decoder(Union[tuple(kinds)])  # noqa: UP007
            except (TypeError, ValueError):  # a catalog msgspec cannot unite: the slow path still works
                decoder = None
        self._fast = decoder
        self._lenient = {}

    def _entry(self, entry: EventSpec) -> EventSpec:
        payload = entry.payload if self._payload_of is None else self._payload_of(entry)
        if payload is entry.payload:
            return entry
        decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
            NovaObject[payload] if entry.versioned else payload)  # type: ignore[valid-type]
        return entry._replace(payload=payload, decoder=decoder)

    def decode(self, data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES,
               legacy: bool | None = None) -> Notification[Any]:
        """The whole :class:`Notification` (see :func:`decode`)."""
        hit = self._decode_fast(data, max_bytes, legacy)
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
        return self._decode_slow(data, legacy)

    def parts(self, data: bytes | str, legacy: bool | None = None, *,
              max_bytes: int = DEFAULT_MAX_BYTES) -> Parts:
        """The :class:`Parts` of a notification: the same validation and exceptions as :meth:`decode`."""
        return Parts._make(self.fields(data, legacy, max_bytes=max_bytes))

    def fields(self, data: bytes | str, legacy: bool | None = None, *,
               max_bytes: int = DEFAULT_MAX_BYTES) -> PartsTuple:
        """:meth:`parts` as a plain tuple in :class:`Parts`' order: the consumer's hot path, which unpacks it at
        once (building a named tuple costs as much as a tenth of applying a notification)."""
        hit = self._decode_fast(data, max_bytes, legacy)
        if hit is not None:
            event_type = hit.EVENT_TYPE
            message_id = hit.message_id
            ts = hit.timestamp
            key: str | None
            if ts is None or ts is _UNSET:
                key = ts = None
            elif len(ts) == 26 and ts[10] == " " and ts[19] == ".":
                # sort_key's usual case, inlined: fromisoformat validates it, a naive one is already the key.
                try:
                    key = ts if _fromisoformat(ts).tzinfo is None else _key(event_type, ts)
                except ValueError:
                    key = _key(event_type, ts)
            else:
                key = _key(event_type, ts)
            return (event_type, hit.payload, None if message_id is _UNSET else message_id, key, hit.publisher_id,
                    ts)
        n = self._decode_slow(data, legacy)
        timestamp = None if n.timestamp is _UNSET else n.timestamp
        return (n.event_type, n.payload, None if n.message_id is _UNSET else n.message_id,
                None if timestamp is None else _key(n.event_type, timestamp), n.publisher_id, timestamp)

    def _decode_fast(self, data: bytes | str, max_bytes: int, legacy: bool | None) -> Any:
        """The fast path's result for a plain notification it accepts, else None (after the size check)."""
        if len(data) > max_bytes:
            raise Rejected(None, f"document is {len(data)} bytes, over the limit of {max_bytes}")
        if self._size != len(TABLE):
            self._refresh()
        fast = self._fast
        if fast is not None:
            try:
                hit = fast.decode(data)
            except UnicodeEncodeError as exc:  # text (not bytes) holding a lone surrogate
                raise Rejected(None, _not_utf8(exc)) from None
            except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
                return None
            # The fast path knows only the versioned half of an event type Nova sends in both formats: one
            # that came on the legacy topic goes the slow way, which follows the topic.
            if hit.oslo_message is _UNSET and not (legacy and hit.EVENT_TYPE in SHARED_LEGACY):
                return hit
        return None

    def _decode_slow(self, data: bytes | str, legacy: bool | None) -> Notification[Any]:
        """Decode the way that explains: the outer layer first (unwrapping an envelope), then the payload."""
        wire = _parse(_wire, data, None)
        if wire.oslo_message is not msgspec.UNSET:
            wire = _parse(_wire, wire.oslo_message, None)
        event_type = wire.event_type
        if event_type is msgspec.UNSET:
            raise Rejected(None, "missing field 'event_type'")
        try:
            if wire.publisher_id is msgspec.UNSET:
                raise Rejected(event_type, "missing field 'publisher_id'")
            if not wire.payload:
                raise Rejected(event_type, "missing field 'payload'")
            entry = self._entries.get(event_type)
            shared = self._shared.get(event_type)
            if shared is not None and (legacy if legacy is not None else not _enveloped(wire.payload)):
                entry = shared
            if entry is None:
                raise UnknownEvent(event_type)
            payload = self._decode_payload(entry, wire.payload)
            timestamp = wire.timestamp
            if isinstance(timestamp, str):
                _key(event_type, timestamp)
        except Rejected as exc:
            exc.message_id = wire.message_id if isinstance(wire.message_id, str) else None
            exc.publisher_id = wire.publisher_id if isinstance(wire.publisher_id, str) else None
            exc.timestamp = wire.timestamp if isinstance(wire.timestamp, str) else None
            raise
        priority = wire.priority
        return Notification(
            event_type=event_type,
            payload=payload,
            priority=priority if isinstance(priority, str) and priority else "INFO",
            publisher_id=wire.publisher_id,
            message_id=wire.message_id if wire.message_id is not None else msgspec.UNSET,
            timestamp=timestamp if timestamp is not None else msgspec.UNSET,
        )

    def _decode_payload(self, entry: EventSpec, raw: msgspec.Raw) -> Any:
        """The payload, decoded strictly, else (an enum value this reader does not know) by the lenient twin."""
        try:
            return entry.decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            error: Exception = exc
        except RecursionError:
            raise Rejected(entry.event_type, "payload is nested too deeply") from None
        if isinstance(error, msgspec.ValidationError) and str(error).startswith("Invalid enum value"):
            decoder = self._lenient_decoder(entry)
            if decoder is not None:
                try:
                    return decoder.decode(raw)
                except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                    error = exc  # something else is wrong too: that is the reason
                except RecursionError:
                    raise Rejected(entry.event_type, "payload is nested too deeply") from None
        raise Rejected(entry.event_type, _explain(entry, raw, error)) from None

    def _lenient_decoder(self, entry: EventSpec) -> msgspec.json.Decoder[Any] | None:
        """The decoder of an event type's lenient payload (None when it has no enum), built on first need."""
        try:
            return self._lenient[entry.event_type]
        except KeyError:
            pass
        decoder = None
        if entry.versioned:
            twin = lenient(entry.payload)  # type: ignore[arg-type]
            if twin is not entry.payload:
                decoder = msgspec.json.Decoder(NovaObject[twin])  # type: ignore[valid-type]
        self._lenient[entry.event_type] = decoder
        return decoder


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


#: The catalog's own reader: every field validated.
_CATALOG = Reader()


def decode(
    data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES, legacy: bool | None = None
) -> Notification[Any]:
    """Decode one notification and validate its payload and timestamp against the catalog.

    ``legacy`` is what the topic it came on says (see ``event.legacy_topic``), None when unknown. Raises
    :class:`Rejected` (with a reason) or :class:`UnknownEvent`; never anything else. What it accepted
    with a warning, :func:`warnings_of` says.
    """
    return _CATALOG.decode(data, max_bytes=max_bytes, legacy=legacy)


def decode_parts(data: bytes | str, legacy: bool | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Parts:
    """What :func:`decode` finds, as :class:`Parts`: the same validation and the same exceptions."""
    return _CATALOG.parts(data, legacy, max_bytes=max_bytes)


def warnings_of(notification: Notification[Any], now: float | None = None) -> list[str]:
    """What a decoded notification was accepted despite: enum values this reader does not know (kept as
    text), and a timestamp too far ahead of the clock (``now``, the wall clock when None) to be believed."""
    found = unknown_values(notification.payload)
    timestamp = notification.timestamp
    if isinstance(timestamp, str):
        try:
            ahead = seconds_ahead(sort_key(timestamp), now)
        except ValueError:  # not from decode(), which rejects such a timestamp
            return [*found, f"timestamp {timestamp!r} is not a date-time"]
        if ahead is not None:
            found.append(describe_ahead(timestamp, ahead))
    return found


def _key(event_type: str, timestamp: str) -> str:
    try:
        return sort_key(timestamp)
    except ValueError as exc:
        raise Rejected(event_type, str(exc)) from None


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


def _explain(entry: EventSpec, raw: msgspec.Raw, exc: Exception) -> str:
    """Turn a decode error into a reason; a wrong name or major is named as such, not as a field error."""
    if not entry.versioned and entry.event_type in SHARED_LEGACY:
        if _enveloped(raw):
            return (f"{entry.event_type} carries a nova_object envelope but came on the legacy topic "
                    f"'notifications': is Nova's [notifications] versioned_notifications_topics set to it?")
        return f"legacy {entry.event_type} (no nova_object envelope): {_at_payload(_tidy(str(exc), 'payload'))}"
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
            if not _same_payload(cls, entry.payload):
                return f"{entry.event_type} carries {entry.payload.__name__}, not {head.name}"
    return _at_payload(_tidy(str(exc), "payload"))


def _same_payload(cls: type, payload: type) -> bool:
    """Whether a registered payload class is the one an entry decodes (or the projection a reader made of it)."""
    if cls is payload:
        return True
    return bool(cls.__name__ == payload.__name__
                and getattr(cls, "VERSION", "").partition(".")[0] == getattr(payload, "VERSION", "").partition(".")[0])


def _at_payload(reason: str) -> str:
    # msgspec names no path for an error at the root of what it decoded: the payload itself.
    return reason if " - at `" in reason else f"{reason} - at `payload`"


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
