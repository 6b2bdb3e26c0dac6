"""Which kind of RabbitMQ queue a subscriber reads (classic, quorum, stream), and where in a stream it starts.

``classic`` is what an oslo.messaging listener pool declares, and the default. ``quorum`` is a replicated,
always durable queue (Raft): it survives the loss of a minority of a cluster's nodes without losing what it
holds. ``stream`` is a replicated append-only log: reading does not remove anything, so any number of
model services read the same stream, each from an offset (or a time) of its own, and a restarted one
replays from where it was instead of listing its source again.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from novawatch.bus.base import BusError

QueueType = Literal["classic", "quorum", "stream"]
QUEUE_TYPES: tuple[QueueType, ...] = ("classic", "quorum", "stream")

#: Where a stream consumer starts: "first" (the oldest notification the stream holds), "last" (its last
#: chunk), "next" (what is published from now on), an offset, or a moment (what was published since).
Offset = int | datetime | Literal["first", "last", "next"]
_NAMED = ("first", "last", "next")

_AGE = re.compile(r"^\d+[YMDhms]$")


def queue_type(text: object) -> QueueType:
    """``text`` as a queue type; :class:`BusError` naming the choices otherwise."""
    value = str(text).strip().lower()
    for kind in QUEUE_TYPES:
        if value == kind:
            return kind
    raise BusError(f"unknown queue_type {text!r} in the bus URL: use classic, quorum or stream")


def stream_offset(value: object) -> Offset:
    """A stream start: an int, a datetime, or text (``first``, ``last``, ``next``, ``12345``, or an ISO 8601
    time such as ``2026-12-04T10:00:00Z``; a time without a zone is UTC). :class:`BusError` otherwise."""
    if isinstance(value, bool):
        raise BusError(f"not a stream offset: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise BusError(f"stream offset {value} is negative: offsets start at 0")
        return value
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if text.lower() in _NAMED:
        return text.lower()  # type: ignore[return-value]
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BusError(f"not a stream offset: {text!r}: use first, last, next, an offset (a number) or a time "
                       "(ISO 8601, e.g. 2026-12-04T10:00:00Z)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def describe(offset: Offset) -> str:
    """One offset as the log and the status show it."""
    if isinstance(offset, datetime):
        return offset.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return str(offset)


def consume_arguments(offset: Offset) -> dict[str, Any]:
    """``basic.consume`` arguments that start a stream consumer at ``offset``.

    A moment travels as an AMQP timestamp, which has whole seconds: it is rounded down, so the consumer
    may see up to a second more than asked for (repeats the model drops), never less.
    """
    if isinstance(offset, datetime):
        return {"x-stream-offset": offset.astimezone(UTC).replace(microsecond=0)}
    return {"x-stream-offset": offset}


def age(text: object) -> str:
    """A stream's ``x-max-age`` (``7D``, ``12h``, ``30m``...); :class:`BusError` when it is not one."""
    value = str(text).strip()
    if not _AGE.match(value):
        raise BusError(f"max_age {text!r} in the bus URL is not an age: write a number and a unit, "
                       "Y, M, D, h, m or s (e.g. 7D, 12h)")
    return value


def queue_arguments(
    kind: QueueType, *, max_age: str | None = None, max_length_bytes: int | None = None,
    segment_bytes: int | None = None,
) -> dict[str, Any] | None:
    """The ``queue.declare`` arguments of a queue of type ``kind`` (None for a classic one: no arguments,
    exactly as an oslo.messaging listener pool declares its queue).

    The retention options concern streams only: a stream keeps everything until one of them says
    otherwise, and removes whole segments (``segment_bytes`` each) once they are older than ``max_age``
    or the stream is larger than ``max_length_bytes``.
    """
    if kind == "classic":
        return None
    arguments: dict[str, Any] = {"x-queue-type": kind}
    if kind == "stream":
        if max_age is not None:
            arguments["x-max-age"] = max_age
        if max_length_bytes is not None:
            arguments["x-max-length-bytes"] = max_length_bytes
        if segment_bytes is not None:
            arguments["x-stream-max-segment-size-bytes"] = segment_bytes
    return arguments
