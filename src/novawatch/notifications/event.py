"""Event types (``object.action[.phase]``), priorities and publisher ids."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Priority(StrEnum):
    """Notification priorities, as oslo.messaging writes them on the wire."""

    AUDIT = "AUDIT"
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"
    SAMPLE = "SAMPLE"

    @classmethod
    def parse(cls, text: str) -> Priority:
        """Case-insensitive; ``warning`` is oslo.messaging's alias of ``warn``."""
        upper = text.upper()
        if upper == "WARNING":
            return cls.WARN
        try:
            return cls(upper)
        except ValueError:
            raise ValueError(f"unknown priority {text!r}") from None


class NotificationFormat(StrEnum):
    """Nova's ``notification_format`` option: which of the two streams to emit."""

    VERSIONED = "versioned"
    UNVERSIONED = "unversioned"
    BOTH = "both"

    @property
    def versioned(self) -> bool:
        return self is not NotificationFormat.UNVERSIONED

    @property
    def unversioned(self) -> bool:
        return self is not NotificationFormat.VERSIONED


#: oslo.messaging topics of the two formats.
VERSIONED_TOPIC = "versioned_notifications"
UNVERSIONED_TOPIC = "notifications"


def legacy_topic(topic: str | None) -> bool | None:
    """Whether a topic (or an AMQP routing key ``topic.priority``) carries legacy notifications: True for
    Nova's ``notifications``, False for ``versioned_notifications``, None when the topic does not say."""
    if not topic:
        return None
    name = topic.partition(".")[0]
    if name == UNVERSIONED_TOPIC:
        return True
    if name == VERSIONED_TOPIC:
        return False
    return None


class EventType(NamedTuple):
    """A versioned event type: ``instance.volume_swap.start`` is ("instance", "volume_swap", "start")."""

    object: str
    action: str
    phase: str | None = None

    @classmethod
    def parse(cls, text: str) -> EventType:
        parts = text.split(".")
        if len(parts) == 2 and all(parts):
            return cls(parts[0], parts[1])
        if len(parts) == 3 and all(parts):
            return cls(parts[0], parts[1], parts[2])
        raise ValueError(f"event type {text!r} is not object.action[.phase]")

    def __str__(self) -> str:
        return f"{self.object}.{self.action}.{self.phase}" if self.phase else f"{self.object}.{self.action}"


class Publisher(NamedTuple):
    """Who sent a notification: versioned ids are ``binary:host``, legacy ones ``service.host``."""

    source: str
    host: str

    @classmethod
    def parse(cls, publisher_id: str) -> Publisher:
        for sep in (":", "."):
            source, found, host = publisher_id.partition(sep)
            if found and source and host:
                return cls(source, host)
        raise ValueError(f"publisher id {publisher_id!r} is neither binary:host nor service.host")
