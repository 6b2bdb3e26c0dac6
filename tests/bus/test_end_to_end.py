"""Compute service → bus → data model, with faults: the model ends equal to the truth.

``novawatch simulate``'s engine (seeded, with failures injected, both notification formats) produces the
initial snapshot, the stream and the truth; the stream goes through the bus while the broker is restarted
or the consumer is killed with SIGKILL and restarted; what the consumers applied, replayed into a model
bootstrapped from the initial snapshot, must give exactly the truth's snapshot.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from bushelpers import TIMEOUT, ConsumerProcess, durable_rabbit_url, new_group

from novawatch.bus import BusDriver, Publisher, Status, open_publisher, open_subscriber
from novawatch.model import Consumer, from_snapshot, to_snapshot
from novawatch.notifications.event import UNVERSIONED_TOPIC, VERSIONED_TOPIC
from novawatch.simulate import Config, Simulation
from novawatch.snapshot import Snapshot, dumps
from simkit import Collect, simulate_collected


@dataclass
class Run:
    initial: Snapshot
    stream: tuple[bytes, ...]
    truth: bytes

    @functools.cached_property
    def ids(self) -> set[str]:
        return {json.loads(body)["message_id"] for body in self.stream}


@pytest.fixture(scope="module")
def run() -> Run:
    return Run(*simulate_collected(Config(hosts=6, instances=40, actions=400, seed=11, failure_rate=0.05)))


def model_after(initial: Snapshot, bodies: list[bytes]) -> bytes:
    consumer = Consumer(from_snapshot(initial))
    stats = consumer.process_all(bodies)
    assert stats.rejected == 0, list(consumer.dead_letters)[:3]
    return dumps(to_snapshot(consumer.cluster, reported=False))


def publish_stream(publisher: Publisher, bodies: tuple[bytes, ...] | list[bytes]) -> None:
    for body in bodies:
        head = json.loads(body)
        # Nova's topic by the payload's format: legacy events are not all compute.* (scheduler.*, compute_task.*)
        versioned = isinstance(head.get("payload"), dict) and "nova_object.data" in head["payload"]
        topic = VERSIONED_TOPIC if versioned else UNVERSIONED_TOPIC
        publisher.publish_body(topic, head["priority"], body)


def model_dict(body: bytes) -> str | bytes:
    """The notification dict of a body (oslo's envelope unwrapped)."""
    data: dict[str, Any] = json.loads(body)
    inner: str | bytes = data.get("oslo.message", body)
    return inner


async def first_of(waiting: Any, consumer: asyncio.Task[None]) -> None:
    """Wait for ``waiting``, but fail at once if the consumer task dies first."""
    done, _ = await asyncio.wait({asyncio.ensure_future(waiting), consumer}, return_when=asyncio.FIRST_COMPLETED)
    if consumer in done:
        consumer.result()  # raises the consumer's own failure


def test_the_stream_replayed_directly_gives_the_truth(run: Run) -> None:
    """The comparison itself: without a bus in between, the model ends equal to the truth."""
    assert len(run.stream) > 1000
    assert model_after(run.initial, list(run.stream)) == run.truth


@pytest_asyncio.fixture(params=["embedded", "rabbit"])
async def durable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "embedded":
        return f"embedded://{tmp_path}/bus"
    return durable_rabbit_url(request.getfixturevalue("rabbitmq").amqp_url)


@pytest.mark.asyncio
async def test_consumer_killed_and_restarted_model_equals_truth(
    run: Run, durable_url: str, consumers: list[ConsumerProcess], rabbit_groups: list[str], tmp_path: Path
) -> None:
    group = new_group(rabbit_groups, "e2e-kill")
    applied = tmp_path / "applied.txt"
    first = ConsumerProcess.start(durable_url, group, applied, delay=0.0005)
    consumers.append(first)
    with open_publisher(durable_url) as publisher:
        publish_stream(publisher, run.stream)
        publisher.flush(TIMEOUT)
    first.wait_applied(lambda ids: len(ids) >= len(run.stream) // 5)
    first.kill()
    assert len(set(first.applied())) < len(run.ids), "the kill came after the end of the stream"
    second = ConsumerProcess.start(durable_url, group, applied)
    consumers.append(second)
    second.wait_applied(lambda ids: set(ids) >= run.ids)
    second.stop()
    bodies = Path(f"{applied}.bodies").read_bytes().splitlines()
    assert model_after(run.initial, bodies) == run.truth


@pytest.mark.asyncio
async def test_broker_restarted_mid_stream_model_equals_truth(
    run: Run, rabbitmq: Any, rabbit_groups: list[str]
) -> None:
    group = new_group(rabbit_groups, "e2e-restart")
    url = durable_rabbit_url(rabbitmq.amqp_url)  # with oslo's default (transient) the broker forgets the queue
    model = Consumer(from_snapshot(run.initial))
    seen: set[str] = set()
    third = asyncio.Event()
    async with open_subscriber(url, group=group, prefetch=64) as subscriber:

        async def consume() -> None:
            async for delivery in subscriber:
                assert delivery.status is not Status.REJECTED, delivery.reason
                model.process(delivery.body)  # applied, then acknowledged
                await delivery.ack()
                seen.add(json.loads(model_dict(delivery.body))["message_id"])
                if len(seen) >= len(run.stream) // 3:
                    third.set()
                if seen >= run.ids:
                    return

        consumer = asyncio.create_task(consume())
        publisher = open_publisher(url)
        split = len(run.stream) // 2
        try:
            publish_stream(publisher, run.stream[:split])
            await asyncio.wait_for(first_of(third.wait(), consumer), TIMEOUT)
            await asyncio.to_thread(rabbitmq.stop_app)
            publish_stream(publisher, run.stream[split:])  # into the outbox while the broker is away
            await asyncio.to_thread(rabbitmq.start_app)
            await asyncio.to_thread(publisher.flush, TIMEOUT)
            try:
                await asyncio.wait_for(consumer, TIMEOUT)
            except TimeoutError:
                missing = run.ids - seen
                queues = await asyncio.to_thread(rabbitmq.list_queues)
                raise AssertionError(f"{len(missing)} of {len(run.ids)} never arrived; queues {queues}") from None
        finally:
            if not rabbitmq.is_running():
                await asyncio.to_thread(rabbitmq.start_app)
            consumer.cancel()
            publisher.close()
    assert model.stats.rejected == 0
    assert dumps(to_snapshot(model.cluster, reported=False)) == run.truth


@pytest.mark.asyncio
async def test_simulated_compute_service_publishes_through_the_bus_driver(
    durable_url: str, rabbit_groups: list[str]
) -> None:
    """The compute service's own notifier sends through :class:`BusDriver`; the model consumes the bus."""
    group = new_group(rabbit_groups, "e2e-driver")
    collect = Collect()
    async with open_subscriber(durable_url, group=group) as subscriber:
        with open_publisher(durable_url) as publisher:
            sim = Simulation(Config(hosts=4, instances=20, actions=150, seed=5, failure_rate=0.05),
                             [collect, BusDriver(publisher)])
            try:
                initial = sim.setup()
                await asyncio.to_thread(sim.run)
                truth = dumps(sim.truth())
            finally:
                sim.close()
            publisher.flush(TIMEOUT)
        want = {json.loads(body)["message_id"] for body in collect.bodies}
        model = Consumer(from_snapshot(initial))
        seen: set[str] = set()

        async def consume() -> None:
            async for delivery in subscriber:
                model.process(delivery.body)
                await delivery.ack()
                seen.add(json.loads(model_dict(delivery.body))["message_id"])
                if seen >= want:
                    return

        await asyncio.wait_for(consume(), TIMEOUT)
    assert model.stats.rejected == 0
    assert dumps(to_snapshot(model.cluster, reported=False)) == truth
