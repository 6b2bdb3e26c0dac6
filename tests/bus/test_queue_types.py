"""Quorum queues and streams on a real RabbitMQ: what is declared, what each delivery tells, where a stream
subscriber starts and resumes, and the backlog ``novawatch model status`` shows.

Every notification is checked by message id; waits are for conditions, with generous timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest
from bushelpers import TIMEOUT, collect, ids_of, new_group, stream, unique

from novawatch.bus import Delivery, Status, Subscriber, amqp, open_publisher, open_subscriber
from novawatch.bus.base import Backlog, unwrap
from novawatch.bus.streams import first_offset
from novawatch.notifications.message import Notification


def durable_url(rabbitmq: Any, query: str = "") -> str:
    """A control exchange of the test's own, durable (as Nova's with ``rabbit_quorum_queue = true``)."""
    return f"{rabbitmq.amqp_url}?durable=true&exchange={unique('qt')}" + (f"&{query}" if query else "")


def publish(url: str, notifications: list[Notification[Any]]) -> None:
    with open_publisher(url) as publisher:
        for n in notifications:
            publisher.publish(n)
        publisher.flush(TIMEOUT)


def ids(notifications: list[Notification[Any]]) -> list[str]:
    return [str(n.message_id) for n in notifications]


def delivered_ids(deliveries: list[Delivery]) -> list[str]:
    return [d.message_id or "" for d in deliveries]


async def backlog_until(subscriber: Subscriber, check: Any, what: str) -> Backlog:
    """Ask for the backlog until ``check(backlog)`` holds (RabbitMQ counts a stream every few seconds)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        backlog = await subscriber.backlog()
        if check(backlog):
            return backlog
        assert time.monotonic() < deadline, f"timed out waiting for {what}; last {backlog}"
        await asyncio.sleep(0.2)


async def dead_letters(rabbitmq: Any, group: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Everything in the group's dead-letter queue (taken out of it)."""
    out = []
    connection = await aio_pika.connect(rabbitmq.amqp_url, timeout=30)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{group}.dead-letter", passive=True)
        while (message := await queue.get(timeout=TIMEOUT, fail=False)) is not None:
            await message.ack()
            out.append(message)
    return out


def queue_types(rabbitmq: Any) -> dict[str, str]:
    return {row[0]: row[1] for row in rabbitmq.list_queues("name", "type")}


@pytest.mark.asyncio
async def test_a_quorum_queue_with_replicated_dead_letters_and_its_backlog(
    rabbitmq: Any, sample_notifications: list[Notification[Any]], rabbit_groups: list[str]
) -> None:
    url = durable_url(rabbitmq, "queue_type=quorum")
    group = new_group(rabbit_groups, "novawatch-quorum")
    sent = stream(sample_notifications, 30)
    async with open_subscriber(url, group=group) as subscriber:
        assert queue_types(rabbitmq)[group] == "quorum"
        assert queue_types(rabbitmq)[f"{group}.dead-letter"] == "quorum"  # no node of its own to lose
        publish(url, sent)
        with open_publisher(url) as publisher:  # one the model cannot read
            publisher.publish_body("versioned_notifications", "INFO", b'{"event_type": "instance.update"')
            publisher.flush(TIMEOUT)
        waiting = await backlog_until(subscriber, lambda b: b.behind == 31, "31 notifications behind")
        assert (waiting.queue, waiting.kind, waiting.position, waiting.broker) == (
            group, "quorum", None, f"127.0.0.1:{rabbitmq.port}")  # a queue has no positions
        got = await collect(subscriber, lambda d: len(d) == 31)
        assert delivered_ids([d for d in got if d.status is Status.OK]) == ids(sent)
        assert [d.position for d in got] == [None] * 31
        assert (await backlog_until(subscriber, lambda b: b.behind == 0, "nothing behind")).behind == 0
    (letter,) = await dead_letters(rabbitmq, group)
    assert b'instance.update' in letter.body and letter.headers.get("x-novawatch-reason")


@pytest.mark.asyncio
async def test_replicas_on_one_stream_each_read_all_of_it_with_its_offsets(
    rabbitmq: Any, sample_notifications: list[Notification[Any]], rabbit_groups: list[str]
) -> None:
    """A stream is read, not consumed: two subscribers of the same stream both get every notification."""
    url = durable_url(rabbitmq, "queue_type=stream")
    group = new_group(rabbit_groups, "novawatch-stream")
    sent = stream(sample_notifications, 200)
    async with open_subscriber(url, group=group) as a, open_subscriber(url, group=group) as b:
        assert queue_types(rabbitmq)[group] == "stream"
        publish(url, sent)
        for replica in (a, b):
            got = await collect(replica, lambda d: len(d) == len(sent))
            assert delivered_ids(got) == ids(sent)
            offsets = [d.position for d in got]
            assert all(isinstance(o, int) for o in offsets) and offsets == sorted(set(offsets))  # type: ignore[type-var]
            assert replica.position == offsets[-1]
        # RabbitMQ counts what the stream holds every few seconds; reading took nothing out of it
        at = await backlog_until(a, lambda x: "not counted" not in (x.note or ""), "RabbitMQ to count the stream")
        assert (at.kind, at.queue, at.position, at.last, at.behind) == ("stream", group, a.position, a.position, 0)


@pytest.mark.asyncio
async def test_a_new_subscriber_replays_from_an_offset_a_time_or_the_start(
    rabbitmq: Any, sample_notifications: list[Notification[Any]], rabbit_groups: list[str]
) -> None:
    url = durable_url(rabbitmq, "queue_type=stream")
    group = new_group(rabbit_groups, "novawatch-replay")
    first, second = stream(sample_notifications, 60), stream(sample_notifications, 60)
    async with open_subscriber(url, group=group) as reader:
        publish(url, first)
        # a stream's chunks carry their time; start the second batch in a second of its own
        second_began = int(time.time()) + 1
        while time.time() < second_began + 0.1:
            await asyncio.sleep(0.02)
        moment = datetime.now(UTC)
        publish(url, second)
        everything = await collect(reader, lambda d: len(d) == 120)
    offsets = [d.position for d in everything]
    assert delivered_ids(everything) == ids(first) + ids(second)

    async def replay(**options: Any) -> list[Delivery]:
        async with open_subscriber(url, group=group, **options) as subscriber:
            return await collect(subscriber, lambda d: bool(d) and d[-1].message_id == ids(second)[-1])

    from_offset = await replay(offset=offsets[100])
    assert delivered_ids(from_offset) == (ids(first) + ids(second))[100:]
    assert [d.position for d in from_offset] == offsets[100:]
    assert delivered_ids(await replay(offset=moment)) == ids(second)
    assert delivered_ids(await replay(offset="first")) == ids(first) + ids(second)
    async with open_subscriber(f"{url}&offset=first", group=group) as subscriber:  # the same, from the URL
        got = await collect(subscriber, lambda d: len(d) == 120)
        assert delivered_ids(got) == ids(first) + ids(second)


@pytest.mark.asyncio
async def test_across_a_broker_restart_a_stream_subscriber_resumes_after_what_it_acknowledged(
    rabbitmq: Any, sample_notifications: list[Notification[Any]], rabbit_groups: list[str]
) -> None:
    """``a`` read and acknowledged the first batch: after the restart it reads exactly the second. ``b``
    started at "next" and read nothing before the restart: it resumes from when it subscribed, so it
    misses neither batch (a stream keeps no position for an AMQP reader; the subscriber does).

    After a restart RabbitMQ routes to a stream only once it has recovered it, and drops what comes
    before: the publisher (``mandatory=true``) holds what came back and sends it again, and each
    subscriber, which cannot know what other publishers did, reports the restart as a gap.
    """
    url = durable_url(rabbitmq, "queue_type=stream&retry_max=1&mandatory=true")
    group = new_group(rabbit_groups, "novawatch-resume")
    first, second = stream(sample_notifications, 80), stream(sample_notifications, 80)
    a = open_subscriber(url, group=group)
    b = open_subscriber(url, group=group)
    gaps: list[str] = []
    a.on_gap = b.on_gap = gaps.append
    try:
        await a.start()
        await b.start()
        publish(url, first)
        before = await collect(a, lambda d: len(d) == len(first))
        assert delivered_ids(before) == ids(first)
        with rabbitmq.stopped():
            pass
        publish(url, second)  # at once: the stream may not take anything yet
        after = await collect(a, lambda d: len(d) == len(second))
        assert delivered_ids(after) == ids(second)  # not one notification read twice
        positions = [d.position for d in before + after]
        assert positions == sorted(set(positions))  # type: ignore[type-var]
        assert delivered_ids(await collect(b, lambda d: len(d) == 160)) == ids(first) + ids(second)
        assert a.gaps == b.gaps == 1 and all("a restart of the broker?" in gap for gap in gaps), gaps
    finally:
        await a.close()
        await b.close()


@pytest.mark.asyncio
async def test_a_mandatory_publisher_holds_what_no_queue_takes_until_one_does(
    rabbitmq: Any, sample_notifications: list[Notification[Any]], rabbit_groups: list[str]
) -> None:
    url = durable_url(rabbitmq, "mandatory=true&retry_max=0.5")
    group = new_group(rabbit_groups, "novawatch-late")
    sent = stream(sample_notifications, 20)
    with open_publisher(url) as publisher:
        for n in sent:
            publisher.publish(n)
        with pytest.raises(TimeoutError, match="20 notifications not confirmed"):
            publisher.flush(3)  # nothing is bound to the exchange: every one came back, and is held
        async with open_subscriber(url, group=group) as subscriber:  # binds a queue: now they are taken
            await asyncio.to_thread(publisher.flush, TIMEOUT)
            # each exactly once; not necessarily in order: the queue is bound one priority at a time, and one
            # sent again while the binding of its priority was still to come goes back and comes after
            assert sorted(delivered_ids(await collect(subscriber, lambda d: len(d) == 20))) == sorted(ids(sent))


def message_id(body: bytes) -> str:
    """The notification's message id in an oslo.messaging envelope."""
    return str(json.loads(json.loads(body)["oslo.message"])["message_id"])


@pytest.mark.asyncio
async def test_what_the_broker_nacks_goes_again_in_order_until_it_is_taken(
    rabbitmq: Any, sample_notifications: list[Notification[Any]], rabbit_groups: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A queue that refuses publishes (a quorum queue without a leader for a while, here one that is full
    with ``x-overflow=reject-publish``) gets them nacked: the publisher sends them again, in order, on a new
    connection, until they are taken; it says so once, not per nack. (RabbitMQ 3.10 confirms a quorum queue's
    overflow late, so the full queue here is a classic one.)"""
    url = durable_url(rabbitmq, "retry_max=0.5")
    group = new_group(rabbit_groups, "novawatch-nacked")
    full = new_group(rabbit_groups, "novawatch-full")
    sent = stream(sample_notifications, 20)
    async with open_subscriber(url, group=group) as subscriber:  # declares the exchange; reads everything
        connection = await aio_pika.connect(rabbitmq.amqp_url, timeout=30)
        async with connection:
            channel = await connection.channel()
            small = await channel.declare_queue(full, durable=True, arguments={
                "x-max-length": 3, "x-overflow": "reject-publish"})
            await small.bind(url.split("exchange=", 1)[1].split("&", 1)[0], "versioned_notifications.*")
            with caplog.at_level(logging.INFO, logger="novawatch.bus.rabbit"), open_publisher(url) as publisher:
                for n in sent:
                    publisher.publish(n)
                with pytest.raises(TimeoutError, match="not confirmed"):
                    publisher.flush(3)  # the full queue refuses the 4th: it and those after it wait
                taken: list[str] = []
                flushing = asyncio.create_task(asyncio.to_thread(publisher.flush, TIMEOUT))
                while not flushing.done():  # make room, a message at a time
                    message = await small.get(timeout=TIMEOUT, fail=False)
                    if message is None:
                        await asyncio.sleep(0.05)
                        continue
                    await message.ack()
                    taken.append(message_id(message.body))
                await flushing
            while (message := await small.get(timeout=TIMEOUT, fail=False)) is not None:
                await message.ack()
                taken.append(message_id(message.body))
        # every one, at least once (what was in flight when the publisher started again may have come twice,
        # and ahead of one nacked before it, had room been made meanwhile)
        assert set(taken) == set(ids(sent))
        got = await collect(subscriber, lambda d: set(ids(sent)) <= ids_of(d))
        first_seen = list(dict.fromkeys(delivered_ids(got)))  # a nacked one may have reached this queue too
        assert first_seen == ids(sent)
    exchange = url.split("exchange=", 1)[1].split("&", 1)[0]
    mine = [r for r in caplog.records if exchange in str(getattr(r, "bus_url", ""))]  # not another test's
    refused = [r for r in mine if "refused (nacked)" in r.getMessage()]
    assert len(refused) == 1, [r.getMessage() for r in refused]
    assert any("took every notification it had refused" in r.getMessage() for r in mine)


async def stream_start(rabbitmq: Any, stream_name: str) -> int | None:
    """The offset of the oldest message the stream holds, asked as the subscriber asks it (None when the
    broker could not say: RabbitMQ 3.10 may close a connection with INTERNAL_ERROR when a reader starts at
    ``first`` while the retention deletes that segment; the caller asks again)."""
    connection = await amqp.connect("127.0.0.1", rabbitmq.port, user="guest", password="guest")
    try:
        return await first_offset(connection, stream_name)
    except amqp.ConnectionClosed:
        return None
    finally:
        with contextlib.suppress(amqp.AMQPError, ConnectionError):
            await connection.close()


@pytest.mark.asyncio
async def test_an_offset_the_streams_retention_removed_is_a_gap(
    rabbitmq: Any, sample_notifications: list[Notification[Any]], rabbit_groups: list[str]
) -> None:
    """A restarted replica asking for an offset the stream no longer holds learns it (and re-lists), while
    one asking for what the stream holds does not."""
    url = durable_url(rabbitmq, "queue_type=stream&segment_bytes=50000&max_age=1s")
    group = new_group(rabbit_groups, "novawatch-retention")
    async with open_subscriber(url, group=group):
        pass  # the stream exists from now on
    publish(url, stream(sample_notifications, 200))
    # RabbitMQ applies a stream's retention when it starts a segment: add to it until old ones have gone
    deadline = time.monotonic() + TIMEOUT
    while not await stream_start(rabbitmq, group):
        assert time.monotonic() < deadline, "the stream's retention never removed a segment"
        publish(url, stream(sample_notifications, 40))
        await asyncio.sleep(0.3)
    last = stream(sample_notifications, 1)
    publish(url, last)
    gaps: list[str] = []
    old = open_subscriber(url, group=group, offset=0)
    old.on_gap = gaps.append
    try:
        await old.start()
        got = await collect(old, lambda d: bool(d) and d[-1].message_id == ids(last)[0])
    finally:
        await old.close()
    start = got[0].position
    assert start is not None and start > 0
    assert len(gaps) == 1 and f"no longer holds offsets 0 to {start - 1}" in gaps[0], gaps
    fine = open_subscriber(url, group=group, offset=start)
    fine.on_gap = gaps.append
    try:
        await fine.start()
        again = await collect(fine, lambda d: bool(d) and d[-1].message_id == ids(last)[0])
    finally:
        await fine.close()
    assert len(gaps) == 1 and again[0].position == start


@pytest.mark.asyncio
async def test_an_existing_queue_of_another_type_is_a_problem_that_says_what_to_do(
    rabbitmq: Any, rabbit_groups: list[str]
) -> None:
    group = new_group(rabbit_groups, "novawatch-classic")
    connection = await aio_pika.connect(rabbitmq.amqp_url, timeout=30)
    async with connection:
        await (await connection.channel()).declare_queue(group, durable=True)  # classic, as before the switch
    subscriber = open_subscriber(f"{rabbitmq.amqp_url}?queue_type=quorum&retry_max=0.5", group=group)
    starting = asyncio.create_task(subscriber.start())
    try:
        for _ in range(int(TIMEOUT / 0.05)):
            if subscriber.problem:
                break
            await asyncio.sleep(0.05)
        problem = subscriber.problem or ""
        assert f"queue '{group}'" in problem and "inequivalent arg 'x-queue-type'" in problem, problem
        assert f"rabbitmqctl delete_queue {group}" in problem and "[bus] queue" in problem
        assert not starting.done()  # it keeps trying: the operator can fix it while it runs
    finally:
        starting.cancel()
        with contextlib.suppress(BaseException):
            await starting
        await subscriber.close()
    assert queue_types(rabbitmq)[group] == "classic"  # nothing of the operator's was changed


@pytest.mark.asyncio
async def test_a_notification_the_model_rejects_on_a_stream_is_dead_lettered_and_the_stream_goes_on(
    rabbitmq: Any, sample_notifications: list[Notification[Any]], rabbit_groups: list[str]
) -> None:
    url = durable_url(rabbitmq, "queue_type=stream")
    group = new_group(rabbit_groups, "novawatch-poison")
    good = stream(sample_notifications, 5)
    async with open_subscriber(url, group=group) as subscriber:
        with open_publisher(url) as publisher:
            publisher.publish(good[0])
            publisher.publish_body("versioned_notifications", "INFO", b'{"not json"')
            for n in good[1:]:
                publisher.publish(n)
            publisher.flush(TIMEOUT)
        got = await collect(subscriber, lambda d: len(d) == 6)
        assert [d.status for d in got] == [Status.OK, Status.REJECTED] + [Status.OK] * 4
        assert subscriber.position == got[-1].position  # the dead letter counts as handled
    (letter,) = await dead_letters(rabbitmq, group)
    inner = unwrap(letter.body)
    assert "not json" in (inner if isinstance(inner, str) else inner.decode()) and letter.headers.get(
        "x-novawatch-reason")
