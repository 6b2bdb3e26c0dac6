"""The apply loop: decode -> de-duplicate -> dispatch -> apply, the model's hot path.

:meth:`Consumer.process` is the whole path in one function, on purpose: it does no I/O, logs
nothing per message, and allocates nothing beyond what decoding does, except for rejections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from novawatch.model.cluster import ClusterModel
from novawatch.model.deadletter import DeadLetters
from novawatch.model.handlers import HANDLERS
from novawatch.model.ordering import DEFAULT_RECENT_IDS, RecentIds, timestamp_key
from novawatch.model.outcome import APPLIED, IGNORED, STALE
from novawatch.notifications import DEFAULT_MAX_BYTES, Rejected, UnknownEvent, decode_parts

#: Outcomes beyond the handlers' own (see :mod:`novawatch.model.outcome`).
DUPLICATE = 3
REJECTED = 4

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
    """Counts of what the consumer did; ``ignored`` counts every notification that changed nothing."""

    applied: int = 0
    not_needed: int = 0
    stale: int = 0
    duplicate: int = 0
    rejected: int = 0

    @property
    def ignored(self) -> int:
        return self.not_needed + self.stale + self.duplicate

    @property
    def total(self) -> int:
        return self.applied + self.ignored + self.rejected

    def summary(self) -> str:
        """``applied N, ignored M (not needed a, stale b, duplicate c), rejected K``."""
        return (
            f"applied {self.applied}, ignored {self.ignored} (not needed {self.not_needed}, stale {self.stale}, "
            f"duplicate {self.duplicate}), rejected {self.rejected}"
        )


class Consumer:
    """Feeds raw notifications into a :class:`ClusterModel`; never raises for bad input."""

    def __init__(
        self,
        cluster: ClusterModel | None = None,
        *,
        handlers: Mapping[str, Handler] | None = None,
        recent_ids: int = DEFAULT_RECENT_IDS,
        dead_letters: DeadLetters | None = None,
    ) -> None:
        self.cluster = cluster if cluster is not None else ClusterModel()
        self.handlers: dict[str, Handler] = dict(HANDLERS if handlers is None else handlers)
        self.recent = RecentIds(recent_ids)
        self.dead_letters = dead_letters if dead_letters is not None else DeadLetters()
        # Outcome -> count, indexed by the outcome constants (a list is the cheapest counter).
        self._counts = [0, 0, 0, 0, 0]
        #: Name of the stream being replayed, prefixed to the ``where`` of dead letters.
        self.origin = ""

    def process(self, data: bytes | str, where: object = None) -> int:
        """Apply one notification (JSON bytes); returns its outcome (APPLIED, IGNORED, STALE, ...)."""
        try:
            event_type, payload, message_id, ts = decode_parts(data)
        except UnknownEvent:
            self._counts[IGNORED] += 1
            return IGNORED
        except Rejected as exc:
            return self._reject(where, exc.event_type, exc.reason, data)
        handler = self.handlers.get(event_type)
        if handler is None:
            self._counts[IGNORED] += 1
            return IGNORED
        if ts is _UNSET:
            key = None
        elif len(ts) == 26 and ts[10] == " " and ts[19] == ".":
            key = ts  # already oslo's sortable form (timestamp_key's fast case)
        else:
            key = timestamp_key(ts)
            if key is None:
                return self._reject(where, event_type, f"timestamp {ts!r} is not a date-time", data)
        if message_id is not _UNSET:
            # RecentIds.seen, inlined: this runs for every notification (after the checks that can reject it,
            # so that a redelivery of a rejected notification is not taken for a duplicate).
            recent = self.recent
            if message_id in recent._seen:
                self._counts[DUPLICATE] += 1
                return DUPLICATE
            recent._seen.add(message_id)
            recent._order.append(message_id)
            if len(recent._order) > recent.capacity:
                recent._seen.discard(recent._order.popleft())
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
                     rejected=c[REJECTED])

    def _reject(self, where: object, event_type: str | None, reason: str, data: bytes | str) -> int:
        self._counts[REJECTED] += 1
        place = "" if where is None else str(where)
        if self.origin:
            place = f"{self.origin}:{place}"
        self.dead_letters.add(place, event_type, reason, data)
        return REJECTED
