"""The notifier: turns a payload into a notification and hands it to every driver."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from novawatch.notifications.catalog import shared_legacy, spec
from novawatch.notifications.drivers import Driver
from novawatch.notifications.event import UNVERSIONED_TOPIC, VERSIONED_TOPIC, NotificationFormat, Priority
from novawatch.notifications.message import Notification, encode, format_timestamp
from novawatch.objects import Payload


def _now() -> datetime:
    return datetime.now(UTC)


_VERSION_BITS = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)


def _new_id() -> str:
    # A random (version 4) UUID as uuid.uuid4() makes it, without building a UUID object: half the cost.
    digits = f"{(int.from_bytes(os.urandom(16)) & _VERSION_BITS) | _VERSION_4:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


class Notifier:
    """Emits notifications in the configured ``notification_format``.

    A versioned :class:`Payload` goes to ``versioned_notifications`` wrapped in its envelope; a legacy
    payload ``Struct`` goes to ``notifications`` as is. The event type must be in the catalog with that
    payload class, so that everything emitted is something ``novawatch decode`` accepts.
    """

    def __init__(
        self,
        drivers: Sequence[Driver],
        *,
        notification_format: NotificationFormat | str = NotificationFormat.BOTH,
        clock: Callable[[], datetime] = _now,
        message_ids: Callable[[], str] = _new_id,
    ) -> None:
        self.drivers = list(drivers)
        self.format = NotificationFormat(notification_format)
        self.clock = clock
        self.message_ids = message_ids

    def emit(
        self,
        event_type: str,
        payload: msgspec.Struct,
        *,
        publisher_id: str,
        priority: Priority | str | None = None,
    ) -> Notification[Any] | None:
        """Send one notification; None when ``notification_format`` excludes its kind."""
        entry = spec(event_type)
        if entry is not None and entry.payload is not type(payload):
            # The legacy half of an event type Nova sends in both formats (scheduler.select_destinations.*).
            entry = shared_legacy(event_type) or entry
        if entry is None or entry.payload is not type(payload):
            raise ValueError(f"{event_type} with a {type(payload).__name__} is not in the catalog")
        if entry.versioned:
            if not self.format.versioned:
                return None
            assert isinstance(payload, Payload)
            body: Any = payload.wrap()
            topic = VERSIONED_TOPIC
        else:
            if not self.format.unversioned:
                return None
            body = payload
            topic = UNVERSIONED_TOPIC
        notification: Notification[Any] = Notification(
            event_type=event_type,
            payload=body,
            priority=str(priority or entry.priority),
            publisher_id=publisher_id,
            message_id=self.message_ids(),
            timestamp=format_timestamp(self.clock()),
        )
        data = encode(notification)
        for driver in self.drivers:
            driver.send(topic, notification, data)
        return notification
