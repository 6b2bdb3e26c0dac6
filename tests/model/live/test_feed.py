"""The change feed: numbered, resumable, followed across threads, and honest about what it dropped."""

from __future__ import annotations

import asyncio
import threading

import pytest

from novawatch.model.live.feed import ChangeFeed, Expired


def test_since_and_expiry() -> None:
    feed = ChangeFeed(capacity=3)
    for n in range(5):
        feed.publish("node", "upsert", f"n{n}")
    assert feed.seq == 5
    assert [c.seq for c in feed.since(2)] == [3, 4, 5]
    assert feed.since(5) == []
    with pytest.raises(Expired) as info:
        feed.since(1)
    assert info.value.current == 5 and info.value.oldest == 3 and "re-list" in str(info.value)


def test_follow_sees_changes_published_from_another_thread() -> None:
    feed = ChangeFeed(capacity=10000)

    async def follow() -> list[int]:
        seen: list[int] = []
        started.set()
        async for change in feed.follow(0, heartbeat=30):
            assert change is not None
            seen.append(change.seq)
            if len(seen) == 1000:
                break
        return seen

    started = threading.Event()

    def publish() -> None:
        started.wait(30)
        for n in range(1000):
            feed.publish("instance", "upsert", str(n))

    writer = threading.Thread(target=publish)
    writer.start()
    seen = asyncio.run(follow())
    writer.join(30)
    assert seen == list(range(1, 1001))


def test_close_ends_followers_and_heartbeats_when_idle() -> None:
    feed = ChangeFeed()

    async def run() -> list[object]:
        out: list[object] = []
        async for change in feed.follow(heartbeat=0.01):
            out.append(change)
            if len(out) == 2:
                feed.close()
        return out

    assert asyncio.run(run()) == [None, None]
