"""The transactional outbox and the service's transactions: only what was committed reaches the bus.

Real databases (SQLite, PostgreSQL) and real buses (the embedded bus, a RabbitMQ broker); the service is
used as the compute app uses it (an action, then ``commit()``, or ``abort()`` when the action raised).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from computehelpers import TIMEOUT, Listener
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from novawatch.bus import open_publisher
from novawatch.bus.base import Publisher
from novawatch.compute import db
from novawatch.compute.errors import InvalidState, StorageRefused
from novawatch.compute.outbox import Outbox
from novawatch.compute.repository import make_engine
from novawatch.compute.service import ComputeService, open_service
from novawatch.compute.source import ComputeSource
from novawatch.model import Consumer, from_snapshot, to_snapshot
from novawatch.notifications import Notifier
from novawatch.notifications.drivers import MemoryDriver


@pytest.fixture(params=["embedded", "rabbit"])
def bus_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "embedded":
        return f"embedded://{tmp_path}/bus"
    broker = request.getfixturevalue("rabbitmq")
    # an exchange of its own: nothing another test publishes reaches this test's queue
    return f"{broker.amqp_url}?exchange=outbox-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def listener(bus_url: str) -> Iterator[Listener]:
    lis = Listener(bus_url)
    try:
        yield lis
    finally:
        lis.close()


def served(db_url: str, publisher: Publisher, *, fresh: bool = True) -> ComputeService:
    """The service as ``compute serve`` runs it: notifications through the outbox to ``publisher``."""
    svc = open_service(db_url, Notifier([], notification_format="versioned"), publisher=publisher, fresh=fresh)
    if fresh:
        svc.create_flavor("m1.small", vcpus=1, memory_mb=2048, root_gb=20)
        svc.create_service("host-1", vcpus=8, memory_mb=16384, local_gb=400)
        svc.commit()
    return svc


def ids(notes: list[dict[str, Any]]) -> list[str]:
    return [n["message_id"] for n in notes]


def events(notes: list[dict[str, Any]]) -> list[str]:
    return [n["event_type"] for n in notes]


def outbox_rows(svc: ComputeService) -> int:
    with Session(svc.repo.engine) as session:
        return int(session.scalar(select(func.count()).select_from(db.OutboxMessage)) or 0)


def test_only_committed_actions_reach_the_bus(db_url: str, bus_url: str, listener: Listener) -> None:
    publisher = open_publisher(bus_url)
    svc = served(db_url, publisher)
    try:
        seeded = listener.until(lambda got: len(got) >= 3)
        assert events(seeded) == ["flavor.create", "service.create", "compute_node.create"]
        small = svc.flavor_by_name("m1.small")

        # An action whose transaction is rolled back: nothing of it is published, nothing of it is kept.
        gone = svc.boot("rolled-back", small)
        assert svc.outbox is not None and svc.outbox.pending
        svc.rollback()
        assert gone.uuid not in svc.instances and not svc.outbox.pending
        small = svc.flavor_by_name("m1.small")  # (the rows of before the rollback were replaced)

        # A refused action (raised before it changed anything) costs nothing and sends nothing.
        kept = svc.boot("kept", small)
        svc.commit()
        with pytest.raises(InvalidState):
            svc.unpause(kept.uuid)
        svc.abort()

        # What was committed arrives, in order, with the message ids it was emitted with.
        svc.lock(kept.uuid, "marker")
        svc.commit()
        got = listener.until(lambda got: "instance.lock" in events(got))
        after = got[3:]
        assert kept.uuid in json.dumps(after) and gone.uuid not in json.dumps(after)
        assert "rolled-back" not in json.dumps(after)
        assert events(after)[-1] == "instance.lock"
        assert events(after).count("instance.create.end") == 1
        assert svc.outbox.drain(TIMEOUT) and outbox_rows(svc) == 0
        assert svc.outbox.sent == len(got)
    finally:
        svc.close()
        publisher.close()


def _refused_values(db_url: str) -> list[tuple[str, dict[str, Any]]]:
    cases = [("overflow", {"memory_mb": 2**70})]  # an INTEGER column: SQLite and PostgreSQL refuse it
    if db_url.startswith("postgresql"):
        cases.append(("nul", {"name": "bad\x00name"}))  # PostgreSQL text cannot hold NUL
    return cases


def test_a_refused_commit_is_rolled_back_and_the_service_goes_on(db_url: str, bus_url: str,
                                                                  listener: Listener) -> None:
    publisher = open_publisher(bus_url)
    svc = served(db_url, publisher)
    try:
        listener.until(lambda got: len(got) >= 3)
        small = svc.flavor_by_name("m1.small")
        for label, bad in _refused_values(db_url):
            inst = svc.boot(f"before-{label}", small)  # uncommitted work of the same transaction
            args = {"name": f"big-{label}", "vcpus": 1, "memory_mb": 512, "root_gb": 1, **bad}
            svc.create_flavor(args.pop("name"), **args)
            with pytest.raises(StorageRefused, match="rolled back"):
                svc.commit()
            # the whole transaction is gone, in the database and in memory; the session is usable
            assert inst.uuid not in svc.instances and len(svc.flavors) == 1
            assert svc.unavailable is None and not svc.outbox.pending  # type: ignore[union-attr]
            small = svc.flavor_by_name("m1.small")
        after = svc.boot("after", small)
        svc.commit()
        got = listener.until(lambda got: any(n["event_type"] == "instance.create.end" for n in got))
        assert [n["payload"]["nova_object.data"]["display_name"] for n in got
                if n["event_type"] == "instance.create.end"] == ["after"]
        assert "big-" not in json.dumps(got) and "before-" not in json.dumps(got)
        truth = ComputeSource(svc.repo.engine).snapshot()
        assert [i.uuid for i in truth.instances] == [after.uuid]
    finally:
        svc.close()
        publisher.close()


def test_what_a_crash_left_in_the_outbox_goes_first_with_the_same_ids(db_url: str, bus_url: str,
                                                                     listener: Listener) -> None:
    publisher = open_publisher(bus_url)
    svc = served(db_url, publisher)
    listener.until(lambda got: len(got) >= 3)
    initial = ComputeSource(svc.repo.engine).snapshot()
    svc.close(dispose=True)

    # A run whose relay never got to work (as if killed right after its commits): rows stay in the table.
    engine = make_engine(db_url)
    stuck = Outbox(engine, publisher)  # not started: nothing is relayed
    memory = MemoryDriver()
    svc = open_service(db_url, Notifier([memory], notification_format="versioned"))
    svc.attach_outbox(stuck)
    inst = svc.boot("survivor", svc.flavor_by_name("m1.small"))
    svc.commit()
    svc.pause(inst.uuid)
    svc.commit()
    left = outbox_rows(svc)
    assert left == len(memory.sent) > 0
    emitted = [s.notification.message_id for s in memory.sent]
    # ... and a second copy of the first ones was published before the crash (not yet deleted).
    for sent in memory.sent[:3]:
        publisher.publish_body(sent.topic, sent.notification.priority, sent.body)
    publisher.flush(TIMEOUT)
    svc.repo.close()
    engine.dispose()

    again = served(db_url, publisher, fresh=False)
    try:
        assert again.outbox is not None and again.outbox.recovered == left
        got = listener.until(lambda got: set(emitted) <= set(ids(got)))
        tail = got[3:]
        assert ids(tail[:3]) == emitted[:3] and ids(tail[3:]) == emitted  # the copies, then everything in order
        assert again.outbox.drain(TIMEOUT) and outbox_rows(again) == 0
        # the model drops the copies by message id and ends equal to the database
        consumer = Consumer(from_snapshot(initial))
        stats = consumer.process_all(json.dumps(n).encode() for n in tail)
        assert stats.duplicate >= 1 and stats.rejected == 0  # (the copies of events it ignores are ignored again)
        assert to_snapshot(consumer.cluster, reported=False) == ComputeSource(again.repo.engine).snapshot()
    finally:
        again.close()
        publisher.close()


def test_the_relay_waits_out_a_broker_outage(db_url: str, rabbitmq: Any) -> None:
    # durable: the listener's queue and its binding must outlive the broker's restart (oslo's transient
    # default loses them, and with them what the relay sends before the listener binds again)
    url = f"{rabbitmq.amqp_url}?exchange=outbox-{uuid.uuid4().hex[:8]}&retry_max=0.5&durable=true"
    lis = Listener(url)
    publisher = open_publisher(url)
    svc = served(db_url, publisher)
    try:
        lis.until(lambda got: len(got) >= 3)
        outbox = svc.outbox
        assert outbox is not None
        outbox.confirm_timeout = 1.0
        with rabbitmq.stopped():
            svc.boot("while-down", svc.flavor_by_name("m1.small"))
            svc.commit()
            _wait(lambda: outbox.error is not None, "the relay to notice the broker is gone")
            assert outbox.unsent > 0 and outbox_rows(svc) == outbox.unsent
        got = lis.until(lambda got: "instance.create.end" in events(got))
        assert events(got).count("instance.create.end") == 1
        assert outbox.drain(TIMEOUT) and outbox_rows(svc) == 0
        _wait(lambda: outbox.error is None, "the relay to recover")
    finally:
        svc.close()
        publisher.close()
        lis.close()


def _wait(predicate: Callable[[], bool], what: str) -> None:
    import time

    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
