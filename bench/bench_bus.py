"""Bus benchmark: notifier → bus → model service, end to end, on the embedded bus and on RabbitMQ.

For each bus: throughput (notifications per second from the first publish to the last one applied, with
a notifier process publishing as fast as it can and the model service's own consume path applying each
one, as ``novawatch model serve`` does: ``ModelRuntime.handle`` decodes and applies it, publishes what it
changed to the watch stream, the feed, the counters and the metrics, then acknowledges it) and
latency (from the notifier handing an encoded notification to the bus to the model having applied it,
p50/p99, at a steady 100 notifications per second). On RabbitMQ (persistent messages on a durable queue:
``?durable=true``, publisher confirms, manual acks) the same broker is also driven by a plain aio-pika
client doing the same work without novawatch (publish with confirms, consume with acks), flat out and at
100 per second, and the throughput ratio is reported. A private broker is started with
shared/scripts/rabbitmq-ephemeral unless --amqp-url is given.

    .venv/bin/python bench/bench_bus.py [--count 20000] [--latency-seconds 10] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import json
import multiprocessing
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aio_pika
import msgspec

from novawatch.bus import BusDriver, open_publisher, open_subscriber, topic_of
from novawatch.bus.rabbit import envelope

try:
    from novawatch.model.live.runtime import ModelRuntime
    from novawatch.model.outcome import REJECTED
except ImportError:  # before issue 15 the runtime lived in the API package (for before/after runs)
    from novawatch.api.runtime import ModelRuntime  # type: ignore[no-redef]

    from novawatch.model.apply import REJECTED  # type: ignore[attr-defined,no-redef]
from novawatch.notifications.codec import decode
from novawatch.notifications.message import Notification, encode, format_timestamp

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "reference" / "nova-notification-samples"
SCRIPT = ROOT.parent / "shared" / "scripts" / "rabbitmq-ephemeral"


def load_samples() -> list[Notification[Any]]:
    out = []
    for path in sorted(glob.glob(str(SAMPLES / "*.json"))):
        with contextlib.suppress(Exception):
            out.append(decode(Path(path).read_bytes()))
    if not out:
        raise SystemExit(f"no decodable samples in {SAMPLES}")
    return out


def produce(url: str, count: int, rate: float | None, report: Connection) -> None:
    """The compute service's side, in its own process: Notifier-style notifications through BusDriver.

    Sends back through ``report`` when each notification was handed to the bus (wall clock, by message
    id): latency runs from there, after the notifier built and encoded it, as Nova's Notifier does before
    publishing.
    """
    samples = load_samples()
    publisher = open_publisher(url)
    driver = BusDriver(publisher)
    published: dict[str, float] = {}
    start = time.perf_counter()
    for i in range(count):
        if rate:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        n = msgspec.structs.replace(
            samples[i % len(samples)], message_id=str(uuid.uuid4()), timestamp=format_timestamp(datetime.now(UTC))
        )
        body = encode(n)
        published[n.message_id] = time.time()  # type: ignore[index]
        driver.send(topic_of(n), n, body)
    publisher.close(timeout=300)
    report.send(published)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def delete_queues(amqp_url: str, *names: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for name in names:
            await channel.queue_delete(name)


def summary(count: int, first_sent: float, last_applied: float, latencies: list[float]) -> dict[str, Any]:
    latencies.sort()
    elapsed = last_applied - first_sent
    return {
        "count": count,
        "seconds": round(elapsed, 3),
        "per_second": round(count / elapsed),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
        "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 3),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3),
    }


async def run_bus(url: str, count: int, rate: float | None, group: str, cleanup: bool = False) -> dict[str, Any]:
    """A notifier process publishes ``count`` notifications (at ``rate``/s, or flat out); this process
    consumes them (the model service's handle: decode, apply, publish, ack) and returns the figures."""
    model = ModelRuntime()
    subscriber = open_subscriber(url, group=group)
    await subscriber.start()  # the group's queue exists before the first publish
    context = multiprocessing.get_context("spawn")
    receive, report = context.Pipe(duplex=False)
    notifier = context.Process(target=produce, args=(url, count, rate, report))
    notifier.start()
    applied_at: dict[str, float] = {}
    rejected = 0
    async for delivery in subscriber:
        document = delivery.document
        outcome, _reason = model.ingest(document, legacy=delivery.legacy)
        now = time.time()
        if outcome == REJECTED:
            await delivery.reject("rejected by the model")
            rejected += 1
            continue
        await delivery.accept()
        # the benchmark's own look at the id, to match each notification with its publication (latency)
        applied_at.setdefault(_STAMP.decode(document).message_id or "", now)
        if len(applied_at) == count:
            break
    last_applied = time.time()
    await subscriber.close()
    published: dict[str, float] = await asyncio.to_thread(receive.recv)
    await asyncio.to_thread(notifier.join)
    if cleanup:
        await delete_queues(url.partition("?")[0], group, f"{group}.dead-letter")
    latencies = [applied_at[m] - published[m] for m in applied_at]
    return summary(count, min(published.values()), last_applied, latencies) | {"rejected": rejected}


class _Stamp(msgspec.Struct):
    message_id: str | None = None


_STAMP = msgspec.json.Decoder(_Stamp)


PLAIN_EXCHANGE = "bench-plain"


def plain_produce(amqp_url: str, count: int, started: Any, rate: float | None = None) -> None:
    """A plain aio-pika publisher process: persistent messages, publisher confirms, 1024 in flight (or one
    at a time, ``rate`` per second, each carrying its publication time in ``message_id``)."""

    async def run() -> None:
        samples = load_samples()
        bodies = [envelope(encode(samples[i % len(samples)])) for i in range(count)]
        connection = await aio_pika.connect(amqp_url)
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(PLAIN_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        window = asyncio.Semaphore(1024)

        async def publish(body: bytes) -> None:
            try:
                message = aio_pika.Message(
                    body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=repr(time.time()),
                )
                await exchange.publish(message, routing_key="versioned_notifications.info")
            finally:
                window.release()

        started.value = start = time.time()
        tasks = []
        for i, body in enumerate(bodies):
            if rate:
                await asyncio.sleep(max(0.0, start + i / rate - time.time()))
            await window.acquire()
            tasks.append(asyncio.create_task(publish(body)))
        await asyncio.gather(*tasks)
        await connection.close()

    asyncio.run(run())


async def plain_aio_pika(amqp_url: str, count: int, rate: float | None = None) -> dict[str, Any]:
    """The same broker with plain aio-pika clients in the same two-process layout: confirmed persistent
    publishes in one process, consumption with a manual ack each (prefetch 512) in this one."""
    queue_name = f"bench.plain.{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=512)
    await channel.declare_exchange(PLAIN_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(queue_name, durable=True)
    await queue.bind(PLAIN_EXCHANGE, "versioned_notifications.*")
    done = asyncio.Event()
    received = 0
    last = 0.0
    latencies: list[float] = []

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal received, last
        json.loads(message.body)  # the least a consumer does
        await message.ack()
        latencies.append(time.time() - float(message.message_id or 0))
        received += 1
        if received == count:
            last = time.time()
            done.set()

    tag = await queue.consume(on_message)
    context = multiprocessing.get_context("spawn")
    started = context.Value("d", 0.0)
    producer = context.Process(target=plain_produce, args=(amqp_url, count, started, rate))
    producer.start()
    await asyncio.wait_for(done.wait(), 600)
    await asyncio.to_thread(producer.join)
    await queue.cancel(tag)  # before the delete, which would otherwise cancel it with a warning
    await queue.delete(if_unused=False, if_empty=False)
    await connection.close()
    if rate:
        return summary(count, started.value, last, latencies)
    elapsed = last - started.value
    return {"count": count, "seconds": round(elapsed, 3), "per_second": round(count / elapsed)}


@contextlib.contextmanager
def private_broker() -> Iterator[dict[str, str]]:
    out = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, check=True).stdout
    values = {}
    for line in out.splitlines():
        key, _, raw = line.partition("=")
        values[key] = " ".join(shlex.split(raw))
    try:
        yield values
    finally:
        subprocess.run(
            ["bash", str(SCRIPT), "stop", values["RABBITMQ_EPHEMERAL_DIR"]], capture_output=True, check=False
        )


def measure(name: str, fn: Callable[[], Any]) -> Any:
    result = asyncio.run(fn())
    print(f"  {name}: {result}", file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000, help="notifications per throughput run")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="length of the 100/s latency run")
    parser.add_argument("--amqp-url", help="use this broker instead of starting a private one")
    parser.add_argument("--skip-rabbit", action="store_true")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    latency_count = int(args.latency_seconds * 100)
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"embedded://{tmp}/bus"
        print("embedded bus", file=sys.stderr)
        results["embedded"] = {
            "throughput": measure("throughput", lambda: run_bus(url, args.count, None, unique("bench-t"))),
            "latency_100_per_s": measure("latency", lambda: run_bus(url, latency_count, 100, unique("bench-l"))),
        }
    if not args.skip_rabbit:
        with contextlib.ExitStack() as stack:
            amqp_url = args.amqp_url or stack.enter_context(private_broker())["AMQP_URL"]
            print("rabbitmq", file=sys.stderr)
            plain = measure("plain aio-pika", lambda: plain_aio_pika(amqp_url, args.count))
            plain_latency = measure("plain aio-pika latency", lambda: plain_aio_pika(amqp_url, latency_count, 100))
            # a durable exchange and queue, like the plain client's (novawatch's default follows oslo's: transient)
            bus = f"{amqp_url}?durable=true"
            through = measure("throughput", lambda: run_bus(bus, args.count, None, unique("bench-t"), cleanup=True))
            latency = measure("latency", lambda: run_bus(bus, latency_count, 100, unique("bench-l"), cleanup=True))
            results["rabbitmq"] = {
                "plain_aio_pika": plain,
                "plain_aio_pika_latency_100_per_s": plain_latency,
                "throughput": through,
                "latency_100_per_s": latency,
                "ratio_to_plain": round(through["per_second"] / plain["per_second"], 3),
            }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
