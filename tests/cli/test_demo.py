"""The README's first command brings up the demo, prints the dashboard URL, serves it, and stops on Ctrl-C."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import httpx
from tests.api.helpers import REPO, Service, wait_for

URL = re.compile(r"dashboard at (http://127\.0\.0\.1:\d+/)")


def first_readme_command() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```(?:sh|bash|console)\n(.*?)```", text, re.S)
    assert block, "README.md has no shell block"
    line = next(line for line in block.group(1).splitlines() if line.strip())
    return shlex.split(line.split("#", 1)[0])


def test_readme_first_command_runs_the_demo(tmp_path: Path) -> None:
    command = first_readme_command()
    assert command[-1] == "demo", f"the README's first command is {command}, not the demo"
    # Run exactly that command from the repository; only the port comes from the environment (the
    # configuration's env layer), so that the test does not collide with anything on 9322.
    log = tmp_path / "demo.log"
    import subprocess

    out = log.open("wb")
    proc = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                            env={**__import__("os").environ, "NOVAWATCH_MODEL_PORT": "0", "HOME": str(tmp_path),
                                 "PYTHONUNBUFFERED": "1"})
    demo = Service.__new__(Service)
    demo.proc, demo.log, demo._out = proc, log, out
    try:
        url = wait_for(lambda: (m := URL.search(demo.output())) and m.group(1), 600,
                       "the demo to print its dashboard URL")
        assert demo.alive()
        page = httpx.get(url, timeout=30)
        assert page.status_code == 200 and "novawatch" in page.text
        health = httpx.get(url + "v1/health", timeout=30).json()
        assert health["bootstrapped"] and health["nodes"] > 0
        # The workload keeps running: the model keeps applying notifications.
        applied = health["applied"]
        wait_for(lambda: httpx.get(url + "v1/health", timeout=30).json()["applied"] > applied, 120,
                 "the workload's notifications to reach the model")
    finally:
        code = demo.stop()
    assert code == 0, demo.output()
    assert "stopping" in demo.output()
