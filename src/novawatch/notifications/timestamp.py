"""Notification timestamps: which are accepted, their sortable form, and which are too far ahead to believe.

* A timestamp must be a date-time: oslo.messaging's ``YYYY-MM-DD HH:MM:SS.ffffff`` (naive UTC) or ISO 8601,
  with or without an offset. Anything else is not one (:func:`sort_key` raises, the decoder rejects).
* It must be a date in UTC: ``9999-12-31T23:59:59-01:00`` is not (year 10000), and is rejected as out of range.
* One more than :data:`FUTURE_TOLERANCE` seconds ahead of the reader's wall clock is accepted but not believed:
  the data model orders it by arrival, as if it had no timestamp, and counts it (:func:`seconds_ahead`).

Sortable keys are oslo's fixed-width form, which sorts lexically in time order.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from novawatch.objects.fields import shorten

#: Seconds a timestamp may be ahead of the reader's clock (clock skew between hosts) and still be believed.
FUTURE_TOLERANCE = 60.0

_fromisoformat = datetime.fromisoformat
_EXPECTED = "oslo's 'YYYY-MM-DD HH:MM:SS.ffffff' or ISO 8601"


def sort_key(text: str) -> str:
    """The sortable form (naive UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``) of a timestamp.

    ``ValueError`` with the reason when it is not a date-time or not a date in UTC.
    """
    try:
        moment = _fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError(f"timestamp {shorten(text)} is not a date-time ({_EXPECTED})") from None
    if moment.tzinfo is None:
        if len(text) == 26 and text[10] == " " and text[19] == ".":
            return text  # already the sortable form
    else:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise ValueError(f"timestamp {shorten(text)} is out of range: not a date in UTC") from None
    return moment.isoformat(" ", "microseconds")


def clock_key(seconds: float) -> str:
    """The sortable form of a POSIX time (the latest one when ``seconds`` is past year 9999)."""
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        moment = datetime.max
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")


def horizon(now: float | None = None, tolerance: float = FUTURE_TOLERANCE) -> str:
    """The newest sortable key still believed at ``now`` (the wall clock when None)."""
    return clock_key((time.time() if now is None else now) + tolerance)


def seconds_ahead(key: str, now: float | None = None, tolerance: float = FUTURE_TOLERANCE) -> float | None:
    """How far ``key`` is ahead of the clock when that is more than ``tolerance``, else None."""
    clock = time.time() if now is None else now
    if key <= horizon(clock, tolerance):
        return None
    moment = datetime.fromisoformat(key).replace(tzinfo=UTC)
    return moment.timestamp() - clock


def describe_ahead(text: str, seconds: float) -> str:
    """The warning about a timestamp too far ahead of the clock, with what the data model does with it."""
    return (f"timestamp {shorten(text)} is {_duration(seconds)} ahead of the clock: "
            "the model orders it by arrival, as if it had none")


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.0f} {unit}"
    return f"{seconds:,.0f} seconds"
