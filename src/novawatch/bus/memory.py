"""``memory://NAME``: an in-process bus for tests and embedding; same semantics as the durable ones, no disk."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from novawatch.bus.base import DEFAULT_TOPICS, Backlog, BusError, Decoder, Delivery, Publisher, Subscriber
from novawatch.bus.url import BusURL


@dataclass
class DeadLetter:
    """A message a consumer could not use, and why."""

    topic: str
    body: bytes
    reason: str


@dataclass
class _Group:
    topics: frozenset[str]
    ready: deque[tuple[int, str, bytes, bool]] = field(default_factory=deque)
    unacked: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


class MemoryBus:
    """The shared state behind one ``memory://NAME``: a queue per consumer group."""

    _buses: dict[str, MemoryBus] = {}
    _registry_lock = threading.Lock()

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.groups: dict[str, _Group] = {}
        self._ids = itertools.count(1)

    @classmethod
    def named(cls, name: str) -> MemoryBus:
        with cls._registry_lock:
            return cls._buses.setdefault(name, cls())

    @classmethod
    def reset(cls, name: str | None = None) -> None:
        """Forget one bus (or all): for test isolation."""
        with cls._registry_lock:
            if name is None:
                cls._buses.clear()
            else:
                cls._buses.pop(name, None)

    def group(self, name: str, topics: Sequence[str] = DEFAULT_TOPICS) -> _Group:
        with self.lock:
            return self.groups.setdefault(name, _Group(frozenset(topics)))

    def dead_letters(self, group: str) -> list[DeadLetter]:
        with self.lock:
            g = self.groups.get(group)
            return list(g.dead) if g else []

    def put(self, topic: str, body: bytes) -> None:
        wake: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        with self.lock:
            for g in self.groups.values():
                if topic in g.topics:
                    g.ready.append((next(self._ids), topic, body, False))
                    wake.extend(g.waiters)
        for loop, event in wake:
            _wake(loop, event)

    def requeue(self, group: _Group, ids: Sequence[int]) -> None:
        with self.lock:
            for tag in sorted(ids, reverse=True):
                item = group.unacked.pop(tag, None)
                if item is not None:
                    group.ready.appendleft((tag, item[0], item[1], True))
            waiters = list(group.waiters)
        for loop, event in waiters:
            _wake(loop, event)


def _wake(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    with contextlib.suppress(RuntimeError):  # that subscriber's loop is closed; it will not wait again
        loop.call_soon_threadsafe(event.set)


class MemoryPublisher(Publisher):
    """Publishes to ``memory://NAME``; everything is "durable" as soon as ``publish`` returns."""

    def __init__(self, url: BusURL, **_: Any) -> None:
        self.bus = MemoryBus.named(url.path)
        self.closed = False

    def publish_body(self, topic: str, priority: str, body: bytes) -> None:
        if self.closed:
            raise BusError("publisher is closed")
        self.bus.put(topic, body)

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = 30.0) -> None:
        self.closed = True


class _MemoryDelivery(Delivery):
    __slots__ = ("_group", "_subscriber", "_tag")

    def __init__(self, subscriber: MemorySubscriber, tag: int, topic: str, body: bytes, redelivered: bool) -> None:
        super().__init__(body, topic, subscriber.decoder, redelivered)
        self._subscriber = subscriber
        self._tag = tag

    async def _ack(self) -> None:
        self._subscriber.settle(self._tag)

    async def _dead_letter(self, reason: str) -> None:
        self._subscriber.settle(self._tag, DeadLetter(self.topic, self.body, reason))


class MemorySubscriber(Subscriber):
    """Consumes ``memory://NAME`` for a consumer group."""

    def __init__(
        self, url: BusURL, *, group: str, topics: Sequence[str], decoder: Decoder | None = None, **_: Any
    ) -> None:
        super().__init__(group, topics, decoder)
        self.bus = MemoryBus.named(url.path)
        self._group: _Group | None = None
        self._mine: set[int] = set()
        self._closed = False

    @property
    def kind(self) -> str:
        return "memory"

    async def start(self) -> None:
        if self._group is None:
            self._group = self.bus.group(self.group, self.topics)

    def settle(self, tag: int, dead: DeadLetter | None = None) -> None:
        assert self._group is not None
        with self.bus.lock:
            self._group.unacked.pop(tag, None)
            if dead is not None:
                self._group.dead.append(dead)
        self._mine.discard(tag)

    async def __aiter__(self) -> AsyncIterator[Delivery]:
        await self.start()
        group = self._group
        assert group is not None
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self.bus.lock:
            group.waiters.append(waiter)
        try:
            while not self._closed:
                with self.bus.lock:
                    item = group.ready.popleft() if group.ready else None
                    if item is None:
                        event.clear()
                    else:
                        group.unacked[item[0]] = (item[1], item[2])
                if item is None:
                    await event.wait()
                    continue
                self._mine.add(item[0])
                yield _MemoryDelivery(self, *item)
        finally:
            with self.bus.lock:
                group.waiters.remove(waiter)

    async def backlog(self) -> Backlog:
        """What waits in the group's queue, plus what was delivered here and not acknowledged yet."""
        if self._group is None:
            return Backlog(self.group, "memory", note="not started")
        with self.bus.lock:
            waiting = len(self._group.ready)
        return Backlog(self.group, "memory", behind=waiting + len(self._mine))

    async def close(self) -> None:
        self._closed = True
        if self._group is not None:
            self.bus.requeue(self._group, list(self._mine))
            self._mine.clear()
            for loop, event in list(self._group.waiters):
                _wake(loop, event)
