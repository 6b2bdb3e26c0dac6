"""Helpers of the compute tests: a small cloud that records what it emits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from novawatch.bus import open_subscriber
from novawatch.bus.base import Subscriber, unwrap
from novawatch.compute import db
from novawatch.compute.clock import Ids, SimClock
from novawatch.compute.failures import FailureInjector
from novawatch.compute.service import ComputeService, open_service
from novawatch.notifications import Notifier, decode
from novawatch.notifications.drivers import MemoryDriver
from novawatch.notifications.event import VERSIONED_TOPIC

TIMEOUT = 120.0  # generous: every wait is for a condition


def stored_usage(url: str) -> dict[str, tuple[int, int, int, int]]:
    """Per node uuid, the usage its row in the database holds (vCPUs, MB, GB, running instances): what the
    workers wrote, where ``invariants.violations`` on a freshly opened service sees the usage it re-derived."""
    import psycopg

    from novawatch.compute.repository import normalize_url

    with psycopg.connect(normalize_url(url).replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows = conn.execute("SELECT uuid, vcpus_used, memory_mb_used, local_gb_used, running_vms "
                            "FROM compute_nodes").fetchall()
    return {r[0]: (r[1], r[2], r[3], r[4] or 0) for r in rows}


def advisory_lock(cls: int | None = None, name: str = "") -> tuple[str, tuple[int, int]]:
    """The ``pg_locks`` condition of a workers' advisory lock: ``name``'s in class ``cls`` (``INSTANCE_LOCKS``,
    ``HOST_LOCKS``, ``VOLUME_LOCKS`` of :mod:`novawatch.compute.shared`), or without ``cls`` the write lock."""
    from novawatch.compute.shared import WRITE_LOCK, lock_key

    if cls is None:
        return "classid = %s AND objid = %s AND objsubid = 1", (WRITE_LOCK >> 32, WRITE_LOCK % 2**32)
    return "classid = %s AND objid = %s AND objsubid = 2", (cls, lock_key(name) % 2**32)


def lock_waiters(conn: Any, lock: tuple[str, tuple[int, int]]) -> int:
    """How many connections wait for ``lock`` (an :func:`advisory_lock` condition), seen from psycopg ``conn``."""
    where, args = lock
    row = conn.execute(f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND {where}",
                       args).fetchone()
    return int(row[0]) if row else 0


def published(group: Any) -> list[dict[str, Any]]:
    """The notifications on an in-memory bus's consumer group (the ``bus`` fixture's), decoded, in order."""
    return [json.loads(unwrap(body)) for _, _, body, _ in list(group.ready)]


@contextlib.contextmanager
def reopened_consistent(url: str) -> Iterator[tuple[ComputeService, dict[str, tuple[int, int, int, int]]]]:
    """The database the workers left, opened afresh once its invariants hold and every node row holds what
    its instances claim (no lost update); yields the service and that usage per node uuid."""
    from novawatch.compute.invariants import expected_usage, violations

    svc = open_service(url, Notifier([]))
    try:
        assert violations(svc) == []
        expected = expected_usage(svc)
        assert stored_usage(url) == expected  # the rows as written
        yield svc, expected
    finally:
        svc.close()


@dataclass
class Cloud:
    """A compute service with three hosts and two flavors, recording what it emits."""

    service: ComputeService
    memory: MemoryDriver
    clock: SimClock

    @property
    def events(self) -> list[str]:
        return self.memory.event_types

    def take(self) -> list[str]:
        """The event types emitted since the last call (each must decode), then forget them."""
        for sent in self.memory.sent:
            decode(sent.body)
        events = self.memory.event_types
        self.memory.clear()
        return events

    def versioned(self) -> list[str]:
        """The versioned event types emitted since the last call (by topic: some legacy ones share the name)."""
        topics = [s.topic for s in self.memory.sent]
        return [e for e, topic in zip(self.take(), topics, strict=True) if topic == VERSIONED_TOPIC]


def make_cloud(url: str, *, fmt: str = "both", hosts: int = 3, seed: int = 1) -> Cloud:
    memory = MemoryDriver()
    clock = SimClock()
    notifier = Notifier([memory], notification_format=fmt, clock=clock.tick, message_ids=Ids(seed))
    svc = open_service(url, notifier, clock=clock, ids=Ids(seed + 1), failures=FailureInjector(0.0, seed=seed),
                       fresh=True)
    svc.create_flavor("m1.small", vcpus=1, memory_mb=2048, root_gb=20)
    svc.create_flavor("m1.medium", vcpus=2, memory_mb=4096, root_gb=40)
    for n in range(1, hosts + 1):
        svc.create_service(f"host-{n}", vcpus=4, memory_mb=8192, local_gb=100)
    svc.commit()
    memory.clear()
    return Cloud(svc, memory, clock)


def act(svc: ComputeService, action: Callable[[ComputeService], Any], instance: str | None = None) -> Any:
    """One action as a worker of ``compute serve --workers N`` runs it: the workers' lock (exclusive, or with
    ``instance`` that instance's lock and the write lock shared), the state brought up to date, the action,
    the commit (or the abort when it raised)."""
    assert svc.shared is not None
    with svc.shared.locked(instance, exclusive=instance is None):
        svc.sync()
        try:
            result = action(svc)
        except Exception:
            svc.abort()
            raise
        svc.commit()
        return result


def boot(cloud: Cloud, *, flavor: str = "m1.small", host: str | None = None, volume: int | None = None) -> db.Instance:
    """Boot an instance and forget the notifications it caused."""
    inst = cloud.service.boot("vm", cloud.service.flavor_by_name(flavor), host=host, boot_volume_gb=volume)
    cloud.take()
    return inst


class Listener:
    """A consumer group on the bus (created before anything is published) and what it received."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.group = f"listener-{uuid.uuid4().hex[:8]}"
        self.received: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        self.subscriber: Subscriber = open_subscriber(url, group=self.group)
        self.loop.run_until_complete(self.subscriber.start())

    def until(self, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        """Receive (and acknowledge) until ``done(everything received)``; everything received."""

        async def receive() -> None:
            if done(self.received):
                return
            async for delivery in self.subscriber:
                self.received.append(json.loads(unwrap(delivery.body)))
                await delivery.accept()
                if done(self.received):
                    return

        try:
            self.loop.run_until_complete(asyncio.wait_for(receive(), TIMEOUT))
        except TimeoutError:
            raise AssertionError(f"the awaited notifications did not arrive within {TIMEOUT:.0f}s; received "
                                 f"{len(self.received)}: {[n['event_type'] for n in self.received[-10:]]}") from None
        return self.received

    def close(self) -> None:
        self.loop.run_until_complete(self.subscriber.close())
        self.loop.close()
