"""Ordering, de-duplication and tombstones: what keeps the model from going backwards.

Timestamps are compared as text: oslo.messaging writes ``YYYY-MM-DD HH:MM:SS.ffffff`` (fixed width,
naive UTC), which sorts lexically in time order; anything else readable is normalised to that form.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from novawatch.notifications.message import format_timestamp, parse_timestamp

#: Recent message ids remembered for de-duplication.
DEFAULT_RECENT_IDS = 200_000
#: Deleted entities remembered so that late notifications cannot bring them back.
DEFAULT_TOMBSTONES = 200_000


def timestamp_key(text: str) -> str | None:
    """The sortable form of a notification timestamp, or None when it is not a date-time."""
    if len(text) == 26 and text[10] == " " and text[19] == "." and text[4] == "-":
        return text
    moment = parse_timestamp(text)
    return format_timestamp(moment) if moment is not None else None


class RecentIds:
    """A bounded set of the most recent message ids (oldest forgotten first)."""

    __slots__ = ("_order", "_seen", "capacity")

    def __init__(self, capacity: int = DEFAULT_RECENT_IDS) -> None:
        self.capacity = capacity
        self._seen: set[str] = set()
        self._order: deque[str] = deque()

    def seen(self, message_id: str) -> bool:
        """True when the id was seen recently; otherwise remember it and return False."""
        if message_id in self._seen:
            return True
        self._seen.add(message_id)
        order = self._order
        order.append(message_id)
        if len(order) > self.capacity:
            self._seen.discard(order.popleft())
        return False

    def __len__(self) -> int:
        return len(self._seen)


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

    def forget(self, uuid: str) -> None:
        """Drop a tombstone (the entity was found alive in the source)."""
        self._dead.pop(uuid, None)

    def __len__(self) -> int:
        return len(self._dead)
