"""The deployment of docs/deploy.md: its Compose file, systemd units, configuration and load balancer.

Docker cannot run here, so what can be checked is: the Compose file parses and uses only keys of the
Compose specification with the right shapes, and everything it refers to exists; the systemd units pass
``systemd-analyze verify``; the configuration file and the environment file are valid novawatch
configuration; and every novawatch command line of the units and the Compose file runs, with the same
flags, against a real PostgreSQL and RabbitMQ, and answers health (the load balancer's check).
"""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml
from tests.api.helpers import Service, free_port, wait_for

from novawatch.config import load

DEPLOY = Path(__file__).resolve().parents[1] / "docs" / "deploy"
UNITS = DEPLOY / "systemd"

# --- the Compose file: the keys it may use (a subset of the Compose specification) ----------------------

TOP_KEYS = {"name", "services", "volumes", "networks", "configs", "secrets"}
SERVICE_KEYS = {"image", "build", "command", "entrypoint", "environment", "env_file", "volumes", "ports",
                "depends_on", "healthcheck", "restart", "hostname"}
BUILD_KEYS = {"context", "dockerfile"}
HEALTH_KEYS = {"test", "interval", "timeout", "retries", "start_period"}
RESTART = {"no", "always", "on-failure", "unless-stopped"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
DURATION = re.compile(r"^\d+(ms|s|m|h)$")
PORT = re.compile(r"^\d{1,5}:\d{1,5}$")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def compose_problems(doc: dict[str, Any]) -> list[str]:
    """What in ``doc`` is not a Compose file of the shape this deployment uses; empty when all is well."""
    problems = [f"unknown top-level key {k!r}" for k in doc if k not in TOP_KEYS and not k.startswith("x-")]
    services: dict[str, Any] = doc.get("services") or {}
    volumes = set(doc.get("volumes") or {})
    for name, svc in services.items():
        where = f"services.{name}"
        problems += [f"{where}: unknown key {k!r}" for k in svc if k not in SERVICE_KEYS]
        if "image" not in svc and "build" not in svc:
            problems.append(f"{where}: neither image nor build")
        build = svc.get("build")
        if build is not None:
            problems += [f"{where}.build: unknown key {k!r}" for k in build if k not in BUILD_KEYS]
            context = (DEPLOY / build["context"]).resolve()
            if not (context / build.get("dockerfile", "Dockerfile")).is_file():
                problems.append(f"{where}.build: no Dockerfile at {build.get('dockerfile')} in {context}")
        command = svc.get("command")
        if command is not None and not (isinstance(command, list) and all(isinstance(a, str) for a in command)):
            problems.append(f"{where}.command: not a list of strings")
        for env_file in svc.get("env_file", []):
            if not (DEPLOY / f"{env_file}.example").is_file():
                problems.append(f"{where}.env_file: {env_file} has no {env_file}.example to copy it from")
        if not isinstance(svc.get("environment", {}), dict):
            problems.append(f"{where}.environment: not a mapping")
        for mount in svc.get("volumes", []):
            source, _, rest = str(mount).partition(":")
            if not rest.startswith("/"):
                problems.append(f"{where}.volumes: {mount!r} has no container path")
            if source.startswith("."):
                if not (DEPLOY / source).is_file():
                    problems.append(f"{where}.volumes: {source} does not exist beside compose.yaml")
            elif source not in volumes:
                problems.append(f"{where}.volumes: named volume {source!r} is not declared")
        problems += [f"{where}.ports: {p!r} is not HOST:CONTAINER" for p in svc.get("ports", [])
                     if not PORT.match(str(p))]
        depends = svc.get("depends_on", [])
        for other in depends:
            if other not in services:
                problems.append(f"{where}.depends_on: no service {other!r}")
            if isinstance(depends, dict) and depends[other].get("condition") not in CONDITIONS:
                problems.append(f"{where}.depends_on.{other}: unknown condition")
            if isinstance(depends, dict) and depends[other].get("condition") == "service_healthy" \
                    and other in services and "healthcheck" not in services[other]:
                problems.append(f"{where}.depends_on.{other}: waits for a health that {other} never reports")
        health = svc.get("healthcheck")
        if health is not None:
            problems += [f"{where}.healthcheck: unknown key {k!r}" for k in health if k not in HEALTH_KEYS]
            test = health.get("test")
            if not (isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL")):
                problems.append(f"{where}.healthcheck.test: not [CMD, ...]")
            problems += [f"{where}.healthcheck.{k}: {health[k]!r} is not a duration" for k in
                         ("interval", "timeout", "start_period") if k in health and not DURATION.match(health[k])]
        if svc.get("restart", "no") not in RESTART:
            problems.append(f"{where}.restart: {svc['restart']!r}")
    return problems


def novawatch_commands() -> dict[str, list[str]]:
    """Every novawatch command line of the deployment, by where it is (Compose service or unit), without
    the program name."""
    found: dict[str, list[str]] = {}
    for name, svc in compose()["services"].items():
        command = svc.get("command") or []
        if command[:1] == ["novawatch"]:
            found[f"compose:{name}"] = command[1:]
    for unit in sorted(UNITS.glob("*.service")):
        exec_start = unit_file(unit)["Service"]["ExecStart"]
        argv = shlex.split(exec_start)
        assert argv[0] == "/opt/novawatch/bin/novawatch", (unit.name, argv[0])
        found[f"systemd:{unit.name}"] = argv[1:]
    return found


def unit_file(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


def test_the_compose_file_is_well_formed_and_holds_the_whole_set() -> None:
    doc = compose()
    assert compose_problems(doc) == []
    services = doc["services"]
    assert {"rabbit-1", "rabbit-2", "rabbit-3", "postgres", "compute", "model-a", "model-b", "lb"} <= set(services)
    commands = novawatch_commands()
    assert "--workers" in commands["compose:compute"]
    # the two replicas read through queues of their own (each sees every notification)
    queues = {next(a for a in commands[f"compose:{r}"] if a.startswith("bus.queue=")) for r in ("model-a", "model-b")}
    assert len(queues) == 2
    # the load balancer sends traffic to both replicas, on the port they listen on, and checks their health
    haproxy = (DEPLOY / "haproxy.cfg").read_text()
    for replica in ("model-a", "model-b"):
        port = commands[f"compose:{replica}"][commands[f"compose:{replica}"].index("--port") + 1]
        assert re.search(rf"^\s*server {replica} {replica}:{port} check", haproxy, re.M), replica
    assert "option httpchk GET /v1/health" in haproxy
    assert lb_check().search('{"status":"ok","bootstrapped":true}')
    assert not lb_check().search('{"status":"ok","bootstrapped":false}')


def lb_check() -> re.Pattern[str]:
    """What haproxy.cfg expects in a replica's health before it sends it traffic (its quoting read as
    haproxy reads it: single quotes keep what they hold)."""
    found = re.search(r"^\s*http-check expect string (.+)$", (DEPLOY / "haproxy.cfg").read_text(), re.M)
    assert found is not None
    (expected,) = shlex.split(found.group(1))
    return re.compile(re.escape(expected))


def test_the_compose_check_finds_what_is_wrong() -> None:
    """The check above can fail: a misspelt key, a missing volume, a dependency on nothing."""
    doc = compose()
    doc["services"]["compute"]["restrat"] = "always"
    doc["services"]["model-a"]["depends_on"] = {"computer": {"condition": "service_healthy"}}
    doc["services"]["model-b"]["volumes"] = ["model-c:/var/lib/novawatch"]
    doc["services"]["lb"]["ports"] = ["9322"]
    problems = compose_problems(doc)
    assert len(problems) == 4, problems


def test_the_systemd_units_restart_and_read_secrets_from_the_environment_file(tmp_path: Path) -> None:
    units = sorted(UNITS.glob("*.service"))
    assert {u.name for u in units} == {"novawatch-compute.service", "novawatch-model@.service"}
    for unit in units:
        service = unit_file(unit)["Service"]
        assert service["Restart"] == "on-failure", unit.name
        assert service["EnvironmentFile"] == "/etc/novawatch/novawatch.env", unit.name
        assert "--token" not in service["ExecStart"] and "postgresql://" not in service["ExecStart"]
    verify = shutil.which("systemd-analyze")
    assert verify is not None, "systemd-analyze is needed to check the units (Debian: apt-get install systemd)"
    # verify checks that the program and the environment file exist: point them at this machine's
    novawatch = shutil.which("novawatch", path=str(Path(sys.executable).parent))
    assert novawatch is not None
    env_file = tmp_path / "novawatch.env"
    env_file.write_text((DEPLOY / "novawatch.env.example").read_text())
    copies = []
    for unit in units:
        name = unit.name.replace("@.", "@9322.")  # a template is verified as one of its instances
        text = unit.read_text().replace("/opt/novawatch/bin/novawatch", novawatch) \
            .replace("/etc/novawatch/novawatch.env", str(env_file))
        (tmp_path / name).write_text(text)
        copies.append(str(tmp_path / name))
    result = subprocess.run([verify, "verify", "--man=no", *copies], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_configuration_and_environment_files_are_valid(tmp_path: Path) -> None:
    env = dict(line.split("=", 1) for line in (DEPLOY / "novawatch.env.example").read_text().splitlines()
               if line and not line.startswith("#"))
    ours = {k: v for k, v in env.items() if k.startswith("NOVAWATCH_")}
    config = load(DEPLOY / "novawatch.toml", env=ours)
    assert config.compute.workers == 4
    assert config.compute.database_url.startswith("postgresql://")
    assert config.bus.password and "@" in config.bus.url and ":" not in config.bus.url.split("@")[0][len("rabbit://"):]


# --- every novawatch command line of the deployment, run -------------------------------------------------


def placed(args: list[str], places: dict[str, str]) -> list[str]:
    """``args`` with the values of ``places``' flags swapped for this machine's (the flags stay as they are)."""
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        if arg in places:
            out[i + 1] = places[arg]
    assert [a for a in out if a.startswith("-")] == [a for a in args if a.startswith("-")]
    return out


def test_every_command_line_of_the_deployment_starts_and_answers_health(
        pg_database: str, rabbitmq: Any, tmp_path: Path) -> None:
    commands = novawatch_commands()
    assert set(commands) == {"compose:compute", "compose:model-a", "compose:model-b",
                             "systemd:novawatch-compute.service", "systemd:novawatch-model@.service"}
    # The deployment's configuration file, pointed at this machine's broker and a data directory of the test's.
    text = (DEPLOY / "novawatch.toml").read_text()
    bus = rabbitmq.oslo_url.replace("guest:guest@", "guest@").rstrip("/") + "/?durable=true&queue_type=quorum"
    env = {k: v for k, v in (line.split("=", 1) for line in (DEPLOY / "novawatch.env.example").read_text()
                                 .splitlines() if line and not line.startswith("#")) if k.startswith("NOVAWATCH_")}
    env.update(NOVAWATCH_BUS_PASSWORD="guest", NOVAWATCH_COMPUTE_DATABASE_URL=pg_database, HOME=str(tmp_path))
    started: list[Service] = []

    def run(where: str, compute_url: str = "", ready: re.Pattern[str] | None = None) -> str:
        """Start the command line of ``where`` and wait until it answers health; its URL."""
        config = tmp_path / f"{where.replace(':', '-')}.toml"
        here = re.sub(r'^url = ".*"$', f'url = "{bus}"', text, count=1, flags=re.M)
        here = re.sub(r'^data_dir = ".*"$', f'data_dir = "{tmp_path / "data"}"', here, count=1, flags=re.M)
        here = re.sub(r'^compute_url = ".*"$', f'compute_url = "{compute_url}"', here, count=1, flags=re.M)
        assert here.count(str(tmp_path)) == 1 and bus in here and (not compute_url or compute_url in here)
        config.write_text(here)
        port = free_port()
        args = commands[where]
        places = {"--config": str(config), "--host": "127.0.0.1", "--port": str(port),
                  "--checkpoint": str(tmp_path / f"{where.replace(':', '-')}.checkpoint.json")}
        argv = [a.replace("%i", str(port)) for a in placed(args, places)]
        service = Service(argv, tmp_path / f"{where.replace(':', '-')}.log", env, cwd=tmp_path)
        started.append(service)
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            assert service.alive(), f"{where} exited:\n{service.output()[-3000:]}"
            try:
                answer = httpx.get(url + "/v1/health", timeout=10)
            except httpx.TransportError:
                return False
            return answer.status_code == 200 and (ready is None or ready.search(answer.text) is not None)

        wait_for(healthy, 120, f"{where} to answer health")
        return url

    try:
        compute = run("systemd:novawatch-compute.service")
        body = httpx.get(compute + "/v1/health").json()
        assert body["status"] == "ok" and body["outbox"]["relay"] in ("active", "standby")
        for replica in ("compose:model-a", "compose:model-b", "systemd:novawatch-model@.service"):
            model = run(replica, compute, lb_check())  # until the load balancer would send it traffic
            assert httpx.get(model + "/v1/health").json()["bootstrapped"] is True
        started.pop(0).stop()
        run("compose:compute")  # the Compose file's compute line, on the same database
    finally:
        codes = [(s.log.name, s.stop()) for s in started]
    assert all(code == 0 for _, code in codes), codes
