"""Secrets never show (issue 13 item 7): not in what the services print or log, not in the unauthenticated
health answer, not in errors, not in ``config show``; each case of the issue against the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
from tests.api.helpers import Service, free_port, wait_for

from novawatch.redact import MASK

COMPUTE_PASSWORD = "pw-compute-7f3a"
COMPUTE_TOKEN = "tok-compute-91c2"
MODEL_TOKEN = "tok-model-44d8"
BUS_PASSWORD = "p@ss"


def _novawatch(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "novawatch.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **(env or {})})


def test_model_serve_shows_no_compute_password_or_token(tmp_path: Path) -> None:
    # Nothing listens at the compute URL: the model keeps retrying, and says so in its health and its log.
    port, closed = free_port(), free_port()
    compute_url = f"http://admin:{COMPUTE_PASSWORD}@127.0.0.1:{closed}"
    model = Service(["-vv", "model", "serve", "--port", str(port), "--data-dir", str(tmp_path / "state"),
                     "--compute-url", compute_url, "--compute-token", COMPUTE_TOKEN, "--token", MODEL_TOKEN,
                     "--audit-interval", "0"], tmp_path / "model.log", {"HOME": str(tmp_path)}, cwd=tmp_path)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            health = wait_for(lambda: (h := client.get("/v1/health").json())["problems"] and h, 120,
                              "the model to report that it cannot reach its source")
            assert health["source"] == f"http://admin:{MASK}@127.0.0.1:{closed}"
            assert "waiting for the source" in health["problems"][0] and f"admin:{MASK}@" in health["problems"][0]
            denied = client.post("/v1/audit", headers={"Authorization": "Bearer wrong"})
            assert denied.status_code == 401
            texts = [json.dumps(health), denied.text, client.get("/metrics").text]
            wait_for(lambda: "connect_tcp.failed" in model.output(), 60, "-vv's log of the failed connection")
    finally:
        assert model.stop() == 0
    output = model.output()
    assert f"source http://admin:{MASK}@127.0.0.1:{closed}" in output  # the start-up line, masked
    for text in [*texts, output]:
        for secret in (COMPUTE_PASSWORD, COMPUTE_TOKEN, MODEL_TOKEN):
            assert secret not in text


def test_compute_serve_masks_a_bus_password_holding_an_at_sign(tmp_path: Path) -> None:
    # "p@ss" used to be logged as "guest:***@ss@host"; nothing listens on the broker port, so the
    # publisher logs that the broker is unreachable, with the URL.
    port, broker = free_port(), free_port()
    compute = Service(["-v", "compute", "serve", "--port", str(port), "--data-dir", str(tmp_path / "state"),
                       "--bus", f"rabbit://guest:{BUS_PASSWORD}@127.0.0.1:{broker}/", "--token", COMPUTE_TOKEN],
                      tmp_path / "compute.log", {"HOME": str(tmp_path)}, cwd=tmp_path)
    try:
        health = wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=30), 120,
                          "the compute service to answer")
        assert health.status_code == 200
        wait_for(lambda: "is unreachable" in compute.output(), 120, "the publisher's log line")
    finally:
        compute.proc.kill()  # a clean stop waits for the unreachable broker; this test is about the output
        compute.stop()
    output = compute.output()
    assert f"bus rabbit://guest:{MASK}@127.0.0.1:{broker}/" in output  # the start-up line
    assert f"publisher: rabbit://guest:{MASK}@127.0.0.1:{broker}/ is unreachable" in output
    for secret in (BUS_PASSWORD, "ss@", COMPUTE_TOKEN):
        assert secret not in output and secret not in health.text


def test_bus_password_with_a_slash_is_an_error_that_does_not_show_it(tmp_path: Path) -> None:
    for command in (["compute", "serve"], ["model", "serve", "--compute-url", ""], ["tail"]):
        done = _novawatch([*command, "--bus", "rabbit://guest:pa/ss@127.0.0.1:5672/",
                           *(["--data-dir", str(tmp_path)] if "serve" in command else [])], tmp_path)
        assert done.returncode == 2, done.stderr
        assert "percent-encode" in done.stderr and f"rabbit://guest:{MASK}@127.0.0.1:5672/" in done.stderr
        assert "pa/ss" not in done.stderr + done.stdout and "Traceback" not in done.stderr


def test_config_show_keeps_every_host_and_masks_every_secret(tmp_path: Path) -> None:
    env = {"NOVAWATCH_MODEL_COMPUTE_TOKEN": COMPUTE_TOKEN, "NOVAWATCH_MODEL_TOKEN": MODEL_TOKEN,
           "NOVAWATCH_MODEL_COMPUTE_URL": f"http://admin:{COMPUTE_PASSWORD}@compute:8774"}
    url = "rabbit://nova:first-pw@h1:5672,nova:second-pw@h2:5673/vh"
    done = _novawatch(["config", "show", "--set", f"bus.url={url}", "--format", "json"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    tables = json.loads(done.stdout)
    assert tables["bus"]["url"] == f"rabbit://nova:{MASK}@h1:5672,nova:{MASK}@h2:5673/vh"
    assert tables["model"]["compute_url"] == f"http://admin:{MASK}@compute:8774"
    assert tables["model"]["compute_token"] == MASK and tables["model"]["token"] == MASK
    for secret in ("first-pw", "second-pw", COMPUTE_PASSWORD, COMPUTE_TOKEN, MODEL_TOKEN):
        assert secret not in done.stdout
    # A secret of the wrong type is named in the error, its value not shown.
    (tmp_path / "bad.toml").write_text("[model]\ntoken = 987654321\n")
    bad = _novawatch(["config", "show", "--config", str(tmp_path / "bad.toml")], tmp_path)
    assert bad.returncode == 2 and "model.token" in bad.stderr and "987654321" not in bad.stderr
