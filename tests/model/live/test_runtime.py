"""The runtime after a gap in the stream: it re-lists its source (an informer's relist) and says so in the health."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from tests.api.helpers import small_cloud

from novawatch.bus import open_subscriber
from novawatch.model import to_snapshot
from novawatch.model.live.runtime import ModelRuntime
from novawatch.snapshot import Snapshot, build


async def until(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def moved(snapshot: Snapshot) -> Snapshot:
    """The cloud after a change the model never heard of: the first instance stopped."""
    first, *rest = snapshot.instances
    return build(snapshot.nodes, [msgspec.structs.replace(first, state="stopped", power_state="shutdown"), *rest])


@pytest.mark.asyncio
async def test_a_gap_is_followed_by_a_relist_that_repairs_what_was_missed() -> None:
    before = small_cloud()
    after = moved(before)
    runtime = ModelRuntime()
    runtime.load(before)
    subscriber = open_subscriber("memory://runtime-gap", group="novawatch-model")
    runtime.follow(subscriber, lambda: after)
    assert subscriber.on_gap is not None and not subscriber.resumed
    subscriber.on_gap("queue 'novawatch-model' was gone")
    health = runtime.state.health()
    assert health["status"] == "degraded" and health["gaps"] == 1
    assert any("re-listing the source" in p for p in health["problems"])
    await until(lambda: runtime.state.relists == 1, "the re-list")
    assert to_snapshot(runtime.cluster, reported=False) == after
    health = runtime.state.health()
    assert health["last_relist"]["repaired"] == 1 and health["last_gap"]["reason"] == "queue 'novawatch-model' was gone"
    assert not any("re-listing" in p for p in health["problems"])
    # a subscriber that takes over from this one judges its first connection as a reconnection
    second = open_subscriber("memory://runtime-gap", group="novawatch-model")
    runtime.follow(second, lambda: after)
    assert second.resumed


@pytest.mark.asyncio
async def test_a_failed_relist_is_tried_again_until_it_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("novawatch.model.live.runtime.RELIST_RETRY", (0.01, 0.05))
    before = small_cloud()
    after = moved(before)
    answers: list[Snapshot | Exception] = [ConnectionError("source down"), ConnectionError("source down"), after]

    def fetch() -> Snapshot:
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    runtime = ModelRuntime()
    runtime.load(before)
    subscriber = open_subscriber("memory://runtime-retry", group="novawatch-model")
    runtime.follow(subscriber, fetch)
    assert subscriber.on_gap is not None
    subscriber.on_gap("queue lost")
    await until(lambda: runtime.state.relists == 1, "the re-list to succeed")
    assert to_snapshot(runtime.cluster, reported=False) == after
    assert runtime.state.relist_error is None and not runtime.state.relist_pending


def test_a_gap_without_a_source_degrades_the_health_with_advice() -> None:
    runtime = ModelRuntime()
    runtime.load(small_cloud())
    subscriber = open_subscriber("memory://runtime-nosource", group="novawatch-model")
    runtime.follow(subscriber, None)
    subscriber.problem = "subscriber novawatch-model: user 'novawatch' needs read permission on exchange 'nova'"
    health = runtime.state.health()
    assert health["status"] == "failing"
    assert [p for p in health["problems"] if p.startswith("bus: subscriber novawatch-model: user 'novawatch'")]
    subscriber.problem = None
    assert runtime.state.health()["status"] == "ok"
    assert subscriber.on_gap is not None
    subscriber.on_gap("queue 'novawatch-model' was gone")
    health = runtime.state.health()
    assert health["status"] == "degraded" and health["relists"] == 0
    assert any("no source to re-list from" in p and "durable" in p for p in health["problems"])
