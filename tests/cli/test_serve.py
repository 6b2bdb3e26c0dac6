"""End to end: `compute serve` and `model serve` as two processes on the embedded bus.

Actions go in through the compute service's REST API; the model service's REST API must show them.
Every wait is on a condition, with a generous timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.helpers import Service, free_port, serve_pair, wait_for

DOCS_BUS = Path(__file__).resolve().parents[2] / "docs" / "bus.md"


class Cloud:
    def __init__(self, compute: Service, model: Service, compute_url: str, model_url: str) -> None:
        self.compute_proc = compute
        self.model_proc = model
        self.compute = httpx.Client(base_url=compute_url, timeout=60)
        self.model = httpx.Client(base_url=model_url, timeout=60)

    def model_instance(self, uuid: str) -> dict[str, Any] | None:
        resp = self.model.get(f"/v1/instances/{uuid}")
        return resp.json()["instance"] if resp.status_code == 200 else None

    def action(self, uuid: str, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = self.compute.post(f"/v1/instances/{uuid}/{action}", json=body)
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    pair = serve_pair(tmp_path_factory.mktemp("e2e"))
    c = Cloud(pair.compute, pair.model, pair.compute_url, pair.model_url)
    try:
        wait_for(lambda: c.model.get("/v1/health").json()["bootstrapped"], 120,
                 "the model service to bootstrap from the compute service")
        yield c
    finally:
        codes = pair.stop()
        c.compute.close()
        c.model.close()
        assert codes == (0, 0), f"unclean exits {codes}:\n{pair.compute.output()}\n{pair.model.output()}"


def test_actions_through_compute_api_show_in_model_api(cloud: Cloud) -> None:
    nodes = wait_for(lambda: cloud.model.get("/v1/nodes").json()["total"] == 3 and
                     cloud.model.get("/v1/nodes").json()["nodes"], 60, "3 nodes in the model")
    assert [n["host"] for n in nodes] == ["host-0001", "host-0002", "host-0003"]
    assert "bootstrapped from" in cloud.model_proc.output() and "3 nodes" in cloud.model_proc.output()

    boot = cloud.compute.post("/v1/instances", json={"name": "e2e-1", "flavor": "m1.small", "host": "host-0002",
                                                     "project_id": "p-e2e"})
    assert boot.status_code == 202, boot.text
    uuid = boot.json()["uuid"]
    assert boot.json()["vm_state"] == "active"
    inst = wait_for(lambda: (i := cloud.model_instance(uuid)) and i["state"] == "active" and i, 60,
                    "the booted instance in the model")
    assert inst["host"] == "host-0002" and inst["project_id"] == "p-e2e" and inst["memory_mb"] == 2048
    node = cloud.model.get("/v1/nodes/host-0002").json()
    assert node["node"]["running_vms"] == 1 and [i["uuid"] for i in node["instances"]] == [uuid]
    assert cloud.model.get("/v1/nodes", params={"project": "p-e2e"}).json()["nodes"][0]["host"] == "host-0002"

    cloud.action(uuid, "power_off")
    wait_for(lambda: (i := cloud.model_instance(uuid)) and i["power_state"] == "shutdown" and
             i["state"] == "stopped", 60, "power_off in the model")
    cloud.action(uuid, "power_on")
    wait_for(lambda: (i := cloud.model_instance(uuid)) and i["state"] == "active", 60, "power_on in the model")

    cloud.action(uuid, "live_migrate", {"host": "host-0003"})
    cloud.action(uuid, "live_migration_complete")
    wait_for(lambda: (i := cloud.model_instance(uuid)) and i["host"] == "host-0003", 60, "the migration")
    wait_for(lambda: cloud.model.get("/v1/nodes/host-0002").json()["node"]["running_vms"] == 0, 60,
             "the source node's usage to drop")

    attached = cloud.action(uuid, "attach_volume", {"size": 1})["result"]
    wait_for(lambda: (i := cloud.model_instance(uuid)) and i["volumes"] == [attached], 60, "the attached volume")
    new = cloud.action(uuid, "swap_volume", {"old_volume_id": attached})["result"]
    assert new != attached
    wait_for(lambda: (i := cloud.model_instance(uuid)) and i["volumes"] == [new], 60, "the swapped volume")

    assert cloud.compute.delete(f"/v1/instances/{uuid}").status_code == 202
    wait_for(lambda: cloud.model.get(f"/v1/instances/{uuid}").status_code == 404, 60, "the delete in the model")

    audit = cloud.model.post("/v1/audit")
    assert audit.status_code == 200 and audit.json() == {"drift": 0}
    health = cloud.model.get("/v1/health").json()
    assert health["status"] == "ok" and health["rejected"] == 0 and health["applied"] > 10


def test_compute_api_errors_are_4xx_with_a_message(cloud: Cloud) -> None:
    resp = cloud.compute.post("/v1/instances", json={"name": "x", "flavor": "no-such"})
    assert resp.status_code == 400 and "GET /v1/flavors" in resp.json()["error"]
    resp = cloud.compute.post("/v1/instances/not-a-uuid/power_off")
    assert resp.status_code == 404 and "GET /v1/instances" in resp.json()["error"]
    resp = cloud.compute.post("/v1/instances", content=b"{", headers={"content-type": "application/json"})
    assert resp.status_code == 422 and "error" in resp.json()
    resp = cloud.compute.post("/v1/instances", content=b"x" * (2 * 1024 * 1024))
    assert resp.status_code == 413
    boot = cloud.compute.post("/v1/instances", json={"name": "e2e-2", "flavor": "m1.tiny"}).json()
    resp = cloud.compute.post(f"/v1/instances/{boot['uuid']}/confirm_resize")
    assert resp.status_code == 409 and "resize" in resp.json()["error"]
    resp = cloud.compute.post("/v1/services", json={"host": "host-0001"})
    assert resp.status_code == 409


def test_cli_tables_from_the_running_model(cloud: Cloud, tmp_path: Path) -> None:
    import subprocess
    import sys

    url = str(cloud.model.base_url).rstrip("/")
    run = lambda *a: subprocess.run([sys.executable, "-m", "novawatch.cli", "model", *a, "--url", url],  # noqa: E731
                                    capture_output=True, text=True, timeout=60, env={"HOME": str(tmp_path),
                                                                                    "PATH": "/usr/bin:/bin",
                                                                                    "COLUMNS": "200"})
    out = run("nodes", "--min-free-vcpus", "1", "--sort=-free_ram_mb")
    assert out.returncode == 0, out.stderr
    assert "host-0001" in out.stdout and "of 3 nodes" in out.stdout
    out = run("instances", "--limit", "5")
    assert out.returncode == 0 and "instances" in out.stdout
    out = run("show", "host-0001")
    assert out.returncode == 0 and "node host-0001" in out.stdout
    out = run("show", "nothing-here")
    assert out.returncode == 2 and "novawatch model nodes" in out.stderr
    dead = subprocess.run([sys.executable, "-m", "novawatch.cli", "model", "nodes", "--url", "http://127.0.0.1:9"],
                          capture_output=True, text=True, timeout=60)
    assert dead.returncode == 2 and "is the service running" in dead.stderr


def test_model_status_shows_where_the_model_stands_on_the_embedded_bus(cloud: Cloud, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    url = str(cloud.model.base_url).rstrip("/")

    def status(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "novawatch.cli", "model", "status", "--url", url, *args],
                              capture_output=True, text=True, timeout=60,
                              env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})

    boot = cloud.compute.post("/v1/instances", json={"name": "status-1", "flavor": "m1.tiny"})
    assert boot.status_code == 202, boot.text
    uuid = boot.json()["uuid"]
    wait_for(lambda: (i := cloud.model_instance(uuid)) and i["state"] == "active", 120, "the instance in the model")
    shown = wait_for(lambda: (p := status("--max-behind", "0")).returncode == 0 and p, 120, "nothing behind")
    body = json.loads(status("--json").stdout)
    assert body["kind"] == "embedded" and body["behind"] == 0 and body["position"] == body["last"] > 0, body
    assert f"applied   sequence {body['position']} (" in shown.stdout and "behind    0" in shown.stdout
    assert f"last      sequence {body['last']}" in shown.stdout
    # the commands docs/bus.md shows, verbatim, with the service's port from the environment
    block = DOCS_BUS.read_text().split("### Where a replica stands", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = block.strip().splitlines()
    assert commands and all(c.startswith("novawatch model status") for c in commands), commands
    port = url.rsplit(":", 1)[1]
    env = {"HOME": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "NOVAWATCH_MODEL_PORT": port}
    for command in commands:
        run = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60, env=env)
        assert run.returncode == 0, f"{command}: {run.stdout}{run.stderr}"
        assert "embedded" in run.stdout and "behind" in run.stdout, f"{command}: {run.stdout}"
    # a service that cannot be reached: a clear error, no traceback
    dead = subprocess.run([sys.executable, "-m", "novawatch.cli", "model", "status", "--url", "http://127.0.0.1:9"],
                          capture_output=True, text=True, timeout=60)
    assert dead.returncode == 2 and "is the service running" in dead.stderr and "Traceback" not in dead.stderr
    # the compute service's URL given for the model's: the answer says which service is wanted
    compute_url = str(cloud.compute.base_url).rstrip("/")
    wrong = subprocess.run([sys.executable, "-m", "novawatch.cli", "model", "status", "--url", compute_url],
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and f"is {compute_url} a novawatch model service?" in wrong.stderr, wrong.stderr
    # a negative lag cannot be met: refused, not an exit 1 that reads as "behind"
    negative = status("--max-behind", "-1")
    assert negative.returncode == 2 and "--max-behind -1" in negative.stderr and negative.stdout == ""


def test_serving_off_loopback_needs_a_token(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "novawatch.cli", "model", "serve", "--host", "0.0.0.0", "--port",
                          str(free_port()), "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60,
                         env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert out.returncode == 2 and "NOVAWATCH_MODEL_TOKEN" in out.stderr and "Traceback" not in out.stderr


def test_two_processes_over_rabbitmq(rabbitmq: Any, tmp_path: Path) -> None:
    """The same services over a real RabbitMQ broker; the password comes from the environment only."""
    url = rabbitmq.oslo_url.replace("guest:guest@", "guest@")  # no password in the URL or on the command line
    env = {"HOME": str(tmp_path), "NOVAWATCH_BUS_PASSWORD": "guest"}
    pc, pm = free_port(), free_port()
    compute = Service(["compute", "serve", "--port", str(pc), "--data-dir", str(tmp_path / "c"), "--hosts", "2",
                       "--bus", url], tmp_path / "compute.log", env, cwd=tmp_path)
    model = Service(["model", "serve", "--port", str(pm), "--data-dir", str(tmp_path / "m"), "--bus", url,
                     "--compute-url", f"http://127.0.0.1:{pc}", "--audit-interval", "0", "--set",
                     "bus.queue=novawatch-e2e-rabbit"], tmp_path / "model.log", env, cwd=tmp_path)
    c = Cloud(compute, model, f"http://127.0.0.1:{pc}", f"http://127.0.0.1:{pm}")
    try:
        wait_for(lambda: c.model.get("/v1/health").json()["bootstrapped"], 120, "bootstrap over RabbitMQ")
        boot = c.compute.post("/v1/instances", json={"name": "rabbit-1", "flavor": "m1.tiny", "host": "host-0001"})
        assert boot.status_code == 202, boot.text
        uuid = boot.json()["uuid"]
        wait_for(lambda: (i := c.model_instance(uuid)) and i["state"] == "active", 120, "the instance via RabbitMQ")
        c.action(uuid, "pause")
        wait_for(lambda: (i := c.model_instance(uuid)) and i["state"] == "paused", 120, "pause via RabbitMQ")
        health = c.model.get("/v1/health").json()
        assert "guest:guest" not in (health["bus"] or "") and health["rejected"] == 0
    finally:
        codes = (compute.stop(), model.stop())
        c.compute.close()
        c.model.close()
    assert codes == (0, 0), f"{compute.output()}\n{model.output()}"
    assert ":guest@" not in compute.output() + model.output()


def test_dashboard_reads_from_the_running_model_service(cloud: Cloud, tmp_path: Path) -> None:
    """The series are sampled by the service itself; the history and the CLI's questions come from it."""
    import subprocess
    import sys

    boot = cloud.compute.post("/v1/instances", json={"name": "e2e-dash", "flavor": "m1.small", "host": "host-0003",
                                                     "project_id": "p-dash"})
    assert boot.status_code == 202, boot.text
    uuid = boot.json()["uuid"]
    wait_for(lambda: cloud.model_instance(uuid), 60, "the booted instance in the model")
    cloud.action(uuid, "pause")
    history = wait_for(lambda: (h := cloud.model.get(f"/v1/instances/{uuid}/history").json()["history"])
                       and h[-1]["changes"].get("state") == ["active", "paused"] and h, 60, "the pause in the history")
    assert history[0]["op"] == "add" and history[0]["event_type"] is not None
    summary = cloud.model.get("/v1/summary").json()
    assert summary["hosts"]["total"] == 3 and summary["capacity"]["all"]["ram_mb"]["used"] >= 2048
    series = wait_for(lambda: (s := cloud.model.get("/v1/series", params={"name": "instances"}).json())["t"] and s,
                      60, "a sample taken by the service")
    assert series["series"]["instances"][-1] is not None
    url = str(cloud.model.base_url).rstrip("/")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    fits = subprocess.run([sys.executable, "-m", "novawatch.cli", "model", "hosts", "--fits", "4:8192:40", "--url",
                           url], capture_output=True, text=True, timeout=60, env=env)
    assert fits.returncode == 0, fits.stderr
    assert "hosts up and enabled with 4 vCPU, 8192 MB RAM, 40 GB disk free" in fits.stdout
    shown = subprocess.run([sys.executable, "-m", "novawatch.cli", "model", "instance", "show", uuid, "--history",
                            "--url", url], capture_output=True, text=True, timeout=60, env=env)
    assert shown.returncode == 0 and "state: active -> paused" in shown.stdout


def test_a_taken_port_is_one_clear_line_and_port_0_says_which_port_it_got(tmp_path: Path, pg_database: str) -> None:
    import socket
    import subprocess
    import sys

    workers = ["compute", "serve", "--workers", "2", "--db", pg_database, "--data-dir", "state"]
    with socket.socket() as holder:  # another process's listening socket, as a user meets it
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        for command in (["compute", "serve", "--data-dir", "state"], workers,
                        ["model", "serve", "--compute-url", "", "--data-dir", "state"],
                        ["demo", "--hosts", "1", "--instances", "0"]):
            done = subprocess.run([sys.executable, "-m", "novawatch.cli", *command, "--port", str(taken)],
                                  capture_output=True, text=True, timeout=120, cwd=tmp_path,
                                  env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
            # uvicorn used to bind it: a log line and exit 3 ("model did not start on 127.0.0.1: 3" in the demo);
            # --workers printed its start-up line before finding the port taken
            assert done.returncode == 2 and "Traceback" not in done.stderr, f"{command}: {done.stderr}"
            assert f"could not listen on 127.0.0.1:{taken} (Address already in use)" in done.stderr, done.stderr
            assert "on http://" not in done.stdout and "dashboard at" not in done.stdout, done.stdout
    for command in (["compute", "serve", "--data-dir", "state"], workers):
        _answers_on_the_port_it_printed(Service([*command, "--port", "0"], tmp_path / "compute.log",
                                                {"HOME": str(tmp_path)}, cwd=tmp_path))


def _answers_on_the_port_it_printed(compute: Service) -> None:
    import re

    try:
        line = wait_for(lambda: re.search(r"compute service on (http://127\.0\.0\.1:(\d+))/", compute.output()), 120,
                        "the start-up line")
        assert int(line.group(2)) > 0, line.group(0)  # the port the system chose, not 0
        # printed once the port is bound: a request waits in its backlog until the service answers
        health = httpx.get(f"{line.group(1)}/v1/health", timeout=120)
        assert health.json()["status"] == "ok", health.text
    finally:
        assert compute.stop() == 0
