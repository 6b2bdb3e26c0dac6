"""The embedded bus's own promises: bounded on disk, one consumer per group at a time, cursors that persist."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from bushelpers import collect, ids_of, stream

from novawatch.bus import open_publisher, open_subscriber
from novawatch.bus.embedded import DB_NAME, EmbeddedPublisher, EmbeddedSubscriber
from novawatch.notifications.message import Notification


def rows(directory: Path) -> int:
    with sqlite3.connect(directory / DB_NAME) as conn:
        (count,) = conn.execute("SELECT count(*) FROM messages").fetchone()
    return int(count)


@pytest.mark.asyncio
async def test_acknowledged_messages_are_deleted(tmp_path: Path, sample_notifications: list[Notification[Any]]) -> None:
    url = f"embedded://{tmp_path}"
    sent = stream(sample_notifications, 2500)
    async with open_subscriber(url, group="model", commit_every=1) as subscriber:
        with open_publisher(url) as publisher:
            assert isinstance(publisher, EmbeddedPublisher)
            for n in sent[:1500]:
                publisher.publish(n)
            await collect(subscriber, lambda ds: len(ds) >= 1500)
            for n in sent[1500:]:  # the retention pass runs every 1000 publishes
                publisher.publish(n)
            publisher.trim()
        await collect(subscriber, lambda ds: len(ds) >= 1000)
    with open_publisher(url) as publisher:
        assert isinstance(publisher, EmbeddedPublisher)
        publisher.trim()
    assert rows(tmp_path) == 0


@pytest.mark.asyncio
async def test_bounded_on_disk_when_a_group_stops_consuming(
    tmp_path: Path, sample_notifications: list[Notification[Any]]
) -> None:
    url = f"embedded://{tmp_path}?max_messages=500"
    stalled = open_subscriber(url, group="stalled")
    await stalled.start()
    await stalled.close()  # registered, then gone: it holds retention until the bound
    sent = stream(sample_notifications, 3000)
    with open_publisher(url) as publisher:
        for n in sent:
            publisher.publish(n)
    assert rows(tmp_path) <= 500 + 1000  # the bound, plus at most one retention interval
    async with open_subscriber(url, group="stalled") as back:
        assert isinstance(back, EmbeddedSubscriber)
        got = await collect(back, lambda ds: sent[-1].message_id in ids_of(ds))
        assert back.lost > 0
    assert ids_of(got) == {n.message_id for n in sent[-len(got):]}


@pytest.mark.asyncio
async def test_one_consumer_per_group_at_a_time(tmp_path: Path, sample_notifications: list[Notification[Any]]) -> None:
    url = f"embedded://{tmp_path}"
    first = open_subscriber(url, group="model")
    await first.start()
    second = open_subscriber(url, group="model")
    waiting = asyncio.create_task(second.start())
    done, _ = await asyncio.wait({waiting}, timeout=0.3)
    assert not done, "the second subscriber must wait for the group's lock"
    await first.close()
    await asyncio.wait_for(waiting, 30)  # and takes over as soon as the first one is gone
    (n,) = stream(sample_notifications, 1)
    with open_publisher(url) as publisher:
        publisher.publish(n)
    got = await collect(second, lambda ds: len(ds) == 1)
    assert got[0].message_id == n.message_id
    await second.close()


@pytest.mark.asyncio
async def test_new_group_starts_at_the_end_and_redelivery_is_flagged(
    tmp_path: Path, sample_notifications: list[Notification[Any]]
) -> None:
    url = f"embedded://{tmp_path}"
    old, new = stream(sample_notifications, 5), stream(sample_notifications, 5)
    with open_publisher(url) as publisher:
        for n in old:
            publisher.publish(n)
        async with open_subscriber(url, group="late") as subscriber:
            for n in new:
                publisher.publish(n)
            got = await collect(subscriber, lambda ds: len(ds) == 5, ack=False)
    assert ids_of(got) == {n.message_id for n in new}
    assert not any(d.redelivered for d in got)
    async with open_subscriber(url, group="late") as again:
        redelivered = await collect(again, lambda ds: len(ds) == 5)
    assert ids_of(redelivered) == {n.message_id for n in new}
    assert all(d.redelivered for d in redelivered)
