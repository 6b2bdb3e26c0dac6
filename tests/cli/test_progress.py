"""Progress bars (issue 6): simulate, model replay and model serve's bootstrap, on stderr."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from novawatch.api.services import _bootstrap
from novawatch.cli import main
from novawatch.cli.progress import StepBar, counting, progress_bar, progress_console
from novawatch.model.live.runtime import ModelRuntime
from novawatch.simulate import Config, Simulation
from novawatch.snapshot import InstanceRecord, NodeRecord, Snapshot

SIM = ["simulate", "--hosts", "3", "--instances", "6", "--actions", "40", "--seed", "2"]


def _files(d: Path) -> list[str]:
    return ["--stream", str(d / "stream.jsonl"), "--initial", str(d / "initial.json"), "--truth", str(d / "truth.json")]


def test_progress_console_follows_the_flag() -> None:
    assert progress_console(False) is None
    forced = progress_console(True)
    assert forced is not None and forced.is_terminal
    # Under pytest stderr is not a terminal: no bar by default.
    assert progress_console(None) is None


def test_no_console_means_a_silent_advance() -> None:
    with progress_bar(None, "x", 10) as advance:
        advance(3)  # does nothing, raises nothing


def test_counting_reports_bytes_in_batches_and_passes_results_through() -> None:
    reported: list[int] = []
    calls: list[tuple[bytes, int]] = []

    def process(data: bytes, where: int) -> int:
        calls.append((data, where))
        return where * 10

    counted = counting(process, reported.append, every=2)
    results = [counted(b"x" * n, n) for n in (1, 2, 3, 4, 5)]
    assert results == [10, 20, 30, 40, 50]
    assert calls == [(b"x" * n, n) for n in (1, 2, 3, 4, 5)]
    assert reported == [3, 7]  # after the 2nd and 4th calls: 1+2, then 3+4


def test_simulation_setup_and_run_report_each_step() -> None:
    sim = Simulation(Config(hosts=3, instances=5, actions=12, seed=1), [])
    try:
        setup: list[int] = []
        sim.setup(progress=setup.append)
        run: list[int] = []
        sim.run(progress=run.append)
    finally:
        sim.close()
    assert setup == [1] * 8
    assert run == [1] * 12


def test_simulate_draws_a_bar_when_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*SIM, *_files(tmp_path), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "simulate: setup" in err and "simulate: actions" in err and "40/40" in err


def test_simulate_is_quiet_off_a_terminal_and_with_no_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for flag in ([], ["--no-progress"]):
        assert main([*SIM, *_files(tmp_path), *flag]) == 0
        err = capsys.readouterr().err
        assert "simulate:" not in err and "\x1b[" not in err
        assert "40 actions" in err  # the summary line stays


def test_replay_draws_a_bar_when_forced_and_gives_the_same_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*SIM, *_files(tmp_path), "--no-progress"]) == 0
    capsys.readouterr()
    base = ["model", "replay", str(tmp_path / "stream.jsonl"), "--initial", str(tmp_path / "initial.json")]
    assert main([*base, "--out", str(tmp_path / "quiet.json")]) == 0
    quiet = capsys.readouterr()
    assert "replay" not in quiet.err
    assert main([*base, "--out", str(tmp_path / "bar.json"), "--progress"]) == 0
    shown = capsys.readouterr()
    assert "replay" in shown.err and "kB" in shown.err
    assert shown.out.splitlines()[0] == quiet.out.splitlines()[0]  # the same counts
    assert (tmp_path / "bar.json").read_bytes() == (tmp_path / "truth.json").read_bytes()


class _Source:
    label = "http://compute.test"

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def snapshot(self, progress: Any = None) -> Snapshot:
        from novawatch.sources.errors import SourceError

        if self.failures:
            self.failures -= 1
            raise SourceError("not yet", "unreachable")
        if progress is not None:
            progress("bootstrap: 1 hypervisors listed", 1, None)
        node = NodeRecord(uuid="n1", host="h1", hypervisor_hostname="h1", vcpus=4, memory_mb=4096, local_gb=40)
        inst = InstanceRecord(uuid="i1", host="h1", node="h1", project_id="p", display_name="vm", state="active",
                              power_state="running", vcpus=1, memory_mb=512, disk_gb=1)
        return Snapshot(nodes=[node], instances=[inst])


def test_bootstrap_reports_its_steps_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    import novawatch.api.services as services

    monkeypatch.setattr(services, "RETRY_SECONDS", 0.0)
    steps: list[tuple[str, int, int | None]] = []
    runtime = ModelRuntime(None)
    asyncio.run(_bootstrap(runtime, _Source(failures=1), None,  # type: ignore[arg-type]
                           lambda d, n, t: steps.append((d, n, t))))
    assert steps == [
        ("bootstrap: listing http://compute.test", 0, None),
        ("bootstrap: waiting for http://compute.test", 0, None),  # the first try failed
        ("bootstrap: 1 hypervisors listed", 1, None),  # pages counted as they come (total unknown)
        ("bootstrap: loading 1 nodes, 1 instances", 0, 2),
        ("bootstrap: done", 2, 2),
    ]
    assert len(runtime.cluster.store.instances) == 1


def test_step_bar_draws_and_ends_at_the_last_step() -> None:
    out = io.StringIO()
    bar = StepBar(Console(file=out, force_terminal=True, width=100))
    bar("bootstrap: listing", 0, 2)
    assert bar._progress is not None
    bar("bootstrap: loading", 1, 2)
    bar("bootstrap: done", 2, 2)
    assert bar._progress is None  # stopped
    assert "bootstrap:" in out.getvalue()
    StepBar(None)("ignored", 0, 2)  # no console: nothing at all


def test_model_serve_takes_the_progress_flags() -> None:
    import argparse

    from novawatch.cli.model import add_service_commands

    parser = argparse.ArgumentParser()
    add_service_commands(parser.add_subparsers(dest="cmd"))
    assert parser.parse_args(["serve", "--no-progress"]).progress is False
    assert parser.parse_args(["serve", "--progress"]).progress is True
    assert parser.parse_args(["serve"]).progress is None


def test_replay_file_goes_through_the_counting_wrapper(tmp_path: Path) -> None:
    """``model replay``'s bar relies on ``Consumer.replay_file`` calling the instance's ``process``."""
    from novawatch.model.apply import Consumer

    assert main([*SIM, *_files(tmp_path), "--no-progress"]) == 0
    stream = tmp_path / "stream.jsonl"
    lines = [line for line in stream.read_bytes().splitlines(keepends=True) if line.strip()]
    consumer = Consumer()
    reported: list[int] = []
    consumer.process = counting(consumer.process, reported.append, every=1)  # type: ignore[method-assign]
    stats = consumer.replay_file(stream)
    assert len(reported) == len(lines) == stats.total
    assert sum(reported) == sum(len(line) for line in lines)
