"""The model service's checkpoints: restored when usable; otherwise a fallback to a bootstrap, said in the log
and the health, for each way a checkpoint can be unusable."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from tests.api.helpers import small_cloud

from novawatch.model import to_snapshot
from novawatch.model.checkpoint import MAGIC
from novawatch.model.live.checkpoints import Checkpoints
from novawatch.model.live.runtime import ModelRuntime
from novawatch.snapshot import dumps

IDENTITY = {"bus": "rabbit://guest:***@127.0.0.1:5672/?queue_type=stream", "queue": "novawatch-model",
            "source": "http://127.0.0.1:8774"}


def written(path: Path, **options: Any) -> tuple[bytes, Checkpoints]:
    """A checkpoint of a small cloud at ``path`` (the model's snapshot), by a service with ``options``."""
    runtime = ModelRuntime()
    runtime.load(small_cloud())
    runtime.position, runtime.kind = 41, "stream"
    checkpoints = Checkpoints(runtime, path, identity=options.pop("identity", IDENTITY), **options)
    history: list[list[float]] = [[1.0, 2.0], [3.0, 4.0]]
    checkpoints.section("history", lambda: [list(p) for p in history], history.extend)
    return dumps(to_snapshot(runtime.cluster)), checkpoints


async def started(path: Path, **options: Any) -> tuple[ModelRuntime, Checkpoints, list[Any]]:
    runtime = ModelRuntime()
    loaded: list[Any] = []
    checkpoints = Checkpoints(runtime, path, identity=options.pop("identity", IDENTITY), **options)
    checkpoints.section("history", lambda: [], loaded.append)
    await checkpoints.load()
    return runtime, checkpoints, loaded


@pytest.mark.asyncio
async def test_a_service_restores_its_model_position_and_sections(tmp_path: Path) -> None:
    path = tmp_path / "model.checkpoint"
    snapshot, writer = written(path)
    await writer.write()
    assert writer.status()["written"]["position"] == 41 and writer.pause_seconds is not None
    runtime, checkpoints, loaded = await started(path)
    assert dumps(to_snapshot(runtime.cluster)) == snapshot
    assert (runtime.position, runtime.kind) == (41, "stream")
    assert loaded == [[[1.0, 2.0], [3.0, 4.0]]]
    health = runtime.state.health()
    assert health["restored"] is True and health["bootstrapped"] is True
    assert health["checkpoint"]["restored"]["position"] == 41 and health["checkpoint"]["fallback"] is None
    # the bus resumes after the checkpoint's offset: no gap; a queue after an unclean stop: a gap
    assert checkpoints.resume_gap("stream", None) is None
    assert "stopped uncleanly" in (checkpoints.resume_gap("quorum", None) or "")
    # the restored service writes its own checkpoints in turn
    await checkpoints.write()
    assert checkpoints.error is None and checkpoints.writes == 1


@pytest.mark.asyncio
async def test_a_final_checkpoint_on_a_durable_queue_needs_no_relist(tmp_path: Path) -> None:
    path = tmp_path / "c"
    _, writer = written(path)
    writer.runtime.kind = "quorum"
    await writer.write(final=True)
    _, checkpoints, _ = await started(path)
    assert checkpoints.resume_gap("quorum", None) is None
    assert "stopped uncleanly" in (checkpoints.resume_gap("memory", None) or "")


def damage_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def damage_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-7] ^= 0x40
    path.write_bytes(bytes(data))


def damage_format(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace(b'"format":1', b'"format":9', 1))


def damage_garbage(path: Path) -> None:
    path.write_bytes(b"\x00" * 300)


def damage_remove(path: Path) -> None:
    path.unlink()


@pytest.mark.asyncio
@pytest.mark.parametrize(("damage", "kind", "says"), [
    (damage_truncate, "truncated", "is truncated"),
    (damage_flip, "corrupt", "checksum does not match"),
    (damage_format, "format", "has format 9; this novawatch reads format 1"),
    (damage_garbage, "corrupt", "is not a novawatch checkpoint"),
    (damage_remove, "missing", "no checkpoint at"),
])
async def test_a_damaged_checkpoint_falls_back_to_a_bootstrap(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                              damage: Any, kind: str, says: str) -> None:
    path = tmp_path / "model.checkpoint"
    _, writer = written(path)
    await writer.write()
    damage(path)
    caplog.set_level(logging.INFO, "novawatch.model.live.checkpoints")
    runtime, checkpoints, loaded = await started(path)
    assert len(runtime.cluster.store.instances) == 0 and loaded == []
    assert checkpoints.loaded is None and checkpoints.fallback is not None
    assert checkpoints.fallback.startswith(f"{kind}: ") and says in checkpoints.fallback
    health = runtime.state.health()
    assert health["checkpoint"]["fallback"] == checkpoints.fallback and health["restored"] is False
    line = next(r for r in caplog.records if r.name == "novawatch.model.live.checkpoints")
    assert says in line.getMessage() and "bootstrapping from the source" in line.getMessage()
    assert line.levelno == (logging.INFO if kind == "missing" else logging.WARNING)


@pytest.mark.asyncio
async def test_a_checkpoint_older_than_the_maximum_age_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "c"
    _, writer = written(path)
    await writer.write()
    _, checkpoints, _ = await started(path, max_age=3600.0, clock=lambda: time.time() + 7200)
    assert checkpoints.loaded is None and (checkpoints.fallback or "").startswith("too old: ")
    assert "model.checkpoint_max_age" in (checkpoints.fallback or "")
    _, checkpoints, _ = await started(path, max_age=0.0, clock=lambda: time.time() + 7200)
    assert checkpoints.loaded is not None, "max_age 0 accepts any age"


@pytest.mark.asyncio
@pytest.mark.parametrize("key", ["bus", "queue", "source"])
async def test_a_checkpoint_of_another_bus_or_cloud_is_not_used(tmp_path: Path, key: str) -> None:
    path = tmp_path / "c"
    _, writer = written(path)
    await writer.write()
    other = {**IDENTITY, key: "something else"}
    runtime, checkpoints, _ = await started(path, identity=other)
    assert len(runtime.cluster.store.nodes) == 0
    assert (checkpoints.fallback or "").startswith(f"another bus or cloud: checkpoint {path} was written for {key} ")


@pytest.mark.asyncio
async def test_a_checkpoint_that_cannot_be_written_is_a_health_problem(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    _, writer = written(blocker / "model.checkpoint")  # a directory that is a file
    await writer.write()
    health = writer.runtime.state.health()
    assert health["status"] == "degraded"
    assert any(p.startswith("checkpoint: cannot write checkpoint") for p in health["problems"])
    writer.path = tmp_path / "model.checkpoint"
    await writer.write()
    assert writer.runtime.state.health()["status"] == "ok" and writer.path.read_bytes().startswith(MAGIC)


@pytest.mark.asyncio
async def test_a_section_registered_on_the_state_before_the_service_starts_is_kept(tmp_path: Path) -> None:
    """The hook the API's routers use: ``state.checkpoint_section`` before the checkpoints exist."""
    path = tmp_path / "c"
    runtime = ModelRuntime()
    runtime.load(small_cloud())
    series = {"free_ram": [[1.0, 100], [2.0, 90]]}
    runtime.state.checkpoint_section("series", lambda: {k: list(v) for k, v in series.items()}, print)
    broken: list[Any] = []
    runtime.state.checkpoint_section("broken", lambda: 1 / 0, broken.append)
    runtime.state.checkpoint_section("extra", lambda: [1], print)
    writer = Checkpoints(runtime, path, identity=IDENTITY)
    await writer.write()
    assert writer.error is None and writer.written is not None and writer.written.sections == ["extra", "series"]
    again = ModelRuntime()
    got: list[Any] = []
    again.state.checkpoint_section("series", lambda: None, got.append)
    again.state.checkpoint_section("extra", lambda: None, lambda value: 1 / 0)  # its failure stops nothing
    assert await Checkpoints(again, path, identity=IDENTITY).load() is not None
    assert got == [{"free_ram": [[1.0, 100], [2.0, 90]]}] and broken == []
    assert len(again.cluster.store.nodes) == len(runtime.cluster.store.nodes) > 0
