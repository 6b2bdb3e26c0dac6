"""The dashboard's state in the model service without HTTP: the series' tiers and window, and the series, the
instances' history and the hosts' series kept across a restart by the checkpoints."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.api.helpers import instance_notification, small_cloud

from novawatch.model.live.checkpoints import Checkpoints
from novawatch.model.live.runtime import ModelRuntime
from novawatch.model.live.series import Series, tiers_for

IDENTITY = {"bus": "memory://", "queue": "novawatch-model", "source": None}
NEW = "22222222-0000-4000-8000-00000000000a"


def test_tiers_cover_the_window_and_memory_stays_bounded() -> None:
    assert tiers_for(7 * 86400, 10) == [(10, 360), (60, 1440), (600, 1008)]
    assert tiers_for(1800, 5) == [(5, 360)]
    assert tiers_for(7200, 60) == [(60, 120)]
    with pytest.raises(ValueError, match="series_resolution"):
        tiers_for(3600, 0)
    series = Series(window=7200, resolution=10)
    for i in range(5000):  # 50,000 s of samples into a window of 2 h
        series.add(1000.0 + 10 * i, {"instances": i})
    assert [len(t.points) for t in series.tiers] == [360, 120]
    minute = series.tiers[1].points
    # each minute point is the mean of its six 10-second samples (t = 50880 ... 50930: samples 4988-4993)
    assert minute[-1][1][series.names.index("instances")] == pytest.approx(sum(range(4988, 4994)) / 6)
    assert series.samples == 5000


@pytest.mark.asyncio
async def test_series_history_and_host_series_survive_a_restart_through_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "model.checkpoint"
    runtime = ModelRuntime()
    runtime.load(small_cloud())
    runtime.state.keep_in_checkpoints()
    for name in ("instance-create-end", "instance-pause-end"):
        runtime.ingest(instance_notification(name, uuid=NEW, host="host-0002"))
    now = time.time()
    for i in range(3):
        runtime.state.sample(now - 30 + 10 * i)
    writer = Checkpoints(runtime, path, identity=IDENTITY)
    await writer.write(final=True)
    assert writer.error is None and writer.written is not None
    assert {"dashboard.series", "dashboard.history", "dashboard.host_series"} <= set(writer.written.sections)

    again = ModelRuntime()
    again.state.keep_in_checkpoints()
    assert await Checkpoints(again, path, identity=IDENTITY).load() is not None
    history = again.state.history.of(NEW)
    assert history is not None
    assert [e["event_type"] for e in history[0]] == ["instance.create.end", "instance.pause.end"]
    assert history[0][1]["changes"]["state"] == ["active", "paused"]
    got = again.state.series.query(["instances", "ram_mb_used"], now - 60, now + 1)
    assert got["t"] == [now - 30, now - 20, now - 10] and got["series"]["instances"] == [7, 7, 7]
    before = runtime.state.host_series.of("host-0002")
    after = again.state.host_series.of("host-0002")
    assert before is not None and after is not None
    # what was recorded before the restart, then the node as restored
    assert after["ram_mb_used"][: len(before["ram_mb_used"])] == before["ram_mb_used"]
    assert after["t"] == sorted(after["t"])
