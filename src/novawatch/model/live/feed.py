"""The change feed behind the watch stream: numbered events kept in a ring, followed by any number of async
readers.

The model service publishes each change of the model (a node or instance upserted or deleted, as its
change events say), each notification consumed and each status change here, possibly from another
thread; the watch stream (server-sent events) reads from it. A reader resumes from a sequence number,
like a Kubernetes watch from a resourceVersion: when the number is older than what the ring still
holds, the reader is told to re-list (:class:`Expired`) instead of silently missing changes.

Sequence numbers start from zero in every run of the service (a checkpoint restores the model, not the
feed), and each replica counts its own. So each feed has an *incarnation*, random at its start, and a
position given to a client names it (:meth:`ChangeFeed.event_id`, ``SEQ.INCARNATION``): a position from
another run or another replica is recognised (:meth:`ChangeFeed.unresumable`) instead of resumed wrongly.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import threading
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import msgspec

#: A watch position as a client sends it back: ``SEQ`` (scripts, and ids from before incarnations) or
#: ``SEQ.INCARNATION`` (an event's id).
_POSITION = re.compile(r"([0-9]{1,18})(?:\.([0-9a-f]{1,32}))?")


class Position(NamedTuple):
    """A position in some run's feed: ``incarnation`` is None for a bare sequence number."""

    seq: int
    incarnation: str | None = None


def parse_position(text: str) -> Position | None:
    """``SEQ`` or ``SEQ.INCARNATION`` as a :class:`Position`; None when ``text`` is neither."""
    found = _POSITION.fullmatch(text)
    if found is None:
        return None
    return Position(int(found.group(1)), found.group(2))


class WatchEvent(msgspec.Struct, kw_only=True, frozen=True):
    """One event of the watch stream: ``kind`` is node | instance | notification | status; ``op`` is upsert |
    delete for entities, the outcome for a notification, what happened for a status."""

    seq: int
    kind: str
    op: str
    key: str
    data: dict[str, Any] | None = None


class Expired(LookupError):
    """The requested position is older than the oldest change kept; re-list, then watch from ``current``."""

    def __init__(self, since: int, oldest: int, current: int) -> None:
        super().__init__(f"changes after {since} are gone (oldest kept is {oldest}); re-list and watch from {current}")
        self.since = since
        self.oldest = oldest
        self.current = current


class ChangeFeed:
    """Thread-safe publisher side, asyncio reader side. Publishing never blocks on slow readers."""

    def __init__(self, capacity: int = 10000, incarnation: str | None = None) -> None:
        #: This run's name in event ids: random, so that no other run or replica has the same one.
        self.incarnation = incarnation or secrets.token_hex(6)
        self._ring: deque[WatchEvent] = deque(maxlen=max(1, capacity))
        self._seq = 0
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._closed = False

    @property
    def seq(self) -> int:
        """The sequence number of the newest change (0 before any)."""
        return self._seq

    def event_id(self, seq: int) -> str:
        """The id a client gets for position ``seq`` of this feed (and may send back to resume)."""
        return f"{seq}.{self.incarnation}"

    def unresumable(self, position: Position) -> str | None:
        """Why a reader cannot resume from ``position`` here (it must re-list), or None when it can as far as
        numbering goes (:meth:`since` may still find it too old)."""
        if position.incarnation is not None and position.incarnation != self.incarnation:
            return (f"position {position.seq}.{position.incarnation} is from another run of the service or "
                    f"another replica (this one is {self.incarnation})")
        if position.seq > self._seq:
            # A bare number from the future: this service restarted and counts from zero again.
            return f"position {position.seq} is ahead of this service's {self._seq}: it restarted"
        return None

    def publish(self, kind: str, op: str, key: str, data: dict[str, Any] | None = None) -> WatchEvent:
        """Append a change and wake the readers; callable from any thread."""
        with self._lock:
            self._seq += 1
            change = WatchEvent(seq=self._seq, kind=kind, op=op, key=key, data=data)
            self._ring.append(change)
            waiters = list(self._waiters)
        self._wake(waiters)
        return change

    def close(self) -> None:
        """End every reader's stream (service shutdown)."""
        with self._lock:
            self._closed = True
            waiters = list(self._waiters)
        self._wake(waiters)

    @staticmethod
    def _wake(waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]) -> None:
        for loop, event in waiters:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                event.set()
            else:
                # A closed loop means its reader is gone.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(event.set)

    def since(self, seq: int) -> list[WatchEvent]:
        """Changes after ``seq`` still kept; raises :class:`Expired` when some after it were dropped."""
        with self._lock:
            if seq >= self._seq:
                return []
            oldest = self._ring[0].seq if self._ring else self._seq + 1
            if seq + 1 < oldest:
                raise Expired(seq, oldest, self._seq)
            # The ring is contiguous, so the first wanted change sits at a known offset.
            start = seq + 1 - oldest
            return [self._ring[i] for i in range(start, len(self._ring))]

    async def follow(self, since: int | None = None,
                     heartbeat: float | None = None) -> AsyncIterator[WatchEvent | None]:
        """Changes after ``since`` (default: from now on), forever; ``None`` every ``heartbeat`` idle seconds."""
        position = self._seq if since is None else since
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        token = (loop, event)
        with self._lock:
            self._waiters.add(token)
        try:
            while True:
                event.clear()
                batch = self.since(position)
                for change in batch:
                    yield change
                if batch:
                    position = batch[-1].seq
                    continue
                if self._closed:
                    return
                try:
                    await asyncio.wait_for(event.wait(), timeout=heartbeat)
                except TimeoutError:
                    yield None
        finally:
            with self._lock:
                self._waiters.discard(token)
