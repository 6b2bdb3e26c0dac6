"""The notification as it travels: oslo.messaging's message dict and its ``oslo.message`` envelope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")

OSLO_VERSION = "2.0"


class Notification(msgspec.Struct, Generic[T], kw_only=True):
    """One notification: oslo.messaging's dict, with a typed ``payload``.

    ``message_id`` and ``timestamp`` are always written by novawatch and may be absent in input.
    """

    event_type: str
    payload: T
    priority: str
    publisher_id: str
    message_id: str | msgspec.UnsetType = msgspec.UNSET
    timestamp: str | msgspec.UnsetType = msgspec.UNSET

    @property
    def time(self) -> datetime | None:
        """The ``timestamp`` as an aware UTC date-time, or None when absent or unreadable."""
        return parse_timestamp(self.timestamp) if isinstance(self.timestamp, str) else None


class OsloEnvelope(msgspec.Struct):
    """oslo.messaging's message envelope: ``{"oslo.version": "2.0", "oslo.message": "<json>"}``."""

    message: str = msgspec.field(name="oslo.message")
    version: str = msgspec.field(name="oslo.version", default=OSLO_VERSION)


def format_timestamp(moment: datetime) -> str:
    """oslo.messaging's timestamp text: ``str()`` of a naive UTC date-time, always with microseconds."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    # isoformat is the same text as strftime("%Y-%m-%d %H:%M:%S.%f"), at a quarter of the cost.
    return moment.isoformat(" ", "microseconds")


def parse_timestamp(text: str) -> datetime | None:
    """Read oslo.messaging's ``2012-10-29 13:42:11.123456`` (or ISO 8601) as aware UTC; None if unreadable
    or not a date in UTC (``9999-12-31T23:59:59-01:00``)."""
    try:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (TypeError, ValueError, OverflowError):
        return None


_encoder = msgspec.json.Encoder()
_envelope = msgspec.json.Decoder(OsloEnvelope)
_WHITESPACE = b" \t\r\n"


def unwrap(body: bytes | str) -> bytes | str:
    """The notification inside an oslo.messaging envelope, or ``body`` itself when it is not one.

    A body that looks like an envelope (its first key is ``oslo.version`` or ``oslo.message``) but is not a
    valid one is returned as it is, for the decoder to say what is wrong with it. Only the envelope's start
    is looked at otherwise: a plain notification is not parsed here.
    """
    head = body[:64].encode() if isinstance(body, str) else body[:64]
    head = head.lstrip(_WHITESPACE)
    if head[:1] != b"{" or not head[1:].lstrip(_WHITESPACE).startswith(b'"oslo.'):
        return body
    try:
        return _envelope.decode(body).message
    except (msgspec.DecodeError, RecursionError):
        return body


def encode(notification: Notification[Any]) -> bytes:
    """The plain oslo.messaging dict as JSON bytes (what the stream file holds, one per line)."""
    return _encoder.encode(notification)


def encode_envelope(notification: Notification[Any]) -> bytes:
    """The notification wrapped in oslo.messaging's 2.0 envelope, as sent over AMQP."""
    return _encoder.encode(OsloEnvelope(message=_encoder.encode(notification).decode()))
