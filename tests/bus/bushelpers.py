"""Helpers and fixtures for the bus tests (conftest.py offers the fixtures to every test module)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import msgspec
import pytest
import pytest_asyncio

from novakit import as_nova34
from novawatch.bus import Delivery, Status, Subscriber
from novawatch.notifications.codec import decode
from novawatch.notifications.message import Notification, format_timestamp

SAMPLES_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "nova-notification-samples"
CONSUMER = Path(__file__).with_name("consumer_proc.py")
TIMEOUT = 120.0  # generous: the tests wait for conditions, never for time


def sample_files() -> list[Path]:
    env = os.environ.get("NOVAWATCH_SHARED_DIR")
    directory = Path(env) / "reference" / "nova-notification-samples" if env else SAMPLES_DIR
    files = sorted(directory.glob("*.json"))
    assert files, f"no notification samples in {directory}"
    return files


@pytest.fixture(scope="session")
def samples() -> list[dict[str, Any]]:
    """Nova's sample notifications, as dicts, as Nova 34 sends them (``novakit.as_nova34``)."""
    out = []
    for path in sample_files():
        sample = json.loads(path.read_bytes())
        as_nova34(sample)
        out.append(sample)
    return out


@pytest.fixture(scope="session")
def sample_notifications(samples: list[dict[str, Any]]) -> list[Notification[Any]]:
    """The samples that novawatch's catalog decodes."""
    out = []
    for sample in samples:
        try:
            out.append(decode(json.dumps(sample)))
        except Exception:
            continue
    assert out
    return out


def stream(notifications: list[Notification[Any]], count: int) -> list[Notification[Any]]:
    """``count`` notifications cycling through the samples, each with its own message id and timestamp."""
    base = time.time()
    from datetime import UTC, datetime

    return [
        msgspec.structs.replace(
            notifications[i % len(notifications)],
            message_id=str(uuid.uuid4()),
            timestamp=format_timestamp(datetime.fromtimestamp(base + i / 1e6, UTC)),
        )
        for i in range(count)
    ]


def unique(prefix: str = "test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def durable_rabbit_url(amqp_url: str) -> str:
    """The broker with durable queues and a control exchange of the test's own, as a cloud with oslo's
    ``amqp_durable_queues = true`` has: what the broker keeps across a restart is then the test's alone."""
    return f"{amqp_url}?durable=true&exchange={unique('durable')}"


def new_group(groups: list[str], prefix: str) -> str:
    """A :func:`unique` queue group, added to ``groups`` (the ``rabbit_groups`` fixture, which deletes them)."""
    group = unique(prefix)
    groups.append(group)
    return group


async def collect(
    subscriber: Subscriber,
    until: Callable[[list[Delivery]], bool],
    timeout: float = TIMEOUT,
    ack: bool = True,
) -> list[Delivery]:
    """Consume (acknowledging each) until ``until(deliveries)`` holds; fail after ``timeout``."""
    got: list[Delivery] = []

    async def run() -> None:
        if until(got):
            return
        async for delivery in subscriber:
            got.append(delivery)
            if ack:
                await delivery.ack()
            if until(got):
                return

    await asyncio.wait_for(run(), timeout)
    return got


def ids_of(deliveries: list[Delivery]) -> set[str]:
    return {d.message_id for d in deliveries if d.status is Status.OK and d.message_id}


def _drop_torn_tail(path: Path) -> None:
    """Cut a file back to its last whole line.

    A SIGKILL can cut a write short at a page boundary, leaving the killed consumer's last record torn; its
    delivery was not acknowledged, so the next consumer gets it again and writes it whole.
    """
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


@dataclass
class ConsumerProcess:
    """A consumer in its own process (``consumer_proc.py``), to be killed with SIGKILL."""

    proc: subprocess.Popen[str]
    out: Path

    @classmethod
    def start(cls, url: str, group: str, out: Path, delay: float = 0.0) -> ConsumerProcess:
        for path in (out, Path(f"{out}.bodies")):
            _drop_torn_tail(path)
        proc = subprocess.Popen(
            [sys.executable, str(CONSUMER), url, group, str(out), str(delay)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until subscribed (or the process died)
        assert line.strip() == "ready", f"consumer did not start (exit {proc.poll()})"
        return cls(proc, out)

    def applied(self) -> list[str]:
        return self.out.read_text().split() if self.out.exists() else []

    def wait_applied(self, predicate: Callable[[list[str]], bool], timeout: float = TIMEOUT) -> list[str]:
        """Wait (polling the output file) until ``predicate(applied ids)`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            ids = self.applied()
            if predicate(ids):
                return ids
            assert self.proc.poll() is None, f"consumer exited with {self.proc.returncode}"
            assert time.monotonic() < deadline, f"timed out with {len(ids)} applied"
            time.sleep(0.05)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(TIMEOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def consumers() -> Iterator[list[ConsumerProcess]]:
    """Consumer processes started by a test; stopped at its end whatever happens."""
    started: list[ConsumerProcess] = []
    yield started
    for consumer in started:
        consumer.stop()


async def delete_queues(amqp_url: str, *names: str) -> None:
    connection = await aio_pika.connect(amqp_url, timeout=30)
    async with connection:
        channel = await connection.channel()
        for name in names:
            await channel.queue_delete(name)


async def delete_exchanges(amqp_url: str, *names: str) -> None:
    connection = await aio_pika.connect(amqp_url, timeout=30)
    async with connection:
        channel = await connection.channel()
        for name in names:
            await channel.exchange_delete(name)


@pytest_asyncio.fixture
async def rabbit_groups(rabbitmq: Any) -> AsyncIterator[list[str]]:
    """Consumer groups (queues) a test creates on the session broker; their queues are deleted after it."""
    names: list[str] = []
    yield names
    queues = [q for name in names for q in (name, f"{name}.dead-letter")]
    if queues and rabbitmq.is_running():
        await delete_queues(rabbitmq.amqp_url, *queues)
        await delete_exchanges(rabbitmq.amqp_url, *(f"{name}.dead-letter" for name in names))


PUBLISHER = Path(__file__).with_name("publisher_proc.py")


@dataclass
class PublisherProcess:
    """A publisher in its own process (``publisher_proc.py``) that records what the bus has durably."""

    proc: subprocess.Popen[str]
    out: Path

    @classmethod
    def start(cls, url: str, out: Path) -> PublisherProcess:
        return cls(subprocess.Popen([sys.executable, str(PUBLISHER), url, str(out)], text=True), out)

    def published(self) -> list[str]:
        return self.out.read_text().split() if self.out.exists() else []

    def wait_published(self, count: int, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while len(self.published()) < count:
            assert self.proc.poll() is None, f"publisher exited with {self.proc.returncode}"
            assert time.monotonic() < deadline, "timed out waiting for the publisher"
            time.sleep(0.05)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(TIMEOUT)
