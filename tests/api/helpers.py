"""Shared helpers of the API tests: notifications from Nova's samples, a small cloud, waiting on conditions."""

from __future__ import annotations

import copy
import json
import time
import uuid as uuidlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from novawatch.snapshot import InstanceRecord, NodeRecord, Snapshot, build

REPO = Path(__file__).resolve().parents[2]
SAMPLES_CANDIDATES = [REPO.parent / "shared" / "reference" / "nova-notification-samples"]


def samples_dir() -> Path:
    for path in SAMPLES_CANDIDATES:
        if path.is_dir():
            return path
    raise FileNotFoundError("nova-notification-samples not found beside the repo (shared/reference)")


def sample(name: str) -> dict[str, Any]:
    return json.loads((samples_dir() / f"{name}.json").read_text())


_counter = [0]


def instance_notification(name: str, *, uuid: str, host: str, display_name: str = "vm",
                          tenant: str = "project-a", memory_mb: int = 512) -> bytes:
    """Nova's sample ``name`` re-targeted at one instance/host, with a fresh message id and a later timestamp."""
    doc = copy.deepcopy(sample(name))
    data = doc["payload"]["nova_object.data"]
    data["uuid"] = uuid
    data["host"] = host
    data["node"] = host
    data["display_name"] = display_name
    data["tenant_id"] = tenant
    data["flavor"]["nova_object.data"]["memory_mb"] = memory_mb
    doc["publisher_id"] = f"nova-compute:{host}"
    doc["message_id"] = str(uuidlib.uuid4())
    _counter[0] += 1
    doc["timestamp"] = f"2030-01-01 00:{_counter[0] // 60 % 60:02d}:{_counter[0] % 60:02d}.{_counter[0]:06d}"
    return json.dumps(doc).encode()


def small_cloud(hosts: int = 3, per_host: int = 2) -> Snapshot:
    nodes = [NodeRecord(uuid=f"00000000-0000-4000-8000-{h:012d}", host=f"host-{h:04d}",
                        hypervisor_hostname=f"host-{h:04d}", vcpus=16, memory_mb=32768, local_gb=500)
             for h in range(hosts)]
    instances = [
        InstanceRecord(uuid=f"11111111-0000-4000-8000-{h * 100 + i:012d}", host=f"host-{h:04d}",
                       node=f"host-{h:04d}", project_id="project-a" if i % 2 == 0 else "project-b",
                       display_name=f"vm-{h}-{i}", state="active", power_state="running",
                       vcpus=2, memory_mb=4096 * (h + 1), disk_gb=20)
        for h in range(hosts) for i in range(per_host)
    ]
    return build(nodes, instances)


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition",
             interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as exc:  # the thing waited for may not answer yet
            last_error = exc
        else:
            if value:
                return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}" +
                         (f" (last error: {last_error!r})" if last_error else ""))


def free_port() -> int:
    """A port that was free a moment ago (the services under test bind it next)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """A ``novawatch`` command running as its own process, its output kept in a file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        import os
        import subprocess
        import sys

        self.log = log
        self._out = log.open("wb")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "novawatch.cli", *args], stdout=self._out,
                                     stderr=subprocess.STDOUT, env=full_env, cwd=cwd)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 60.0) -> int:
        """Ctrl-C (SIGINT), then wait for a clean exit; the exit code."""
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()
        return int(self.proc.returncode)


class ServedPair(NamedTuple):
    """``compute serve`` and ``model serve`` as two processes on one embedded bus, and their URLs."""

    compute: Service
    model: Service
    compute_url: str
    model_url: str

    def stop(self) -> tuple[int, int]:
        """Stop both (Ctrl-C); their exit codes."""
        return self.compute.stop(), self.model.stop()


def serve_pair(data: Path, hosts: int = 3) -> ServedPair:
    """Start the pair under ``data`` on free ports (no user configuration file: HOME is ``data``); the model
    bootstraps from the compute service. Wait for ``/v1/health``'s ``bootstrapped`` before using it."""
    pc, pm = free_port(), free_port()
    env = {"HOME": str(data)}
    compute = Service(["compute", "serve", "--port", str(pc), "--data-dir", str(data / "state"),
                       "--hosts", str(hosts)], data / "compute.log", env, cwd=data)
    model = Service(["model", "serve", "--port", str(pm), "--data-dir", str(data / "state"),
                     "--compute-url", f"http://127.0.0.1:{pc}", "--audit-interval", "0"], data / "model.log", env,
                    cwd=data)
    return ServedPair(compute, model, f"http://127.0.0.1:{pc}", f"http://127.0.0.1:{pm}")
