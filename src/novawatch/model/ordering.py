"""Ordering, de-duplication and tombstones: what keeps the model from going backwards.

Timestamps are compared as text: oslo.messaging writes ``YYYY-MM-DD HH:MM:SS.ffffff`` (fixed width,
naive UTC), which sorts lexically in time order; anything else readable is normalised to that form
(``novawatch.notifications.timestamp``, which also says what is not a timestamp).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

from novawatch.notifications.timestamp import sort_key

#: Recent message ids remembered for de-duplication.
DEFAULT_RECENT_IDS = 200_000
#: Deleted entities remembered so that late notifications cannot bring them back.
DEFAULT_TOMBSTONES = 200_000


def timestamp_key(text: str) -> str | None:
    """The sortable form of a notification timestamp, or None when it is not a date-time in UTC's range."""
    try:
        return sort_key(text)
    except ValueError:
        return None


def fingerprint(key: str | None, size: int) -> int:
    """What tells a redelivery from other content under the same message id: the timestamp (its sortable
    key, None when absent) and the size in bytes, which a redelivery repeats exactly.

    Cheap on purpose (no pass over the bytes): other content with the same id, the same timestamp to the
    microsecond and the same size is taken for a duplicate.
    """
    return hash(key) ^ size


#: What :meth:`RecentIds.seen` says about a message id and content.
NEW, SAME, REUSED = 0, 1, 2

#: The fingerprint of ids restored from a checkpoint: ``hash`` differs between processes, so their content is
#: unknown and a redelivery of any content counts as the same. No fingerprint equals it (they are signed 64-bit
#: values) and it still fits an unsigned 64-bit integer, as a checkpoint stores it.
ANY_CONTENT = (1 << 64) - 1


class RecentIds:
    """The most recent message ids with a fingerprint of their content, bounded (oldest forgotten first).

    An id seen again with the same fingerprint is a duplicate (a redelivery); with another, the id was
    reused for different content, which is not a duplicate.
    """

    __slots__ = ("_order", "_seen", "capacity")

    def __init__(self, capacity: int = DEFAULT_RECENT_IDS) -> None:
        self.capacity = capacity
        self._seen: dict[str, int] = {}
        self._order: deque[str] = deque()

    def seen(self, message_id: str, content: int = 0) -> int:
        """NEW (now remembered), SAME (a duplicate) or REUSED (another content; now remembered instead)."""
        seen = self._seen
        old = seen.get(message_id)
        if old is not None:
            if old in (content, ANY_CONTENT):
                return SAME
            seen[message_id] = content
            return REUSED
        seen[message_id] = content
        order = self._order
        order.append(message_id)
        if len(order) > self.capacity:
            del seen[order.popleft()]
        return NEW

    def __len__(self) -> int:
        return len(self._seen)

    def ids(self) -> list[str]:
        """The message ids remembered, oldest first (a copy: the dict keeps the order the deque does)."""
        return list(self._seen)

    def restore(self, ids: list[str]) -> None:
        """Remember ``ids`` (oldest first, as :meth:`ids` gave them) seen by another process, whose fingerprints
        mean nothing here: any content under these ids counts as a redelivery."""
        ids = ids[-self.capacity:] if len(ids) > self.capacity else ids
        if not self._seen:  # the usual case, a model just made: at C speed
            self._seen = dict.fromkeys(ids, ANY_CONTENT)
            self._order = deque(self._seen)
            return
        for message_id in ids:
            if message_id not in self._seen:
                self._order.append(message_id)
            self._seen[message_id] = ANY_CONTENT
        while len(self._order) > self.capacity:
            del self._seen[self._order.popleft()]


class Tombstones:
    """Bounded uuid -> deletion timestamp of deleted entities (oldest forgotten first)."""

    __slots__ = ("_dead", "capacity")

    def __init__(self, capacity: int = DEFAULT_TOMBSTONES) -> None:
        self.capacity = capacity
        self._dead: OrderedDict[str, str] = OrderedDict()

    def bury(self, uuid: str, ts: str | None) -> None:
        """Record a deletion (``ts`` None when the notification had no timestamp)."""
        self._dead[uuid] = ts or ""
        self._dead.move_to_end(uuid)
        if len(self._dead) > self.capacity:
            self._dead.popitem(last=False)

    def __contains__(self, uuid: object) -> bool:
        return uuid in self._dead

    def items(self) -> list[tuple[str, str]]:
        """(uuid, deletion timestamp), oldest first (a copy)."""
        return list(self._dead.items())

    def restore(self, items: list[tuple[str, str]] | list[list[Any]]) -> None:
        """Bury ``items`` (oldest first, as :meth:`items` gave them)."""
        if not self._dead:  # a model just made: at C speed
            self._dead = OrderedDict(items[-self.capacity:] if len(items) > self.capacity else items)
            return
        for uuid, ts in items:
            self.bury(uuid, ts)

    def forget(self, uuid: str) -> None:
        """Drop a tombstone (the entity was found alive in the source)."""
        self._dead.pop(uuid, None)

    def __len__(self) -> int:
        return len(self._dead)
