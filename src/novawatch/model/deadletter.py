"""The dead-letter store: rejected notifications, kept with their reason, bounded in count and size."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from typing import NamedTuple

from novawatch.notifications.catalog import SHARED_LEGACY, TABLE

#: Rejected notifications kept (the count of all rejections is unbounded).
DEFAULT_CAPACITY = 1_000
#: Bytes of each rejected document kept (a hostile 4 MB document is not kept whole).
DEFAULT_EXCERPT = 2_048
#: Characters of an event type and of a reason kept (both can come from the wire).
MAX_TEXT = 256
#: The key of ``by_event_type`` for rejections whose event type is not in the catalog (or absent).
OTHER = "-"


class DeadLetter(NamedTuple):
    """One rejected notification: where it came from, its event type if known, why, and its start."""

    where: str
    event_type: str | None
    reason: str
    excerpt: bytes
    size: int


class DeadLetters:
    """The most recent rejections, plus counts by event type of every rejection ever."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, excerpt: int = DEFAULT_EXCERPT) -> None:
        self._letters: deque[DeadLetter] = deque(maxlen=capacity)
        self.excerpt = excerpt
        self.total = 0
        self.by_event_type: Counter[str] = Counter()

    def add(self, where: str, event_type: str | None, reason: str, data: bytes | str) -> None:
        """Keep a rejected notification (its text cut short: a hostile one is not kept whole).

        ``by_event_type`` counts the catalog's event types by name and every other one under ``OTHER``, so
        that random event types cannot grow it without bound.
        """
        raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
        shown = event_type[:MAX_TEXT] if event_type is not None else None
        if len(reason) > MAX_TEXT * 4:
            reason = reason[: MAX_TEXT * 4] + "..."
        self._letters.append(DeadLetter(where, shown, reason, bytes(raw[: self.excerpt]), len(raw)))
        self.total += 1
        key = OTHER
        if event_type is not None and (event_type in TABLE or event_type in SHARED_LEGACY):
            key = event_type
        self.by_event_type[key] += 1

    def __iter__(self) -> Iterator[DeadLetter]:
        return iter(self._letters)

    def __len__(self) -> int:
        return len(self._letters)
