"""Every command that README.md ("Using it with OpenStack tools") and docs/openstack.md ("Pointing the
`openstack` CLI at novawatch") show, run verbatim against ``novawatch compute serve`` with the real CLI.

Only the port differs from what the documents show: the service gets a free one through
``NOVAWATCH_COMPUTE_PORT`` and the documents' ``clouds.yaml`` is written with it in place of 8774.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]
TIMEOUT = 120.0  # generous: waits are for conditions


def _section(path: Path, heading: str) -> str:
    """From ``heading`` to the next heading (lines in code blocks are not headings)."""
    lines = path.read_text().splitlines(keepends=True)
    start = next(n for n, line in enumerate(lines) if line.startswith(heading))
    fenced = False
    for end in range(start + 1, len(lines)):
        if lines[end].startswith("```"):
            fenced = not fenced
        elif not fenced and lines[end].startswith("#"):
            break
    else:
        end = len(lines)
    return "".join(lines[start:end])


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Session:
    """A shell session as the documents' reader has it: a compute service, a clouds.yaml, the venv on PATH."""

    def __init__(self, tmp: Path, clouds: str) -> None:
        self.port = _free_port()
        self.tmp = tmp
        config = tmp / "clouds.yaml"
        config.write_text(clouds.replace(":8774/", f":{self.port}/"))
        self.env = {**os.environ, "NOVAWATCH_COMPUTE_PORT": str(self.port),
                    "NOVAWATCH_GENERAL_DATA_DIR": str(tmp / "data"), "OS_CLIENT_CONFIG_FILE": str(config),
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                    "PYTHONWARNINGS": "ignore"}
        self.env.pop("OS_CLOUD", None)
        self.server: subprocess.Popen[str] | None = None

    def serve(self, command: str, cwd: Path) -> str:
        """Start the documented ``compute serve`` command (its trailing ``&`` is the session's background)."""
        command = command.removesuffix("&").strip()
        self.server = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=cwd, env=self.env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                pytest.fail(f"{command} exited: {self.server.stdout.read() if self.server.stdout else ''}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/v2.1", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail(f"{command} did not answer within {TIMEOUT} s")
        assert self.server.stdout is not None
        return self.server.stdout.readline()

    def run(self, line: str) -> None:
        """One documented line: ``export NAME=VALUE`` changes the session, anything else must succeed."""
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            self.env[name] = value
            return
        done = subprocess.run(["bash", "-c", line], cwd=self.tmp, env=self.env, capture_output=True, text=True,
                              timeout=TIMEOUT)
        assert done.returncode == 0, f"`{line}` failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait()


@pytest.fixture
def session_factory(tmp_path: Path) -> Iterator[list[Session]]:
    sessions: list[Session] = []
    yield sessions
    for s in sessions:
        s.stop()


def test_the_readmes_openstack_example(session_factory: list[Session], tmp_path: Path) -> None:
    section = _section(REPO / "README.md", "## Using it with OpenStack tools")
    [clouds] = _blocks(section, "yaml")
    [script] = _blocks(section, "sh")
    lines = [line for line in script.splitlines() if line.strip()]
    session = Session(tmp_path, clouds)
    session_factory.append(session)
    assert lines[0].startswith("./run novawatch compute serve")
    first = session.serve(lines[0], REPO)
    assert first.startswith("novawatch compute service on http://127.0.0.1:")
    assert any("server create --flavor m1.small --image cirros vm-1" in line for line in lines)
    for line in lines[1:]:
        session.run(line)


def test_the_cli_session_of_docs_openstack_md(session_factory: list[Session], tmp_path: Path) -> None:
    section = _section(REPO / "docs" / "openstack.md", "## Pointing the `openstack` CLI at novawatch")
    serve_block, session_block = _blocks(section, "console")
    [clouds] = _blocks(section, "yaml")
    session = Session(tmp_path, clouds)
    session_factory.append(session)
    [serve_line, shown] = serve_block.splitlines()
    first = session.serve(serve_line.removeprefix("$ "), tmp_path)
    assert first.startswith(shown.split("(")[0].replace(":8774/", f":{session.port}/"))
    commands = [line.removeprefix("$ ") for line in session_block.splitlines() if line.startswith("$ ")]
    assert len(commands) >= 30
    for command in commands:
        session.run(command)
    assert (tmp_path / "mykey.pem").read_text().startswith("-----BEGIN")
