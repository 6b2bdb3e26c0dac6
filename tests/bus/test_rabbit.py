"""RabbitMQ specifics: oslo's declarations, the default queue option, and passwords kept out of the logs."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aio_pika
import pytest
from bushelpers import TIMEOUT, collect, delete_queues, ids_of, new_group, stream, unique

from novawatch.bus import open_publisher, open_subscriber
from novawatch.bus.rabbit import RabbitPublisher
from novawatch.notifications.message import Notification


@pytest.mark.asyncio
async def test_messages_are_persistent_json_with_oslo_routing_keys(
    rabbitmq: Any, sample_notifications: list[Notification[Any]]
) -> None:
    exchange = unique("exchange")
    queue_name = unique("raw")
    connection = await aio_pika.connect(rabbitmq.amqp_url, timeout=30)
    async with connection:
        channel = await connection.channel()
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(queue_name, durable=True)
        await queue.bind(ex, "#")
        (n,) = stream(sample_notifications, 1)
        with open_publisher(rabbitmq.amqp_url, exchange=exchange) as publisher:
            publisher.publish(n)
            publisher.flush(TIMEOUT)
        message = await queue.get(timeout=TIMEOUT)
        assert message is not None
        await message.ack()
        assert message.routing_key == f"versioned_notifications.{n.priority.lower()}"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert (message.content_type, message.content_encoding) == ("application/json", "utf-8")
        assert message.body.startswith(b'{"oslo.version":"2.0","oslo.message":"{\\"_unique_id\\":')
        await queue.delete()
        await ex.delete()


@pytest.mark.asyncio
async def test_uses_an_exchange_declared_with_other_durability(
    rabbitmq: Any, sample_notifications: list[Notification[Any]], rabbit_groups: list[str]
) -> None:
    """oslo's default is a transient control exchange; if one exists, novawatch uses it as it is."""
    exchange = unique("transient")
    group = new_group(rabbit_groups, "group")
    connection = await aio_pika.connect(rabbitmq.amqp_url, timeout=30)
    async with connection:
        channel = await connection.channel()
        await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=False)
        sent = stream(sample_notifications, 10)
        async with open_subscriber(rabbitmq.amqp_url, group=group, exchange=exchange) as subscriber:
            with open_publisher(rabbitmq.amqp_url, exchange=exchange) as publisher:
                for n in sent:
                    publisher.publish(n)
                publisher.flush(TIMEOUT)
            got = await collect(subscriber, lambda ds: len(ds) >= 10)
        assert ids_of(got) == {n.message_id for n in sent}
        await channel.exchange_delete(exchange)


@pytest.mark.asyncio
async def test_default_queue_like_oslo_keeps_notifications_for_late_listeners(
    rabbitmq: Any, sample_notifications: list[Notification[Any]]
) -> None:
    exchange = unique("late")
    sent = stream(sample_notifications, 5)
    with open_publisher(rabbitmq.amqp_url, exchange=exchange, default_queue=True) as publisher:
        for n in sent:
            publisher.publish(n)
        publisher.flush(TIMEOUT)
    priorities = {n.priority.lower() for n in sent}
    queues = {row[0]: int(row[1]) for row in await asyncio.to_thread(rabbitmq.list_queues)}
    names = [f"versioned_notifications.{p}" for p in priorities]
    assert sum(queues[name] for name in names) >= len(sent)
    await delete_queues(rabbitmq.amqp_url, *names)


def test_password_never_logged(rabbitmq: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = rabbitmq.amqp_url.replace("guest:guest@", "guest:Wr0ngPassw0rd@")
    publisher = open_publisher(url, retry_interval=0.05, retry_max=0.1)
    assert isinstance(publisher, RabbitPublisher)
    assert "Wr0ngPassw0rd" not in repr(publisher)
    deadline = time.monotonic() + TIMEOUT
    while not any("retrying" in r.getMessage() for r in caplog.records):  # a failed attempt was logged
        assert time.monotonic() < deadline, "no failed connection attempt was logged"
        time.sleep(0.05)
    publisher.close(timeout=0)
    text = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    assert "Wr0ngPassw0rd" not in text
    assert "guest:***@" in text
