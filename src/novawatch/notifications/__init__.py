"""Event types, the notifier and its drivers, the wire format, and the catalog of payloads."""

from novawatch.notifications.codec import (
    DEFAULT_MAX_BYTES,
    Rejected,
    UnknownEvent,
    decode,
    decode_parts,
    take_warnings,
)
from novawatch.notifications.event import EventType, NotificationFormat, Priority, Publisher, legacy_topic
from novawatch.notifications.message import Notification, encode, encode_envelope
from novawatch.notifications.notifier import Notifier

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EventType",
    "Notification",
    "NotificationFormat",
    "Notifier",
    "Priority",
    "Publisher",
    "Rejected",
    "UnknownEvent",
    "decode",
    "decode_parts",
    "encode",
    "encode_envelope",
    "legacy_topic",
    "take_warnings",
]
