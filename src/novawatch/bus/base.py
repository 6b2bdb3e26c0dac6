"""The bus interface: a publisher, a subscriber of acknowledged deliveries, and what travels between them."""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from novawatch.notifications.codec import Rejected, UnknownEvent, decode
from novawatch.notifications.event import UNVERSIONED_TOPIC, VERSIONED_TOPIC, legacy_topic
from novawatch.notifications.message import Notification, encode, unwrap
from novawatch.objects import NovaObject

#: Both of Nova's notification topics: the model consumes the versioned and the legacy stream.
DEFAULT_TOPICS: tuple[str, ...] = (VERSIONED_TOPIC, UNVERSIONED_TOPIC)

#: Default consumer group: subscribers sharing a group share one queue (each message goes to one of them).
#: On RabbitMQ it names the queue, which the recommended permissions (``^novawatch-.*``) must cover.
DEFAULT_GROUP = "novawatch-model"

#: ``on_gap(reason)``: notifications published meanwhile may never reach this subscriber (see Subscriber).
GapCallback = Callable[[str], None]

Decoder = Callable[[bytes | str], Notification[Any]]


class BusError(RuntimeError):
    """The bus cannot do what was asked (bad URL, closed publisher, undeliverable message)."""


class Status(enum.Enum):
    """What the subscriber made of a message."""

    OK = "ok"  #: decoded and validated against the catalog
    UNKNOWN = "unknown"  #: well-formed, but its event type is not in the catalog (the model ignores it)
    REJECTED = "rejected"  #: cannot be decoded; acknowledging it moves it to the dead-letter queue


def topic_of(notification: Notification[Any]) -> str:
    """The oslo.messaging topic a notification belongs on: versioned payloads carry ``nova_object.name``."""
    payload = notification.payload
    if isinstance(payload, dict):
        return VERSIONED_TOPIC if "nova_object.name" in payload else UNVERSIONED_TOPIC
    return VERSIONED_TOPIC if isinstance(payload, NovaObject) else UNVERSIONED_TOPIC


class Delivery(abc.ABC):
    """One message handed to a consumer; the bus forgets it only after :meth:`ack`.

    ``notification`` is the decoded notification (None when ``status`` is not OK); ``body`` the bytes as
    received; ``document`` the notification's JSON (``body`` without oslo.messaging's envelope); ``reason``
    says why a REJECTED message could not be decoded. Decoding happens on first use of ``status``,
    ``notification``, ``event_type`` or ``reason``, so that a consumer that decodes ``document`` itself
    (the data model) does not pay for it twice.
    """

    __slots__ = ("_decoder", "_event_type", "_notification", "_reason", "_status", "body", "position",
                 "redelivered", "topic")

    def __init__(self, body: bytes, topic: str, decoder: Decoder, redelivered: bool = False,
                 position: int | None = None) -> None:
        self.body = body
        self.topic = topic
        self.redelivered = redelivered
        #: Where the message is on the bus: its offset in a RabbitMQ stream, its sequence number on the
        #: embedded bus; None where the bus has no positions (a RabbitMQ queue, the memory bus).
        self.position = position
        self._decoder = decoder
        self._status: Status | None = None  # None: not decoded yet
        self._notification: Notification[Any] | None = None
        self._reason: str | None = None
        self._event_type: str | None = None

    @property
    def document(self) -> bytes | str:
        """The notification as JSON: ``body`` without oslo.messaging's envelope."""
        return unwrap(self.body)

    @property
    def legacy(self) -> bool | None:
        """What the topic says of the format: True on Nova's legacy ``notifications``, False on
        ``versioned_notifications``, None on another topic (the payload's shape decides then)."""
        return legacy_topic(self.topic)

    def _decode(self) -> Status:
        try:
            decoder = self._decoder
            # the default decoder is told the topic's format; a custom one gets the document only
            doc = self.document
            self._notification = decode(doc, legacy=self.legacy) if decoder is decode else decoder(doc)
            self._event_type = self._notification.event_type
            self._status = Status.OK
        except UnknownEvent as exc:
            self._event_type = exc.event_type
            self._status = Status.UNKNOWN
        except Rejected as exc:
            self._event_type = exc.event_type
            self._reason = exc.reason
            self._status = Status.REJECTED
        except Exception as exc:  # a custom decoder's bug must not stop the stream: keep the message
            self._reason = f"decoder failed: {type(exc).__name__}: {exc}"
            self._status = Status.REJECTED
        return self._status

    @property
    def status(self) -> Status:
        """What the bus's decoder made of the message (decoded on first use)."""
        status = self._status
        return self._decode() if status is None else status

    @property
    def notification(self) -> Notification[Any] | None:
        self.status  # noqa: B018 -- decodes on first use
        return self._notification

    @property
    def event_type(self) -> str | None:
        self.status  # noqa: B018
        return self._event_type

    @property
    def reason(self) -> str | None:
        self.status  # noqa: B018
        return self._reason

    @property
    def message_id(self) -> str | None:
        """The notification's ``message_id`` (what consumers deduplicate on), when decoded."""
        n = self.notification
        return n.message_id if n is not None and isinstance(n.message_id, str) else None

    async def ack(self) -> None:
        """Done with it: forget it, or keep it in the dead-letter queue when it was REJECTED."""
        if self.status is Status.REJECTED:
            await self._dead_letter(self.reason or "rejected")
        else:
            await self._ack()

    async def accept(self) -> None:
        """Acknowledge it without decoding it here: the consumer decoded ``document`` itself and used it."""
        await self._ack()

    async def reject(self, reason: str) -> None:
        """The consumer cannot use it: move it to the dead-letter queue with ``reason``."""
        self._reason = reason
        await self._dead_letter(reason)

    @abc.abstractmethod
    async def _ack(self) -> None: ...

    @abc.abstractmethod
    async def _dead_letter(self, reason: str) -> None: ...

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.status.value} {self.event_type} {self.message_id or ''}>"


class Publisher(abc.ABC):
    """Sends notifications; thread-safe, never blocks on the network except when its outbox is full.

    ``publish`` hands the notification to the transport; :meth:`flush` returns once everything published
    so far is stored by the bus (committed to disk, or confirmed by the broker).
    """

    def publish(self, notification: Notification[Any], *, topic: str | None = None) -> None:
        """Send one notification on ``topic`` (guessed from the payload when None)."""
        self.publish_body(topic or topic_of(notification), notification.priority, encode(notification))

    @abc.abstractmethod
    def publish_body(self, topic: str, priority: str, body: bytes) -> None:
        """Send an already encoded notification (the plain oslo.messaging dict as JSON)."""

    @abc.abstractmethod
    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything published is durably in the bus; raises TimeoutError."""

    @abc.abstractmethod
    def close(self, timeout: float | None = 30.0) -> None:
        """Flush (waiting up to ``timeout``) and release the connection."""

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Backlog:
    """Where a subscriber stands in its queue or stream: what ``novawatch model status`` shows.

    ``position`` is the bus position of the last notification acknowledged along with everything before
    it (a stream offset, an embedded sequence number; None on a queue, which has no positions); ``last``
    the newest position the bus holds; ``behind`` how many notifications are not applied yet (None when
    the bus cannot tell). ``broker`` is the address connected to, ``note`` what makes a figure uncertain.
    """

    queue: str
    kind: str  #: memory, embedded, classic, quorum or stream
    position: int | None = None
    last: int | None = None
    behind: int | None = None
    broker: str | None = None
    note: str | None = None


class Subscriber(abc.ABC):
    """An async iterator of :class:`Delivery`; use ``async with`` (or :meth:`close`) to stop it.

    Subscribers with the same ``group`` share the messages (each goes to one of them); every group sees
    every notification published after it first subscribed, as long as the bus keeps the group's queue.
    When it may not have (a RabbitMQ broker restarted and lost a transient queue or its bindings), the
    subscriber calls ``on_gap(reason)`` once it consumes again, so that the consumer can re-list its
    source; ``gaps`` counts them. ``problem`` says, while it lasts, what keeps the subscriber from
    consuming (the broker unreachable, a permission missing); None when all is well.
    """

    def __init__(self, group: str, topics: Sequence[str], decoder: Decoder | None) -> None:
        self.group = group
        self.topics = tuple(topics)
        self.decoder: Decoder = decoder or decode
        self.on_gap: GapCallback | None = None
        self.gaps = 0
        self.problem: str | None = None
        #: True for a subscriber that takes over from an earlier one of the same group: its first
        #: connection is then judged as a reconnection (was the queue kept meanwhile?).
        self.resumed = False

    def _gap(self, reason: str) -> None:
        self.gaps += 1
        if self.on_gap is not None:
            self.on_gap(reason)

    @property
    def position(self) -> int | None:
        """The bus position up to which every delivery was acknowledged (see :class:`Backlog`)."""
        return None

    @property
    def kind(self) -> str:
        """What it reads: memory, embedded, classic, quorum or stream (as :class:`Backlog` says)."""
        return "unknown"

    def resume_after(self, position: int) -> bool:
        """Start just after ``position`` (a checkpoint's) instead of where the group would; call before
        :meth:`start`. False when this bus cannot be read from a position (only a stream can)."""
        return False

    async def backlog(self) -> Backlog:
        """Where this subscriber stands, asked of the bus now; a bus that cannot tell says so."""
        return Backlog(self.group, "unknown", self.position, note="this bus does not report a backlog")

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[Delivery]: ...

    @abc.abstractmethod
    async def start(self) -> None:
        """Declare what must exist (queue, cursor) so that publications from now on are kept for the group."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop; deliveries not acknowledged are delivered again later (to this group)."""

    async def __aenter__(self) -> Subscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
