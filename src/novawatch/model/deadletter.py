"""The dead-letter store: rejected notifications, kept with their reason, bounded in count and size."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from typing import NamedTuple

#: Rejected notifications kept (the count of all rejections is unbounded).
DEFAULT_CAPACITY = 1_000
#: Bytes of each rejected document kept (a hostile 4 MB document is not kept whole).
DEFAULT_EXCERPT = 2_048


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
        """Keep a rejected notification (truncated to the excerpt size)."""
        raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
        self._letters.append(DeadLetter(where, event_type, reason, bytes(raw[: self.excerpt]), len(raw)))
        self.total += 1
        self.by_event_type[event_type or "-"] += 1

    def __iter__(self) -> Iterator[DeadLetter]:
        return iter(self._letters)

    def __len__(self) -> int:
        return len(self._letters)
