"""Faults: the broker restarted mid-stream, either side killed with SIGKILL mid-stream and restarted.

No valid notification is lost (at-least-once: duplicates are allowed, consumers dedup by message id).
Processes are real subprocesses; every wait is for a condition, with a generous timeout.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from bushelpers import (
    TIMEOUT,
    ConsumerProcess,
    PublisherProcess,
    collect,
    durable_rabbit_url,
    ids_of,
    new_group,
    stream,
)

from novawatch.bus import Delivery, open_publisher, open_subscriber
from novawatch.notifications.message import Notification


class Durable:
    def __init__(self, kind: str, url: str) -> None:
        self.kind, self.url = kind, url


@pytest_asyncio.fixture(params=["embedded", "rabbit"])
async def durable_bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Durable]:
    if request.param == "embedded":
        yield Durable("embedded", f"embedded://{tmp_path}/bus")
    else:
        yield Durable("rabbit", durable_rabbit_url(request.getfixturevalue("rabbitmq").amqp_url))


@pytest.mark.asyncio
async def test_consumer_killed_mid_stream_and_restarted_loses_nothing(
    durable_bus: Durable,
    sample_notifications: list[Notification[Any]],
    consumers: list[ConsumerProcess],
    rabbit_groups: list[str],
    tmp_path: Path,
) -> None:
    group = new_group(rabbit_groups, "killed")
    applied = tmp_path / "applied.txt"
    sent = stream(sample_notifications, 2000)
    want = {n.message_id for n in sent}
    # slow enough (2 ms of "work" each) that the stream is still flowing when the kill comes
    first = ConsumerProcess.start(durable_bus.url, group, applied, delay=0.002)
    consumers.append(first)
    with open_publisher(durable_bus.url) as publisher:
        for n in sent:
            publisher.publish(n)
        publisher.flush(TIMEOUT)
    before = first.wait_applied(lambda ids: len(ids) >= 200)
    first.kill()
    assert len(set(first.applied())) < len(want), "the kill came after the end of the stream"
    second = ConsumerProcess.start(durable_bus.url, group, applied)
    consumers.append(second)
    final = second.wait_applied(lambda ids: set(ids) >= want)
    assert set(final) == want
    assert set(before) <= set(final)


@pytest.mark.asyncio
async def test_publisher_killed_mid_stream_loses_nothing_it_flushed(
    durable_bus: Durable, rabbit_groups: list[str], tmp_path: Path
) -> None:
    group = new_group(rabbit_groups, "pubkill")
    async with open_subscriber(durable_bus.url, group=group) as subscriber:
        publisher = PublisherProcess.start(durable_bus.url, tmp_path / "published.txt")
        try:
            publisher.wait_published(300)
        finally:
            publisher.kill()
        flushed = set(publisher.published())
        got = await collect(subscriber, lambda ds: ids_of(ds) >= flushed)
    assert ids_of(got) >= flushed


@pytest.mark.asyncio
async def test_rabbitmq_restarted_mid_stream_loses_nothing(
    rabbitmq: Any, sample_notifications: list[Notification[Any]], rabbit_groups: list[str]
) -> None:
    group = new_group(rabbit_groups, "restart")
    url = durable_rabbit_url(rabbitmq.amqp_url)  # with oslo's default (transient) the broker forgets the queue
    sent = stream(sample_notifications, 3000)
    want = {n.message_id for n in sent}
    deliveries: list[Delivery] = []
    some_applied = asyncio.Event()
    async with open_subscriber(url, group=group, prefetch=64) as subscriber:

        async def consume() -> None:
            async for delivery in subscriber:
                deliveries.append(delivery)
                if len(deliveries) >= 300:
                    some_applied.set()
                await delivery.ack()
                if ids_of(deliveries) >= want:
                    return

        consumer = asyncio.create_task(consume())
        publisher = open_publisher(url)
        try:
            for n in sent[:1000]:
                publisher.publish(n)
            await asyncio.wait_for(some_applied.wait(), TIMEOUT)
            stopped = threading.Event()

            def publish_while_down() -> None:
                for n in sent[1000:2000]:  # into the outbox: the publisher cannot reach the broker
                    publisher.publish(n)
                stopped.set()

            await asyncio.to_thread(rabbitmq.stop_app)
            await asyncio.to_thread(publish_while_down)
            assert stopped.is_set()
            await asyncio.to_thread(rabbitmq.start_app)
            for n in sent[2000:]:
                publisher.publish(n)
            await asyncio.to_thread(publisher.flush, TIMEOUT)
            await asyncio.wait_for(consumer, TIMEOUT)
        finally:
            if not rabbitmq.is_running():
                await asyncio.to_thread(rabbitmq.start_app)
            consumer.cancel()
            publisher.close()
    assert ids_of(deliveries) == want


@pytest.mark.asyncio
async def test_subscriber_started_while_the_broker_is_down_connects_when_it_is_back(
    rabbitmq: Any, sample_notifications: list[Notification[Any]], rabbit_groups: list[str]
) -> None:
    group = new_group(rabbit_groups, "late")
    sent = stream(sample_notifications, 20)
    await asyncio.to_thread(rabbitmq.stop_app)
    try:
        subscriber = open_subscriber(rabbitmq.amqp_url, group=group, retry_max=0.5)
        starting = asyncio.create_task(subscriber.start())
        done, _ = await asyncio.wait({starting}, timeout=0)
        assert not done  # still retrying: the broker is down
    finally:
        await asyncio.to_thread(rabbitmq.start_app)
    await asyncio.wait_for(starting, TIMEOUT)
    try:
        with open_publisher(rabbitmq.amqp_url) as publisher:
            for n in sent:
                publisher.publish(n)
            publisher.flush(TIMEOUT)
        got = await collect(subscriber, lambda ds: ids_of(ds) >= {n.message_id for n in sent})
        assert ids_of(got) == {n.message_id for n in sent}
    finally:
        await subscriber.close()

