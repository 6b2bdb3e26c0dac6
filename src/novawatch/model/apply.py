"""The apply loop: decode -> de-duplicate -> dispatch -> apply, the model's hot path.

:meth:`Consumer.process` is the whole path in one function, on purpose: it does no I/O, logs
nothing per message, and allocates nothing beyond what decoding does, except for rejections.

Besides its outcome, a notification can be noted (counted in :class:`Stats`, still applied): decoded with a
warning (an enum value this reader does not know), a timestamp too far ahead of the clock to believe (it is
ordered by arrival instead, so that it cannot make later notifications look stale), or a message id seen
before with other content (applied: only the same id with the same content is a duplicate).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from novawatch.model.cluster import ClusterModel
from novawatch.model.deadletter import DeadLetters
from novawatch.model.handlers import HANDLERS
from novawatch.model.ordering import DEFAULT_RECENT_IDS, RecentIds, fingerprint
from novawatch.model.outcome import APPLIED, IGNORED, STALE
from novawatch.notifications import DEFAULT_MAX_BYTES, Rejected, UnknownEvent, decode_parts
from novawatch.notifications.timestamp import FUTURE_TOLERANCE, describe_ahead, horizon, seconds_ahead
from novawatch.objects.fields import NOTES, take_notes

#: Outcomes beyond the handlers' own (see :mod:`novawatch.model.outcome`).
DUPLICATE = 3
REJECTED = 4
# Notes, counted beside the outcomes (a noted notification has an outcome too).
_WARNED = 5
_FUTURE = 6
_REUSED = 7

#: A horizon no timestamp key reaches: the future check is off.
_NO_HORIZON = "\uffff"
_crc32 = zlib.crc32

Handler = Callable[[ClusterModel, Any, "str | None"], int]

_UNSET = msgspec.UNSET


def _skip_line(stream: BinaryIO) -> int:
    """Read past the end of the current line; the number of bytes skipped."""
    skipped = 0
    while True:
        chunk = stream.readline(1 << 20)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


class Stats(msgspec.Struct):
    """Counts of what the consumer did; ``ignored`` counts every notification that changed nothing.

    ``warnings``, ``future_timestamps`` and ``reused_ids`` count notes on notifications that also have one
    of the outcomes (see the module's docstring).
    """

    applied: int = 0
    not_needed: int = 0
    stale: int = 0
    duplicate: int = 0
    rejected: int = 0
    warnings: int = 0
    future_timestamps: int = 0
    reused_ids: int = 0

    @property
    def ignored(self) -> int:
        return self.not_needed + self.stale + self.duplicate

    @property
    def total(self) -> int:
        return self.applied + self.ignored + self.rejected

    def summary(self) -> str:
        """``applied N, ignored M (not needed a, stale b, duplicate c), rejected K``, then the notes if any."""
        text = (
            f"applied {self.applied}, ignored {self.ignored} (not needed {self.not_needed}, stale {self.stale}, "
            f"duplicate {self.duplicate}), rejected {self.rejected}"
        )
        if self.warnings or self.future_timestamps or self.reused_ids:
            text += (f"; noted: {self.warnings} with warnings, {self.future_timestamps} timestamps ahead of the "
                     f"clock (ordered by arrival), {self.reused_ids} reused message ids (applied)")
        return text


class Consumer:
    """Feeds raw notifications into a :class:`ClusterModel`; never raises for bad input."""

    def __init__(
        self,
        cluster: ClusterModel | None = None,
        *,
        handlers: Mapping[str, Handler] | None = None,
        recent_ids: int = DEFAULT_RECENT_IDS,
        dead_letters: DeadLetters | None = None,
        future_tolerance: float | None = FUTURE_TOLERANCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``future_tolerance``: seconds a timestamp may be ahead of ``clock`` (POSIX seconds) and still be
        believed; None believes every timestamp."""
        self.cluster = cluster if cluster is not None else ClusterModel()
        self.handlers: dict[str, Handler] = dict(HANDLERS if handlers is None else handlers)
        self.recent = RecentIds(recent_ids)
        self.dead_letters = dead_letters if dead_letters is not None else DeadLetters()
        # Outcome -> count, indexed by the outcome constants, then the notes (a list is the cheapest counter).
        self._counts = [0, 0, 0, 0, 0, 0, 0, 0]
        self.future_tolerance = future_tolerance
        self._clock = clock
        # Timestamp keys above this are checked against the clock (which only moves on, so it is refreshed
        # when a key passes it, not per notification).
        self._horizon = _NO_HORIZON if future_tolerance is None else horizon(clock(), future_tolerance)
        #: Name of the stream being replayed, prefixed to the ``where`` of dead letters.
        self.origin = ""
        #: What the last noted notification was noted for (a warning, a timestamp, a reused id), or None.
        self.last_note: str | None = None

    def process(self, data: bytes | str, where: object = None, legacy: bool | None = None) -> int:
        """Apply one notification (JSON bytes); returns its outcome (APPLIED, IGNORED, STALE, ...).

        ``legacy`` is what the topic it came on says about its format (None when unknown).
        """
        try:
            event_type, payload, message_id, key = decode_parts(data, legacy=legacy)
        except UnknownEvent:
            self._counts[IGNORED] += 1
            return IGNORED
        except Rejected as exc:
            return self._reject(where, exc.event_type, exc.reason, data)
        if NOTES.items:
            self._note(_WARNED, "; ".join(take_notes()))
        handler = self.handlers.get(event_type)
        if handler is None:
            self._counts[IGNORED] += 1
            return IGNORED
        if key is not None and key > self._horizon and self._ahead(key):
            key = None  # not believed: ordered by arrival, like a notification without a timestamp
        if message_id is not _UNSET:
            # RecentIds.seen, inlined: this runs for every notification (after the checks that can reject it,
            # so that a redelivery of a rejected notification is not taken for a duplicate).
            recent = self.recent
            seen = recent._seen
            content = _crc32(data) if type(data) is bytes else fingerprint(data)
            known = seen.get(message_id)
            if known is None:
                seen[message_id] = content
                order = recent._order
                order.append(message_id)
                if len(order) > recent.capacity:
                    del seen[order.popleft()]
            elif known == content:
                self._counts[DUPLICATE] += 1
                return DUPLICATE
            else:
                seen[message_id] = content
                self._note(_REUSED, f"message id {message_id!r} reused for other content: applied")
        try:
            outcome = handler(self.cluster, payload, key)
        except Exception as exc:  # a payload that decodes but cannot be applied
            return self._reject(where, event_type, f"cannot apply: {type(exc).__name__}: {exc}", data)
        self._counts[outcome] += 1
        return outcome

    def process_all(self, documents: Iterable[bytes | str]) -> Stats:
        """Apply many notifications in order; the stats after them."""
        process = self.process
        for number, data in enumerate(documents, 1):
            process(data, number)
        return self.stats

    def replay_file(self, path: str | Path) -> Stats:
        """Apply a stream file (JSONL, blank lines skipped); dead letters name ``path:line``."""
        process = self.process
        self.origin = str(path)
        limit = DEFAULT_MAX_BYTES
        try:
            with Path(path).open("rb") as stream:
                number = 0
                while True:
                    # Bounded reads: a hostile multi-gigabyte line is skipped, not loaded.
                    line = stream.readline(limit + 1)
                    if not line:
                        break
                    number += 1
                    if len(line) > limit and not line.endswith(b"\n"):
                        size = len(line) + _skip_line(stream)
                        self._reject(number, None, f"document is {size} bytes, over the limit of {limit}", line)
                    elif line.strip():
                        process(line, number)
        finally:
            self.origin = ""
        return self.stats

    @property
    def stats(self) -> Stats:
        c = self._counts
        return Stats(applied=c[APPLIED], not_needed=c[IGNORED], stale=c[STALE], duplicate=c[DUPLICATE],
                     rejected=c[REJECTED], warnings=c[_WARNED], future_timestamps=c[_FUTURE], reused_ids=c[_REUSED])

    @property
    def noted(self) -> int:
        """How many notes were taken so far (warnings, timestamps ahead of the clock, reused ids)."""
        c = self._counts
        return c[_WARNED] + c[_FUTURE] + c[_REUSED]

    def _note(self, kind: int, what: str) -> None:
        self._counts[kind] += 1
        self.last_note = what

    def _ahead(self, key: str) -> bool:
        """Whether a timestamp key is too far ahead of the clock to believe (noting it if so)."""
        assert self.future_tolerance is not None  # the horizon is unreachable otherwise
        now = self._clock()
        self._horizon = horizon(now, self.future_tolerance)
        seconds = seconds_ahead(key, now, self.future_tolerance)
        if seconds is None:
            return False
        self._note(_FUTURE, describe_ahead(key, seconds))
        return True

    def _reject(self, where: object, event_type: str | None, reason: str, data: bytes | str) -> int:
        if NOTES.items:  # what decoding noted before it rejected the notification
            take_notes()
        self._counts[REJECTED] += 1
        place = "" if where is None else str(where)
        if self.origin:
            place = f"{self.origin}:{place}"
        self.dead_letters.add(place, event_type, reason, data)
        return REJECTED
