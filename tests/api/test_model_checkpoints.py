"""A model service on a RabbitMQ stream restarts from its checkpoint: killed (SIGKILL) after a checkpoint and
after more notifications came, or stopped cleanly (SIGTERM writes one), it loads the checkpoint, reads the
stream again from the offset after it, and ends equal to the truth without listing its source (which is
down while it restarts: a bootstrap could not finish)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from tests.api.helpers import Service, free_port, wait_for
from tests.bus.clusterkit import TIMEOUT, RestWorkload, compute_truth, converge, served_model
from tests.conftest import RabbitMQBroker

from novawatch.model.checkpoint import read_header


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Deployment:
    """``compute serve`` and one ``model serve`` with a checkpoint, each its own process, restartable."""

    def __init__(self, rabbitmq: RabbitMQBroker, tmp: Path, queue_type: str = "stream") -> None:
        self.tmp = tmp
        self.queue_type = queue_type
        exchange = unique("nova")
        self.bus = f"{rabbitmq.oslo_url}?exchange={exchange}&durable=true"
        self.stream = unique("novawatch-model-s")
        self.checkpoint = tmp / "model.checkpoint"
        self.compute_url = f"http://127.0.0.1:{free_port()}"
        self.model_port = free_port()
        self.model_url = f"http://127.0.0.1:{self.model_port}"
        self.env = {"HOME": str(tmp)}
        self.compute: Service | None = None
        self.model: Service | None = None
        self.runs = 0

    def start_compute(self) -> None:
        self.compute = Service(["compute", "serve", "--port", self.compute_url.rsplit(":", 1)[1], "--hosts", "4",
                                "--data-dir", str(self.tmp / "compute"), "--bus", self.bus],
                               self.tmp / f"compute-{self.runs}.log", self.env, cwd=self.tmp)
        wait_for(lambda: httpx.get(self.compute_url + "/v1/health", timeout=5).status_code == 200, TIMEOUT,
                 "the compute service")

    def stop_compute(self) -> None:
        assert self.compute is not None
        assert self.compute.stop() == 0, self.compute.output()[-4000:]
        self.compute = None

    def start_model(self, *, wait: bool = True) -> Service:
        self.runs += 1
        self.model = Service(["model", "serve", "--bus", f"{self.bus}&queue_type={self.queue_type}", "--set",
                              f"bus.queue={self.stream}", "--compute-url", self.compute_url, "--audit-interval", "0",
                              "--node-refresh-interval", "0", "--checkpoint", str(self.checkpoint),
                              "--checkpoint-interval", "1", "--port", str(self.model_port),
                              "--data-dir", str(self.tmp / "model")],
                             self.tmp / f"model-{self.runs}.log", self.env, cwd=self.tmp)
        if wait:
            wait_for(lambda: self.health()["bootstrapped"], TIMEOUT, "the model service to load its model")
        return self.model

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(self.model_url + "/v1/health", timeout=10).json()
        return body

    def bus_status(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(self.model_url + "/v1/bus", timeout=60).json()
        return body

    def workload(self, actions: int, seed: int) -> None:
        work = RestWorkload(self.compute_url, seed=seed)
        try:
            work.run(actions)
            work.wait()
        finally:
            work.close()


def test_a_model_service_on_a_stream_restarts_from_its_checkpoint(rabbitmq: RabbitMQBroker, tmp_path: Path) -> None:
    d = Deployment(rabbitmq, tmp_path)
    try:
        # subscribes first (the stream exists from then on), finds no checkpoint, waits for the source
        model = d.start_model(wait=False)
        d.start_compute()
        wait_for(lambda: d.health()["bootstrapped"], TIMEOUT, "the first bootstrap")
        assert "bootstrapped from" in model.output()
        assert d.health()["checkpoint"]["fallback"].startswith("missing: no checkpoint at")

        # --- killed (SIGKILL) after a checkpoint, and after more notifications came -------------------------
        d.workload(40, seed=1)
        truth = compute_truth(d.compute_url)
        converge(lambda: served_model(d.model_url), lambda: truth, "the model before the kill")
        applied = d.bus_status()["position"]
        wait_for(lambda: (d.health()["checkpoint"]["written"] or {}).get("position") == applied, TIMEOUT,
                 "a checkpoint covering everything applied")
        d.workload(20, seed=2)
        assert d.model is not None
        d.model.proc.kill()
        d.model.proc.wait(30)
        d.workload(30, seed=3)  # published while the model is down: only the stream has these
        truth = compute_truth(d.compute_url)
        d.stop_compute()  # the source is gone: a bootstrap could not happen
        header = read_header(d.checkpoint)
        assert header.kind == "stream" and header.position is not None and not header.final

        d.start_model()
        assert converge(lambda: served_model(d.model_url), lambda: truth, "the model restarted after SIGKILL")
        health = d.health()
        assert health["restored"] is True and health["checkpoint"]["fallback"] is None
        restored = health["checkpoint"]["restored"]
        bus = d.bus_status()
        assert restored["position"] == header.position < bus["position"] == bus["last"], (restored, bus)
        output = d.model.output()
        assert f"restored from checkpoint {d.checkpoint}" in output and "bootstrapped from" not in output
        assert health["gaps"] == 0 and health["relists"] == 0

        # --- stopped cleanly (SIGTERM): the checkpoint written on the way out covers everything ------------
        d.start_compute()
        d.workload(20, seed=4)
        truth = compute_truth(d.compute_url)
        converge(lambda: served_model(d.model_url), lambda: truth, "the model before SIGTERM")
        position = d.bus_status()["position"]
        d.model.proc.send_signal(signal.SIGTERM)
        assert d.model.proc.wait(60) == 0, d.model.output()[-4000:]
        assert f"wrote checkpoint {d.checkpoint}" in d.model.output()
        header = read_header(d.checkpoint)
        assert header.final and header.position == position
        d.workload(20, seed=5)
        truth = compute_truth(d.compute_url)
        d.stop_compute()

        d.start_model()
        assert converge(lambda: served_model(d.model_url), lambda: truth, "the model restarted after SIGTERM")
        health = d.health()
        assert health["restored"] is True and health["checkpoint"]["restored"]["position"] == position
        assert "bootstrapped from" not in d.model.output()
        shown = d.bus_status()
        assert shown["checkpoint"]["restored"]["position"] == position
        status = subprocess.run([sys.executable, "-m", "novawatch.cli", "model", "status", "--url", d.model_url],
                                capture_output=True, text=True, timeout=120, env={"HOME": str(tmp_path),
                                                                                   "PATH": "/usr/bin:/bin"})
        assert status.returncode == 0, status.stderr
        assert f"restored  from the checkpoint at offset {position} (" in status.stdout
        assert f"checkpoint {d.checkpoint}: " in status.stdout
    finally:
        for service in (d.model, d.compute):
            if service is not None:
                service.stop()
        with contextlib.suppress(Exception):
            rabbitmq.ctl("delete_queue", d.stream)


def test_a_model_service_on_a_quorum_queue_killed_after_its_checkpoint_relists_what_it_lost(
        rabbitmq: RabbitMQBroker, tmp_path: Path) -> None:
    """On a queue there is no offset to go back to: what was acknowledged after the checkpoint is gone from the
    queue, so a restart after SIGKILL restores the checkpoint, then re-lists the source (as after a gap)."""
    d = Deployment(rabbitmq, tmp_path, queue_type="quorum")
    try:
        d.start_model(wait=False)
        d.start_compute()
        wait_for(lambda: d.health()["bootstrapped"], TIMEOUT, "the first bootstrap")
        d.workload(30, seed=6)
        truth = compute_truth(d.compute_url)
        converge(lambda: served_model(d.model_url), lambda: truth, "the model before the kill")
        applied = d.health()["applied"]
        wait_for(lambda: (d.health()["checkpoint"]["written"] or {}).get("age_seconds", 1e9) < 0.5
                 and d.health()["applied"] == applied, TIMEOUT, "a checkpoint covering everything applied")
        stale = d.checkpoint.read_bytes()  # the checkpoint as it was before what follows
        d.workload(30, seed=7)  # applied and acknowledged: gone from the queue, not in that checkpoint
        truth = compute_truth(d.compute_url)
        converge(lambda: served_model(d.model_url), lambda: truth, "the model before the kill")
        assert d.model is not None
        d.model.proc.kill()  # as if right after that checkpoint: put it back
        d.model.proc.wait(30)
        d.checkpoint.write_bytes(stale)
        written = read_header(d.checkpoint)
        assert written.kind == "quorum" and written.position is None and not written.final
        d.workload(20, seed=8)  # kept by the queue while the model is down
        truth = compute_truth(d.compute_url)

        d.start_model()
        assert converge(lambda: served_model(d.model_url), lambda: truth, "the model restarted after SIGKILL")
        wait_for(lambda: d.health()["relists"] >= 1, TIMEOUT, "the re-list after the restore")
        health = d.health()
        assert health["restored"] is True and "stopped uncleanly" in health["last_gap"]["reason"]
        assert "bootstrapped from" not in d.model.output()
    finally:
        for service in (d.model, d.compute):
            if service is not None:
                service.stop()
        with contextlib.suppress(Exception):
            rabbitmq.ctl("delete_queue", d.stream)


DOCS_MODEL = Path(__file__).resolve().parents[2] / "docs" / "model.md"


def test_the_command_docs_model_md_shows_keeps_and_restores_a_checkpoint(tmp_path: Path) -> None:
    """``docs/model.md``'s command, verbatim (embedded bus, no source): the first start finds no checkpoint,
    SIGINT writes one, the second start restores it; ``model status`` shows it."""
    block = DOCS_MODEL.read_text().split("## Checkpoints", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = block.strip().splitlines()
    assert len(commands) == 1 and commands[0].startswith("novawatch model serve --checkpoint "), commands
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"HOME": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "NOVAWATCH_MODEL_PORT": str(port), "NOVAWATCH_MODEL_COMPUTE_URL": "", "PYTHONUNBUFFERED": "1"}

    def health() -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(url + "/v1/health", timeout=10).json()
        return body

    def start(n: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen("exec " + commands[0], shell=True, cwd=tmp_path, env=env,
                                stdout=(tmp_path / f"serve-{n}.log").open("wb"), stderr=subprocess.STDOUT)

    first = start(1)
    try:
        checkpoint = wait_for(lambda: health()["checkpoint"], 120, "the first start")
        assert checkpoint["fallback"].startswith("missing: no checkpoint at")
        assert checkpoint["interval_seconds"] == 30 and health()["restored"] is False
    finally:
        first.send_signal(signal.SIGINT)
        assert first.wait(60) == 0
    assert "wrote checkpoint model.checkpoint" in (tmp_path / "serve-1.log").read_text()
    assert read_header(tmp_path / "model.checkpoint").final
    second = start(2)
    try:
        wait_for(lambda: health()["restored"], 120, "the restart from the checkpoint")
        assert health()["checkpoint"]["fallback"] is None and health()["status"] == "ok", health()
        shown = subprocess.run([sys.executable, "-m", "novawatch.cli", "model", "status", "--url", url],
                               capture_output=True, text=True, timeout=60, env=env)
        assert shown.returncode == 0 and "restored  from the checkpoint at " in shown.stdout, shown
        assert "checkpoint model.checkpoint: none written yet (every 30s)" in shown.stdout
    finally:
        second.send_signal(signal.SIGINT)
        assert second.wait(60) == 0
