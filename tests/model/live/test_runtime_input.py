"""The live model service takes what Nova sends and rejects what is wrong without ever stopping (issue 12
item 4, issue 13 items 1, 2 and 6), over the embedded bus and a real RabbitMQ broker.

The stream is the issue's: ``novawatch simulate --hosts 2 --instances 2 --actions 5 --seed 1 --format
versioned``, with an ``instance.update`` whose timestamp is ``9999-12-31T23:59:59-01:00`` (the one that made
the service redeliver forever), Nova's legacy halves of shared event types on the legacy topic, a timestamp far
ahead of the clock and a reused message id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import generate_latest
from tests.api.helpers import sample
from tests.simkit import simulate_collected

from novawatch.bus import open_publisher, open_subscriber
from novawatch.bus.base import Subscriber
from novawatch.model import to_snapshot
from novawatch.model.live.runtime import ModelRuntime
from novawatch.notifications.event import UNVERSIONED_TOPIC, VERSIONED_TOPIC
from novawatch.simulate import Config
from novawatch.snapshot import dumps

TIMEOUT = 120.0

BAD_TIMESTAMPS = ("9999-12-31T23:59:59-01:00", "2026-13-45 99:99:99.000000", "zzzzzzzzzz zzzzzzzz.zzzzzz")


@pytest_asyncio.fixture(params=["embedded", "rabbit"])
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, str, list[Subscriber]]]:
    """(bus URL, a consumer group of this test's own, subscribers whose queues to delete afterwards)."""
    group = f"input-{uuid.uuid4().hex[:12]}"
    subscribers: list[Subscriber] = []
    if request.param == "embedded":
        yield f"embedded://{tmp_path}/bus", group, subscribers
        return
    broker = request.getfixturevalue("rabbitmq")
    yield broker.amqp_url, group, subscribers
    import aio_pika

    queues = [q for s in subscribers for q in (getattr(s, "queue_name", None), getattr(s, "dead_letter_queue", None))
              if q]
    if queues and broker.is_running():
        connection = await aio_pika.connect(broker.amqp_url, timeout=30)
        async with connection:
            channel = await connection.channel()
            for name in queues:
                with contextlib.suppress(Exception):
                    await channel.queue_delete(name)


def with_timestamp(body: bytes, timestamp: str, message_id: str | None = None) -> bytes:
    doc = json.loads(body)
    doc["timestamp"] = timestamp
    if message_id is not None:
        doc["message_id"] = message_id
    return json.dumps(doc).encode()


def legacy_halves() -> list[bytes]:
    """Nova's legacy ``scheduler.select_destinations.*`` and ``keypair.*``, as its scheduler and API send them."""
    spec = {"num_instances": 1, "image": {}, "instance_type": {"memory_mb": 512, "vcpus": 1},
            "instance_properties": {"uuid": "178b0921-8f85-4257-88b6-2e743b5a975c", "memory_mb": 512}}
    docs = [{"event_type": f"scheduler.select_destinations.{p}", "payload": {"request_spec": spec},
             "publisher_id": "scheduler.host-1"} for p in ("start", "end")]
    docs.append({"event_type": "keypair.create.start", "publisher_id": "api.host-1",
                 "payload": {"tenant_id": "t", "user_id": "u", "key_name": "k"}})
    return [json.dumps({**d, "priority": "INFO", "message_id": str(uuid.uuid4()),
                        "timestamp": "2026-01-01 00:00:00.000001"}).encode() for d in docs]


async def wait_for_count(runtime: ModelRuntime, total: int, task: asyncio.Task[None]) -> None:
    async def counted() -> None:
        while sum(runtime.state.counts.values()) < total:
            if task.done():
                task.result()  # the consumer's own failure
                raise AssertionError("the consumer stopped")
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(counted(), TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"{sum(runtime.state.counts.values())} of {total} consumed: "
                             f"{runtime.state.counts}, {runtime.state.health()['problems']}") from None


@pytest.mark.asyncio
async def test_the_service_keeps_consuming_and_ends_at_the_truth(bus: tuple[str, str, list[Subscriber]]) -> None:
    url, group, subscribers = bus
    initial, bodies, truth = simulate_collected(
        Config(hosts=2, instances=2, actions=5, seed=1, notification_format="versioned"))
    update = next(b for b in bodies if json.loads(b)["event_type"] == "instance.update")
    poisoned = [with_timestamp(update, ts, str(uuid.uuid4())) for ts in BAD_TIMESTAMPS]
    last_instance = next(b for b in reversed(bodies) if json.loads(b)["event_type"].startswith("instance."))
    # Far ahead of the clock: ordered by arrival (it repeats the instance's last state, so the truth stands).
    ahead = with_timestamp(last_instance, "9999-12-31 23:59:59.000000", str(uuid.uuid4()))
    # The same id, other bytes (the same content pretty-printed): applied, counted.
    reused = json.dumps(json.loads(last_instance), indent=1).encode()
    versioned_half = json.dumps(sample("keypair-create-end")).encode()

    stream: list[tuple[str, bytes]] = [(VERSIONED_TOPIC, b) for b in poisoned]
    stream += [(VERSIONED_TOPIC, b) for b in bodies]
    stream += [(UNVERSIONED_TOPIC, b) for b in legacy_halves()]
    stream += [(VERSIONED_TOPIC, ahead), (VERSIONED_TOPIC, reused)]

    runtime = ModelRuntime()
    runtime.load(initial)
    subscriber = open_subscriber(url, group=group)
    subscribers.append(subscriber)
    await subscriber.start()
    task = asyncio.create_task(runtime.consume(subscriber))
    publisher = open_publisher(url)
    try:
        for topic, body in stream:
            publisher.publish_body(topic, "INFO", body)
        await asyncio.to_thread(publisher.flush, TIMEOUT)
        await wait_for_count(runtime, len(stream), task)

        health = runtime.state.health()
        assert health["status"] == "ok", health["problems"]
        assert (health["rejected"], health["future_timestamps"], health["reused_ids"]) == (3, 1, 1)
        stats = runtime.consumer.stats
        assert (stats.applied, stats.rejected, stats.stale, stats.duplicate) == (len(stream) - 3 - stats.not_needed,
                                                                                 3, 0, 0)
        assert stats.not_needed >= 3  # the legacy halves among them: the model needs none
        reasons = sorted(letter.reason for letter in runtime.consumer.dead_letters)
        assert [r.split(" is ")[0] for r in reasons] == sorted(f"timestamp {ts!r}" for ts in BAD_TIMESTAMPS)
        assert dumps(to_snapshot(runtime.cluster, reported=False)) == truth
        notes = [n for n in runtime.state.recent if n.reason and "ahead of the clock" in n.reason]
        assert len(notes) == 1 and notes[0].outcome == "applied"
        metrics = generate_latest(runtime.state.metrics.registry).decode()
        assert 'novawatch_notifications_noted{kind="future_timestamps"} 1.0' in metrics
        assert 'novawatch_notifications_noted{kind="reused_ids"} 1.0' in metrics

        # Still consuming: the versioned half on the legacy topic is rejected, a later update applied.
        later: dict[str, Any] = json.loads(update)
        later.update(message_id=str(uuid.uuid4()), timestamp="2026-12-01 00:00:00.000000")
        later["payload"]["nova_object.data"]["display_name"] = "renamed"
        publisher.publish_body(UNVERSIONED_TOPIC, "INFO", with_timestamp(versioned_half, "2026-01-01 00:00:00.0",
                                                                          str(uuid.uuid4())))
        publisher.publish_body(VERSIONED_TOPIC, "INFO", json.dumps(later).encode())
        await asyncio.to_thread(publisher.flush, TIMEOUT)
        await wait_for_count(runtime, len(stream) + 2, task)
        uuid_ = later["payload"]["nova_object.data"]["uuid"]
        assert runtime.cluster.store.instances[uuid_].display_name == "renamed"
        assert runtime.state.health()["rejected"] == 4
        assert "legacy topic 'notifications'" in list(runtime.consumer.dead_letters)[-1].reason
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await subscriber.close()
        publisher.close()
