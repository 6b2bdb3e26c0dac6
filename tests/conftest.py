"""Session-wide fixtures that start REAL private servers for the tests.

Nothing here is mocked and nothing is skipped: a missing server binary is a test error
(``./run test`` installs the Debian packages). Each server is started lazily, the first
time a test asks for it, once per session, and torn down at the end of the session:

``rabbitmq``
    A private RabbitMQ node on a free loopback port (``shared/scripts/rabbitmq-ephemeral``),
    as a :class:`RabbitMQBroker`. ``broker.stop_app()`` / ``broker.start_app()`` stop and
    restart the RabbitMQ application inside the same Erlang node: clients are disconnected
    and the port stops answering, then the same node comes back on the same port with its
    data (durable queues and their persistent messages survive). ``with broker.stopped():``
    does both and always restarts. Tests that stop the broker must leave it running.

``postgres``
    A private PostgreSQL cluster (``shared/scripts/postgres-ephemeral``); the fixture is the
    SQLAlchemy URL ``postgresql+psycopg://novawatch@127.0.0.1:PORT/novawatch`` (a superuser
    that owns the database; trust auth). ``postgres_server`` has the details.

``rabbit_cluster`` / ``cluster``
    A private three-node RabbitMQ cluster (``tests/rabbitcluster.py``): one epmd, one cookie, three
    nodes on their own ports; ``cluster.kill(i)`` SIGKILLs a node, ``cluster.revive(i)`` starts it
    again. ``cluster`` is the session's with every node running, and heals it after the test.

``chromium_path`` / ``chromedriver_path``
    ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (Debian's chromium, chromium-driver).

The scripts are found in ``<repo>/../shared/scripts`` (CI clones the repo with shared/ beside
it) or else in ``$NOVAWATCH_SHARED_DIR/scripts``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.rabbitcluster import ClusterError, RabbitCluster, amqp_ready

from novawatch.bus.memory import MemoryBus

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR_ENV = "NOVAWATCH_SHARED_DIR"

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

_START_TIMEOUT = 180.0  # seconds for a server script's `start` (first start on a cold machine)
_CTL_TIMEOUT = 120.0  # seconds for one rabbitmqctl call / one stop


# --- locating and running the shared scripts ---------------------------------------------


def shared_script(name: str) -> Path:
    """Path of ``shared/scripts/NAME``; fails the test (never skips) when it is not found."""
    candidates = [REPO_ROOT.parent / "shared" / "scripts" / name]
    env_dir = os.environ.get(SHARED_DIR_ENV)
    if env_dir:
        candidates.append(Path(env_dir) / "scripts" / name)
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    pytest.fail(
        f"shared script {name!r} not found (looked at: {looked}); clone shared/ beside the repo "
        f"or set {SHARED_DIR_ENV} to the shared/ directory",
        pytrace=False,
    )


def parse_kv(output: str) -> dict[str, str]:
    """Parse shell-evaluable ``KEY=VALUE`` lines (values possibly shell-quoted, as printed
    by ``printf %q``). Lines that are not assignments are ignored."""
    result: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, raw = line.strip().partition("=")
        if not sep or not key.isidentifier():
            continue
        words = shlex.split(raw, posix=True) if raw else []
        result[key] = " ".join(words)
    return result


def _run_script(script: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _start_server(script: Path, required: tuple[str, ...]) -> dict[str, str]:
    try:
        proc = _run_script(script, "start", timeout=_START_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{script.name} start timed out after {exc.timeout:.0f}s", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(
            f"{script.name} start failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}",
            pytrace=False,
        )
    values = parse_kv(proc.stdout)
    missing = [key for key in required if not values.get(key)]
    if missing:
        pytest.fail(
            f"{script.name} start printed no {', '.join(missing)}:\n{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )
    return values


# --- TCP / AMQP probes ---------------------------------------------------------------------


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


# --- RabbitMQ --------------------------------------------------------------------------------


class BrokerError(RuntimeError):
    """A rabbitmq-ephemeral / rabbitmqctl command against the test broker failed."""


@dataclass
class RabbitMQBroker:
    """A private RabbitMQ node started by ``rabbitmq-ephemeral``."""

    amqp_url: str  # amqp://guest:guest@127.0.0.1:PORT//  (vhost "/"; aio-pika, kombu)
    oslo_url: str  # rabbit://guest:guest@127.0.0.1:PORT/  (oslo.messaging transport_url)
    port: int
    dir: Path  # the node's private directory (data, logs, env)
    nodename: str = ""
    pid: int = 0  # the Erlang VM (beam.smp); unchanged by stop_app/start_app
    script: Path = field(default=Path(), repr=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def ctl(self, *args: str, timeout: float = _CTL_TIMEOUT) -> str:
        """Run ``rabbitmqctl ARGS`` against this node; returns its stdout."""
        try:
            proc = _run_script(self.script, "ctl", str(self.dir), *args, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"rabbitmqctl {' '.join(args)} timed out after {timeout:.0f}s") from exc
        if proc.returncode != 0:
            raise BrokerError(
                f"rabbitmqctl {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
            )
        return proc.stdout

    def is_running(self) -> bool:
        """True when the broker accepts AMQP connections."""
        return amqp_ready(self.port)

    def stop_app(self, timeout: float = _CTL_TIMEOUT) -> None:
        """Stop the RabbitMQ application (the Erlang node stays up): every client connection
        is closed and the AMQP port stops accepting; data is kept. Returns once the port is
        closed."""
        self.ctl("stop_app", timeout=timeout)
        _wait_for(lambda: not port_open(self.port), timeout, f"port {self.port} to close")

    def start_app(self, timeout: float = _CTL_TIMEOUT) -> None:
        """Start the RabbitMQ application again: same node, same port, same data (durable
        queues and their persistent messages are back). Returns once AMQP is accepted."""
        self.ctl("start_app", timeout=timeout)
        _wait_for(self.is_running, timeout, f"AMQP on port {self.port}")

    # short names for fault tests
    stop = stop_app
    start = start_app

    def restart(self) -> None:
        self.stop_app()
        self.start_app()

    @contextlib.contextmanager
    def stopped(self) -> Iterator[RabbitMQBroker]:
        """``with broker.stopped(): ...`` -- the broker is down inside the block and is
        started again on the way out, also when the block raises."""
        self.stop_app()
        try:
            yield self
        finally:
            self.start_app()

    def list_queues(self, *columns: str) -> list[list[str]]:
        """``rabbitmqctl list_queues`` as rows (default columns: name, messages)."""
        cols = columns or ("name", "messages")
        out = self.ctl("list_queues", "-q", "--no-table-headers", "-s", *cols)
        return [line.split("\t") for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQBroker]:
    """A private RabbitMQ broker for the whole session (started on first use)."""
    script = shared_script("rabbitmq-ephemeral")
    values = _start_server(script, ("AMQP_URL", "OSLO_TRANSPORT_URL", "RABBITMQ_NODE_PORT", "RABBITMQ_EPHEMERAL_DIR"))
    broker = RabbitMQBroker(
        amqp_url=values["AMQP_URL"],
        oslo_url=values["OSLO_TRANSPORT_URL"],
        port=int(values["RABBITMQ_NODE_PORT"]),
        dir=Path(values["RABBITMQ_EPHEMERAL_DIR"]),
        nodename=values.get("RABBITMQ_NODENAME", ""),
        pid=int(values.get("RABBITMQ_PID") or 0),
        script=script,
    )
    try:
        yield broker
    finally:
        proc = _run_script(script, "stop", str(broker.dir), timeout=_CTL_TIMEOUT)
        if proc.returncode != 0:
            # teardown: report, but do not turn a passing session into an error
            print(f"rabbitmq-ephemeral stop {broker.dir} failed: {proc.stderr}")


# --- PostgreSQL ------------------------------------------------------------------------------


def sqlalchemy_url(url: str) -> str:
    """``postgresql://...`` (or ``postgres://``) -> ``postgresql+psycopg://...``."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return f"postgresql+psycopg://{rest}"


@dataclass(frozen=True)
class PostgresServer:
    """A private PostgreSQL cluster started by ``postgres-ephemeral``."""

    url: str  # postgresql://novawatch@127.0.0.1:PORT/novawatch  (libpq / psycopg)
    sqlalchemy_url: str  # postgresql+psycopg://novawatch@127.0.0.1:PORT/novawatch
    port: int
    dir: Path

    @contextlib.contextmanager
    def database(self, prefix: str) -> Iterator[str]:
        """A new database of its own in this cluster (``postgresql://`` URL), dropped afterwards."""
        import uuid

        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield self.url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with psycopg.connect(self.url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster for the whole session (started on first use)."""
    script = shared_script("postgres-ephemeral")
    values = _start_server(script, ("POSTGRES_URL", "POSTGRES_EPHEMERAL_DIR", "POSTGRES_PORT"))
    server = PostgresServer(
        url=values["POSTGRES_URL"],
        sqlalchemy_url=sqlalchemy_url(values["POSTGRES_URL"]),
        port=int(values["POSTGRES_PORT"]),
        dir=Path(values["POSTGRES_EPHEMERAL_DIR"]),
    )
    try:
        yield server
    finally:
        proc = _run_script(script, "stop", str(server.dir), timeout=_CTL_TIMEOUT)
        if proc.returncode != 0:
            print(f"postgres-ephemeral stop {server.dir} failed: {proc.stderr}")


@pytest.fixture(scope="session")
def postgres(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of the session's private PostgreSQL database."""
    return postgres_server.sqlalchemy_url


@pytest.fixture
def pg_database(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new database of the test's own in the session's PostgreSQL (``postgresql://`` URL)."""
    with postgres_server.database(request.node.module.__name__.rsplit(".", 1)[-1][:20]) as url:
        yield url


# --- Chromium --------------------------------------------------------------------------------


def _require_executable(path: Path, package: str) -> str:
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{path} not found: install the Debian package {package} "
            f"(./run test does: apt-get install -y --no-install-recommends {package})",
            pytrace=False,
        )
    return str(path)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Path of Debian's headless-capable Chromium (/usr/bin/chromium)."""
    return _require_executable(CHROMIUM, "chromium")


@pytest.fixture(scope="session")
def chromedriver_path() -> str:
    """Path of Debian's chromedriver (/usr/bin/chromedriver), for Selenium-style tests."""
    return _require_executable(CHROMEDRIVER, "chromium-driver")


# --- a three-node RabbitMQ cluster -----------------------------------------------------------------


@pytest.fixture(scope="session")
def rabbit_cluster() -> Iterator[RabbitCluster]:
    """A private three-node RabbitMQ cluster for the whole session (started on first use, which takes
    about 20 s; ``tests/rabbitcluster.py``). Use :func:`cluster`, which starts again what a test killed."""
    cluster = RabbitCluster()
    try:
        cluster.start()
    except ClusterError as exc:
        pytest.fail(f"the RabbitMQ cluster did not start: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(rabbit_cluster: RabbitCluster) -> Iterator[RabbitCluster]:
    """The session's RabbitMQ cluster with all three nodes running; nodes the test killed are started again
    after it (they rejoin with their data)."""
    rabbit_cluster.heal()
    yield rabbit_cluster
    rabbit_cluster.heal()


@pytest.fixture
def bus() -> Iterator[tuple[str, Any]]:
    """A private in-memory bus: its URL, and a consumer group on it made before anything is published."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    group = MemoryBus.named(name).group("test")
    yield f"memory://{name}", group
    MemoryBus.reset(name)
