"""Interoperability with the real oslo.messaging, both ways, on the session's RabbitMQ broker.

oslo.messaging is configured as Nova is by default: ``control_exchange = nova``, notification driver
``messagingv2``, and oslo's own defaults otherwise (``amqp_durable_queues = false``: a transient exchange
and transient queues, which is also novawatch's default). tests/bus/test_nova_broker.py shares one
exchange between oslo's notifier and RPC and novawatch, in both start orders and across broker restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import oslo_messaging
import pytest
from bushelpers import TIMEOUT, collect, delete_queues, stream, unique
from oslo_config import cfg

from novawatch.bus import Status, open_publisher, open_subscriber
from novawatch.notifications.message import Notification, encode, parse_timestamp


@pytest.fixture
def oslo_transport(rabbitmq: Any) -> Iterator[Any]:
    conf = cfg.ConfigOpts()
    conf([], project="novawatch-test", default_config_files=[])
    oslo_messaging.set_transport_defaults("nova")
    transport = oslo_messaging.get_notification_transport(conf, url=rabbitmq.oslo_url)
    try:
        yield transport
    finally:
        transport.cleanup()


@pytest.mark.asyncio
async def test_oslo_notifier_to_novawatch(
    rabbitmq: Any, oslo_transport: Any, samples: list[dict[str, Any]], rabbit_groups: list[str]
) -> None:
    group = unique("from-oslo")
    # oslo's notifier also declares its default queues (versioned_notifications.<priority>): drop them after
    rabbit_groups.extend([group, "versioned_notifications.info", "versioned_notifications.error"])
    async with open_subscriber(rabbitmq.amqp_url, group=group) as subscriber:
        notifier = oslo_messaging.Notifier(oslo_transport, driver="messagingv2", topics=["versioned_notifications"])

        def send_all() -> None:  # oslo's notifier blocks on the network: keep it off the event loop
            for sample in samples:
                sender = notifier.prepare(publisher_id=sample["publisher_id"])
                getattr(sender, sample["priority"].lower())({}, sample["event_type"], sample["payload"])

        await asyncio.to_thread(send_all)
        got = await collect(subscriber, lambda ds: len(ds) >= len(samples))
    assert len(got) == len(samples)
    for delivery, sample in zip(sorted(got, key=_key), sorted(samples, key=_key), strict=True):
        assert delivery.status is Status.OK, delivery.reason
        assert delivery.topic == f"versioned_notifications.{sample['priority'].lower()}"
        n = delivery.notification
        assert n is not None
        assert (n.event_type, n.priority, n.publisher_id) == (
            sample["event_type"], sample["priority"], sample["publisher_id"])
        assert json.loads(encode(n))["payload"] == sample["payload"]
        assert isinstance(n.message_id, str) and uuid.UUID(n.message_id)
        assert isinstance(n.timestamp, str) and parse_timestamp(n.timestamp) is not None
    assert len({d.message_id for d in got}) == len(samples)


def _key(item: Any) -> str:
    data = item if isinstance(item, dict) else json.loads(encode(item.notification))
    return json.dumps([data["event_type"], data["payload"]], sort_keys=True)


class _Endpoint:
    def __init__(self, expected: int) -> None:
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.expected = expected

    def _take(self, priority: str, publisher_id: str, event_type: str, payload: Any, metadata: Any) -> None:
        with self.lock:
            self.received.append({"priority": priority, "publisher_id": publisher_id, "event_type": event_type,
                                  "payload": payload, **metadata})
            if len(self.received) >= self.expected:
                self.done.set()

    def info(self, ctxt: Any, publisher_id: str, event_type: str, payload: Any, metadata: Any) -> None:
        self._take("INFO", publisher_id, event_type, payload, metadata)

    def error(self, ctxt: Any, publisher_id: str, event_type: str, payload: Any, metadata: Any) -> None:
        self._take("ERROR", publisher_id, event_type, payload, metadata)


@pytest.mark.asyncio
async def test_novawatch_to_oslo_notification_listener(
    rabbitmq: Any, oslo_transport: Any, sample_notifications: list[Notification[Any]]
) -> None:
    sent = stream(sample_notifications, len(sample_notifications))
    endpoint = _Endpoint(len(sent))
    pool = unique("oslo-pool")  # a pool of our own, so no other test's listener shares the queue
    listener = oslo_messaging.get_notification_listener(
        oslo_transport, [oslo_messaging.Target(topic="versioned_notifications")], [endpoint],
        executor="threading", pool=pool,
    )
    listener.start()  # declares the queue and its bindings before anything is sent
    try:
        with open_publisher(rabbitmq.amqp_url) as publisher:
            for n in sent:
                publisher.publish(n)
            publisher.flush(TIMEOUT)
        assert await asyncio.to_thread(endpoint.done.wait, TIMEOUT), f"{len(endpoint.received)} of {len(sent)}"
    finally:
        listener.stop()
        listener.wait()
        await delete_queues(rabbitmq.amqp_url, pool)
    by_id = {r["message_id"]: r for r in endpoint.received}
    assert len(endpoint.received) == len(sent) == len(by_id)
    for n in sent:
        plain = json.loads(encode(n))
        got = by_id[n.message_id]
        assert got == {key: plain[key] for key in
                       ("priority", "publisher_id", "event_type", "payload", "message_id", "timestamp")}


@pytest.mark.asyncio
async def test_novawatch_group_shares_an_oslo_pool_queue(
    rabbitmq: Any, oslo_transport: Any, sample_notifications: list[Notification[Any]]
) -> None:
    """A novawatch subscriber whose group is an oslo listener pool's name competes for the same queue."""
    sent = stream(sample_notifications, 200)
    endpoint = _Endpoint(len(sent))
    pool = unique("shared-pool")
    listener = oslo_messaging.get_notification_listener(
        oslo_transport, [oslo_messaging.Target(topic="versioned_notifications")], [endpoint],
        executor="threading", pool=pool,
    )
    listener.start()
    try:
        async with open_subscriber(rabbitmq.amqp_url, group=pool, topics=["versioned_notifications"],
                                   prefetch=1) as subscriber:
            with open_publisher(rabbitmq.amqp_url) as publisher:
                for n in sent:
                    publisher.publish(n)
                publisher.flush(TIMEOUT)
            want = {n.message_id for n in sent}
            ours: set[str] = set()

            def everything_seen(deliveries: list[Any]) -> bool:
                ours.update(d.message_id for d in deliveries)
                with endpoint.lock:
                    theirs = {r["message_id"] for r in endpoint.received}
                return ours | theirs >= want

            # the oslo listener takes its share from another thread: poll both sides, as a consumer would
            while not everything_seen([]):
                with contextlib.suppress(TimeoutError):
                    await collect(subscriber, lambda ds: everything_seen(ds) or len(ds) >= 1, timeout=0.5)
    finally:
        listener.stop()
        listener.wait()
        await delete_queues(rabbitmq.amqp_url, pool, f"{pool}.dead-letter")
    with endpoint.lock:
        theirs = {r["message_id"] for r in endpoint.received}
    assert ours | theirs == want
    assert ours and theirs, "both consumers of the shared queue got a share"
