"""Reading a RabbitMQ stream over AMQP 0-9-1: where a subscriber is in it, and what the stream holds.

A stream does not remember its AMQP readers: a consumer says where to start (``x-stream-offset``) each
time it subscribes, and acknowledgements only make room for more deliveries. So the subscriber keeps its
own :class:`StreamCursor`, the offset up to which every delivery was acknowledged, and subscribes again
just after it when a connection is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from datetime import UTC, datetime

from novawatch.bus import amqp
from novawatch.bus.queues import Offset, consume_arguments

#: Seconds to wait for a stream's first message when the broker said the stream is not empty.
PROBE_TIMEOUT = 10.0


class StreamCursor:
    """Where one subscriber stands in a stream.

    ``position`` is the offset of the last delivery acknowledged with every earlier delivery (what a
    checkpoint records: everything up to it was applied); ``received`` the highest offset delivered.
    Acknowledgements usually come in delivery order, which keeps this O(1) per delivery.
    """

    def __init__(self, start: Offset) -> None:
        self.restart(start)

    def restart(self, start: Offset) -> None:
        """Forget everything and start again at ``start`` (the stream was made anew)."""
        self.start = start
        self.position: int | None = None
        self.received: int | None = None
        self._first: int | None = None  # the first offset ever delivered
        self._since: datetime | None = None  # when a relative start ("next", "last") first subscribed
        self._marks: deque[tuple[int, int]] = deque()  # (delivery tag, offset), oldest unsettled first
        self._settled: set[int] = set()  # tags settled out of order, ahead of the oldest unsettled

    def resume(self) -> Offset:
        """Where to subscribe now: just after ``position``; before anything was acknowledged, the first
        offset delivered, or (nothing delivered yet) the moment a relative start first subscribed, so
        that what was published while the connection was down is not skipped."""
        if self.position is not None:
            return self.position + 1
        if self._first is not None:
            return self._first
        if self._since is not None:
            return self._since
        return self.start

    def subscribed(self) -> None:
        """A consumer started on a new channel: delivery tags start again."""
        self._marks.clear()
        self._settled.clear()
        if self._since is None and self.start in ("next", "last"):
            # one second early: a stream's timestamps are whole seconds, and repeats are harmless
            self._since = datetime.fromtimestamp(time.time() - 1.0, UTC)

    def delivered(self, tag: int, offset: int) -> None:
        self._marks.append((tag, offset))
        if self.received is None or offset > self.received:
            self.received = offset
        if self._first is None:
            self._first = offset

    def settled(self, tag: int) -> None:
        """Delivery ``tag`` was acknowledged: move ``position`` over what is now settled in order."""
        marks = self._marks
        if not marks:
            return
        if marks[0][0] != tag:
            self._settled.add(tag)
            return
        self.position = marks.popleft()[1]
        settled = self._settled
        while settled and marks and marks[0][0] in settled:
            settled.discard(marks[0][0])
            self.position = marks.popleft()[1]


async def first_offset(connection: amqp.Connection, stream: str, timeout: float = PROBE_TIMEOUT) -> int | None:
    """The offset of the oldest message ``stream`` still holds (None when none came within ``timeout``).

    A consumer of its own on a channel of its own, started at ``first``, reads one message and goes.
    """
    channel = await connection.channel()
    found: asyncio.Future[int | None] = connection.loop.create_future()

    def first(message: amqp.Message) -> None:
        if not found.done():
            found.set_result(message.stream_offset)

    try:
        await channel.basic_qos(1)
        await channel.basic_consume(stream, first, consume_arguments("first"))
        try:
            return await asyncio.wait_for(found, timeout)
        except TimeoutError:
            return None
    finally:
        with contextlib.suppress(amqp.AMQPError, ConnectionError):
            await channel.close()
