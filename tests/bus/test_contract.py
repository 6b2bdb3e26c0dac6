"""What every transport promises (memory, embedded, RabbitMQ): the same tests, run on each.

Delivery of everything published after a group subscribed, bodies intact; every group sees every
notification while subscribers of one group share them; what is not acknowledged comes back; a message
that cannot be decoded is delivered with its reason, kept as a dead letter, and the stream goes on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import pytest_asyncio
from bushelpers import collect, delete_queues, ids_of, stream, unique

from novawatch.bus import BusDriver, Status, open_publisher, open_subscriber
from novawatch.bus.embedded import EmbeddedSubscriber
from novawatch.bus.memory import MemoryBus
from novawatch.bus.rabbit import REASON_HEADER
from novawatch.notifications.message import Notification, encode

POISON = b'{"event_type": "service.update", "priority": "INFO", "publisher_id": "nova-compute:h", "payload": '


class Bus:
    """One transport under test: its URL, and how to read a group's dead letters."""

    def __init__(self, kind: str, url: str, groups: list[str], amqp_url: str = "") -> None:
        self.kind, self.url, self.groups, self.amqp_url = kind, url, groups, amqp_url

    def group(self) -> str:
        name = unique("group")
        self.groups.append(name)
        return name

    async def dead_letters(self, group: str) -> list[tuple[bytes, str]]:
        if self.kind == "memory":
            return [(d.body, d.reason) for d in MemoryBus.named(self.url.removeprefix("memory://")).dead_letters(group)]
        if self.kind == "embedded":
            reader = open_subscriber(self.url, group=unique("reader"))
            assert isinstance(reader, EmbeddedSubscriber)
            await reader.start()
            reader.group = group
            rows = [(body, reason) for _, body, reason in reader.dead_letters()]
            await reader.close()
            return rows
        connection = await aio_pika.connect(self.amqp_url, timeout=30)
        out = []
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(f"{group}.dead-letter", durable=True)
            while (message := await queue.get(fail=False)) is not None:
                out.append((message.body, str(message.headers[REASON_HEADER])))
                await message.ack()
        return out


@pytest_asyncio.fixture(params=["memory", "embedded", "rabbit"])
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bus]:
    groups: list[str] = []
    if request.param == "memory":
        yield Bus("memory", f"memory://{unique()}", groups)
    elif request.param == "embedded":
        yield Bus("embedded", f"embedded://{tmp_path}/bus", groups)
    else:
        rabbitmq = request.getfixturevalue("rabbitmq")
        yield Bus("rabbit", rabbitmq.amqp_url, groups, rabbitmq.amqp_url)
        await delete_queues(rabbitmq.amqp_url, *[q for g in groups for q in (g, f"{g}.dead-letter")])


def body_dict(body: bytes) -> dict[str, Any]:
    """The notification dict in a body, unwrapping oslo's envelope when there is one."""
    data: dict[str, Any] = json.loads(body)
    if "oslo.message" in data:
        data = json.loads(data["oslo.message"])
        data.pop("_unique_id")  # oslo.messaging's duplicate detection, added by the RabbitMQ publisher
    return data


@pytest.mark.asyncio
async def test_delivers_everything_intact_through_the_notifier_driver(
    bus: Bus, sample_notifications: list[Notification[Any]]
) -> None:
    sent = stream(sample_notifications, 3 * len(sample_notifications))
    async with open_subscriber(bus.url, group=bus.group()) as subscriber:
        with open_publisher(bus.url) as publisher:
            driver = BusDriver(publisher)
            for n in sent:
                driver.send("versioned_notifications", n, encode(n))
            publisher.flush(60)
        got = await collect(subscriber, lambda ds: ids_of(ds) >= {n.message_id for n in sent})
    by_id = {d.message_id: d for d in got}
    for n in sent:
        delivery = by_id[n.message_id]
        assert delivery.status is Status.OK
        assert delivery.notification == n
        assert body_dict(delivery.body) == json.loads(encode(n))


@pytest.mark.asyncio
async def test_every_group_sees_every_notification(bus: Bus, sample_notifications: list[Notification[Any]]) -> None:
    sent = stream(sample_notifications, 100)
    want = {n.message_id for n in sent}
    async with (
        open_subscriber(bus.url, group=bus.group()) as first,
        open_subscriber(bus.url, group=bus.group()) as second,
    ):
        with open_publisher(bus.url) as publisher:
            for n in sent:
                publisher.publish(n)
            publisher.flush(60)
        assert ids_of(await collect(first, lambda ds: ids_of(ds) >= want)) == want
        assert ids_of(await collect(second, lambda ds: ids_of(ds) >= want)) == want


@pytest.mark.asyncio
async def test_unacknowledged_deliveries_come_back(bus: Bus, sample_notifications: list[Notification[Any]]) -> None:
    group = bus.group()
    sent = stream(sample_notifications, 40)
    want = {n.message_id for n in sent}
    subscriber = open_subscriber(bus.url, group=group)
    await subscriber.start()
    with open_publisher(bus.url) as publisher:
        for n in sent:
            publisher.publish(n)
        publisher.flush(60)
    # take the first 10 and acknowledge only those; the rest was received (or prefetched), not acknowledged
    first = await collect(subscriber, lambda ds: len(ds) >= 10, ack=False)
    for delivery in first[:10]:
        await delivery.ack()
    await subscriber.close()
    acked = ids_of(first[:10])
    async with open_subscriber(bus.url, group=group) as again:
        rest = await collect(again, lambda ds: ids_of(ds) | acked >= want)
    assert ids_of(rest) | acked == want


@pytest.mark.asyncio
async def test_poison_message_is_dead_lettered_with_its_reason_and_the_stream_goes_on(
    bus: Bus, sample_notifications: list[Notification[Any]]
) -> None:
    group = bus.group()
    before, after = stream(sample_notifications, 5), stream(sample_notifications, 5)
    async with open_subscriber(bus.url, group=group) as subscriber:
        with open_publisher(bus.url) as publisher:
            for n in before:
                publisher.publish(n)
            publisher.publish_body("versioned_notifications", "INFO", POISON)
            publisher.publish_body("versioned_notifications", "INFO", b'{"event_type": "service.update"}')
            for n in after:
                publisher.publish(n)
            publisher.flush(60)
        want = {n.message_id for n in before + after}
        got = await collect(subscriber, lambda ds: ids_of(ds) >= want and sum(
            d.status is Status.REJECTED for d in ds) >= 2)
    rejected = [d for d in got if d.status is Status.REJECTED]
    assert rejected[0].notification is None and "JSON" in (rejected[0].reason or "")
    assert "publisher_id" in (rejected[1].reason or "")  # priority may be absent (it is INFO then)
    dead = await bus.dead_letters(group)
    assert len(dead) == 2
    assert body_dict(dead[1][0]) == {"event_type": "service.update"}
    assert "JSON" in dead[0][1] and "publisher_id" in dead[1][1]


@pytest.mark.asyncio
async def test_consumer_can_reject_what_decoded(bus: Bus, sample_notifications: list[Notification[Any]]) -> None:
    group = bus.group()
    (n,) = stream(sample_notifications, 1)
    async with open_subscriber(bus.url, group=group) as subscriber:
        with open_publisher(bus.url) as publisher:
            publisher.publish(n)
            publisher.flush(60)
        (delivery,) = await collect(subscriber, lambda ds: len(ds) == 1, ack=False)
        await delivery.reject("model says no")
    dead = await bus.dead_letters(group)
    assert [reason for _, reason in dead] == ["model says no"]
