"""The apply loop: decode -> de-duplicate -> dispatch -> apply, the model's hot path.

:meth:`Consumer.process` is the whole path in one function, on purpose: it does no I/O, logs
nothing per message, and allocates nothing beyond what decoding does, except for rejections.

Besides its outcome, a notification can be noted (counted in :class:`Stats`, still applied): a timestamp too
far ahead of the clock to believe (it is ordered by arrival instead, so that it cannot make later
notifications look stale), or a message id seen before with other content (applied: only the same id with
the same content is a duplicate).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from novawatch.model.changes import NOTIFICATION, Consumed
from novawatch.model.cluster import ClusterModel
from novawatch.model.deadletter import DeadLetters
from novawatch.model.handlers import HANDLERS
from novawatch.model.ordering import DEFAULT_RECENT_IDS, SAME, RecentIds, fingerprint
from novawatch.model.outcome import APPLIED, DUPLICATE, IGNORED, REJECTED, STALE, Outcome
from novawatch.notifications import DEFAULT_MAX_BYTES, Rejected, UnknownEvent
from novawatch.notifications.codec import Reader
from novawatch.notifications.timestamp import FUTURE_TOLERANCE, describe_ahead, horizon, seconds_ahead

# Notes, counted beside the outcomes (a noted notification has an outcome too).
_FUTURE = 5
_REUSED = 6

#: A horizon no timestamp key reaches: the future check is off.
_NO_HORIZON = "\uffff"

#: Bytes read from a stream file at a time: a notification is a few KB, so a small buffer would mean a
#: system call every few lines.
READ_BUFFER = 1 << 20

Handler = Callable[[ClusterModel, Any, "str | None"], int]


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

    ``future_timestamps`` and ``reused_ids`` count notes on notifications that also have one of the
    outcomes (see the module's docstring).
    """

    applied: int = 0
    not_needed: int = 0
    stale: int = 0
    duplicate: int = 0
    rejected: int = 0
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
        if self.future_timestamps or self.reused_ids:
            text += (f"; noted: {self.future_timestamps} timestamps ahead of the clock (ordered by arrival), "
                     f"{self.reused_ids} message ids reused for other content (applied)")
        return text


class Consumer:
    """Feeds raw notifications into a :class:`ClusterModel`; never raises for bad input.

    While someone listens to the model's changes (``cluster.changes.subscribe``), each notification also
    ends in one :class:`~novawatch.model.changes.Update`: the entities it changed and the notification
    itself (:class:`~novawatch.model.changes.Consumed`), whatever its outcome.
    """

    def __init__(
        self,
        cluster: ClusterModel | None = None,
        *,
        handlers: Mapping[str, Handler] | None = None,
        recent_ids: int = DEFAULT_RECENT_IDS,
        dead_letters: DeadLetters | None = None,
        future_tolerance: float | None = FUTURE_TOLERANCE,
        clock: Callable[[], float] = time.time,
        reader: Reader | None = None,
    ) -> None:
        """``future_tolerance``: seconds a timestamp may be ahead of ``clock`` (POSIX seconds) and still be
        believed; None believes every timestamp. ``reader``: the model's own by default, which validates the
        fields the handlers use (:mod:`novawatch.model.decoder`)."""
        from novawatch.model.decoder import MODEL_READER

        self.cluster = cluster if cluster is not None else ClusterModel()
        self.handlers: dict[str, Handler] = dict(HANDLERS if handlers is None else handlers)
        self.reader = MODEL_READER if reader is None else reader
        self.recent = RecentIds(recent_ids)
        self.dead_letters = dead_letters if dead_letters is not None else DeadLetters()
        # Outcome -> count, indexed by the outcomes, then the notes (a list is the cheapest counter).
        self._counts = [0, 0, 0, 0, 0, 0, 0]
        self.future_tolerance = future_tolerance
        self._clock = clock
        # Timestamp keys above this are checked against the clock (which only moves on, so it is refreshed
        # when a key passes it, not per notification).
        self._horizon = _NO_HORIZON if future_tolerance is None else horizon(clock(), future_tolerance)
        #: Name of the stream being replayed, prefixed to the ``where`` of dead letters.
        self.origin = ""
        # The last note, as (kind, what it is about, the clock then): formatted only when asked for.
        self._last_note: tuple[int, str, float] | None = None

    def process(self, data: bytes | str, where: object = None, legacy: bool | None = None) -> int:
        """Apply one notification (JSON bytes); returns its :class:`~novawatch.model.outcome.Outcome`.

        ``legacy`` is what the topic it came on says about its format (None when unknown).
        """
        try:
            event_type, payload, message_id, key, publisher_id, timestamp = self.reader.fields(data, legacy)
        except UnknownEvent as exc:
            self._counts[IGNORED] += 1
            if self.cluster.store.recorder is not None:
                self._tell(IGNORED, exc.event_type, None, None, None, None, None)
            return IGNORED
        except Rejected as exc:
            return self._reject(where, exc.event_type, exc.reason, data, exc)
        handler = self.handlers.get(event_type)
        if handler is None:
            self._counts[IGNORED] += 1
            if self.cluster.store.recorder is not None:
                self._tell(IGNORED, event_type, message_id, publisher_id, timestamp, payload, None)
            return IGNORED
        noted = 0
        if message_id is not None:
            # After the checks that can reject it, so that a redelivery of a rejected one is not a duplicate.
            seen = self.recent.seen(message_id, fingerprint(key, len(data)))
            if seen:
                if seen == SAME:
                    self._counts[DUPLICATE] += 1
                    if self.cluster.store.recorder is not None:
                        self._tell(DUPLICATE, event_type, message_id, publisher_id, timestamp, payload, None)
                    return DUPLICATE
                noted = _REUSED
                self._counts[_REUSED] += 1
                self._last_note = (_REUSED, message_id, 0.0)
        if key is not None and key > self._horizon and self._ahead(key):
            key = None  # not believed: ordered by arrival, like a notification without a timestamp
            noted = _FUTURE
        try:
            outcome = handler(self.cluster, payload, key)
        except Exception as exc:  # a payload that decodes but cannot be applied
            reason = f"cannot apply: {type(exc).__name__}: {exc}"
            return self._reject(where, event_type, reason, data, None, (message_id, publisher_id, timestamp))
        self._counts[outcome] += 1
        if self.cluster.store.recorder is not None:
            self._tell(outcome, event_type, message_id, publisher_id, timestamp, payload,
                       self.last_note if noted else None)
        return outcome

    def _tell(self, outcome: int, event_type: str | None, message_id: str | None, publisher_id: str | None,
              timestamp: str | None, payload: Any, reason: str | None) -> None:
        """Tell the model's listeners what this notification changed, and what became of it."""
        self.cluster.changes.commit(NOTIFICATION, Consumed(Outcome(outcome), event_type, message_id, publisher_id,
                                                           timestamp, payload, reason))

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
            with Path(path).open("rb", buffering=READ_BUFFER) as stream:
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
                    elif line[0] == 0x7B or line.strip():  # '{': not blank, without the copy strip() makes
                        process(line, number)
        finally:
            self.origin = ""
        return self.stats

    @property
    def stats(self) -> Stats:
        c = self._counts
        return Stats(applied=c[APPLIED], not_needed=c[IGNORED], stale=c[STALE], duplicate=c[DUPLICATE],
                     rejected=c[REJECTED], future_timestamps=c[_FUTURE], reused_ids=c[_REUSED])

    @property
    def noted(self) -> int:
        """How many notes were taken so far (timestamps ahead of the clock, reused ids)."""
        c = self._counts
        return c[_FUTURE] + c[_REUSED]

    @property
    def last_note(self) -> str | None:
        """What the last noted notification was noted for (its timestamp, a reused id), or None."""
        if self._last_note is None:
            return None
        kind, what, when = self._last_note
        if kind == _FUTURE:
            return describe_ahead(what, seconds_ahead(what, when, 0.0) or 0.0)
        return f"message id {what!r} reused for other content: applied"

    def _ahead(self, key: str) -> bool:
        """Whether a timestamp key is too far ahead of the clock to believe (noting it if so)."""
        assert self.future_tolerance is not None  # the horizon is unreachable otherwise
        now = self._clock()
        self._horizon = horizon(now, self.future_tolerance)
        if key <= self._horizon:
            return False
        self._counts[_FUTURE] += 1
        self._last_note = (_FUTURE, key, now)
        return True

    def _reject(self, where: object, event_type: str | None, reason: str, data: bytes | str,
                exc: Rejected | None = None, head: tuple[str | None, str | None, str | None] | None = None) -> int:
        """Count and keep a rejected notification; ``exc`` or ``head`` give its own message id, publisher id
        and timestamp when they were read."""
        self._counts[REJECTED] += 1
        place = "" if where is None else str(where)
        if self.origin:
            place = f"{self.origin}:{place}"
        self.dead_letters.add(place, event_type, reason, data)
        if self.cluster.store.recorder is not None:
            if head is None:
                head = (exc.message_id, exc.publisher_id, exc.timestamp) if exc is not None else (None, None, None)
            self._tell(REJECTED, event_type, *head, None, reason)
        return REJECTED
