"""The change feed: numbered, resumable, followed across threads, and honest about what it dropped."""

from __future__ import annotations

import asyncio
import threading

import pytest

from novawatch.model.live.feed import ChangeFeed, Expired, Position, parse_position


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


def test_positions_name_the_run_that_numbered_them() -> None:
    """Two feeds counting the same numbers (two runs, or two replicas) tell their positions apart."""
    one, two = ChangeFeed(), ChangeFeed()
    for feed in (one, two):
        for n in range(4):
            feed.publish("node", "upsert", f"n{n}")
    assert one.incarnation != two.incarnation
    mine = parse_position(one.event_id(2))
    assert mine == Position(2, one.incarnation)
    assert one.unresumable(mine) is None and [c.seq for c in one.since(mine.seq)] == [3, 4]
    reason = two.unresumable(mine)
    assert reason is not None and "another run" in reason and one.incarnation in reason
    # A bare number: resumable unless it is ahead of the feed (the service restarted).
    assert two.unresumable(Position(3)) is None
    ahead = two.unresumable(Position(9))
    assert ahead is not None and "restarted" in ahead
    assert two.unresumable(Position(9, two.incarnation)) is not None  # an id ahead of its own run: never resumed


@pytest.mark.parametrize("text, expected", [
    ("0", Position(0)), ("42", Position(42)), ("42.0a1b2c", Position(42, "0a1b2c")), (" 7 ", None),
    ("", None), ("abc", None), ("-1", None), ("4.2.1", None), ("42.", None), (".ab", None), ("42.ABC", None),
    ("1e3", None), ("9" * 19, None), ("\u0664\u0662", None), ("\u00b2", None), ("42.abc\n", None),
])
def test_parse_position(text: str, expected: Position | None) -> None:
    assert parse_position(text) == expected
