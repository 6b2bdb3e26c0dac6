"""A private three-node RabbitMQ cluster on loopback, for the tests and the cluster benchmark.

The idea of ``shared/scripts/rabbitmq-ephemeral``, for several nodes: Debian's ``rabbitmq-server`` run
without the system service, ``/var/lib/rabbitmq`` or the shared epmd. The nodes share one private epmd
(which is how Erlang nodes find each other), one Erlang cookie and one temporary directory; each has its
own node name, AMQP port, distribution port and data. Node 0 starts first; the others find it through
``classic_config`` peer discovery and join it. Every node is in a process group of its own, so that
:meth:`RabbitCluster.kill` can SIGKILL a whole node (the VM and its helpers) as a crash would, and
:meth:`RabbitCluster.revive` starts it again on the same ports with its data: it rejoins the cluster.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

RABBIT_BIN = Path(os.environ.get("RABBITMQ_EPHEMERAL_BIN", "/usr/lib/rabbitmq/bin"))
START_TIMEOUT = 180.0  # seconds for a node to accept AMQP (a cold 2-core machine shared with others)
CTL_TIMEOUT = 120.0
NAMES = ("a", "b", "c")


class ClusterError(RuntimeError):
    """The cluster could not be started, or a node did not do what was asked; the message says where to look."""


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int, taken: set[int]) -> list[int]:
    """``count`` free loopback ports below the kernel's ephemeral range (where clients' ports come from)."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 32000)
        if port not in taken and port not in ports and _port_free(port):
            ports.append(port)
    taken.update(ports)
    return ports


def amqp_ready(port: int, host: str = "127.0.0.1", timeout: float = 3.0) -> bool:
    """True when host:port answers the AMQP 0-9-1 protocol header with a method frame (Connection.Start): the
    broker accepts AMQP clients."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            head = sock.recv(7)
    except OSError:
        return False
    return len(head) >= 1 and head[0] == 1


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def _hermetic_environ() -> dict[str, str]:
    """The caller's environment without RABBITMQ_* and ERL_* (a stray RABBITMQ_NODENAME would leak in)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}


@dataclass
class RabbitNode:
    """One node of the cluster."""

    index: int
    name: str  # Erlang node name, e.g. nw_a_1a2b3c4d@localhost
    port: int  # AMQP
    dist_port: int
    ctl_port: int  # rabbitmqctl's own distribution ports start here (ten of them)
    dir: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        return self.running() and amqp_ready(self.port)


class RabbitCluster:
    """Three RabbitMQ nodes clustered on loopback; use :meth:`start` and :meth:`stop` (or ``with``)."""

    def __init__(self, root: Path | None = None, size: int = 3) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rabbitcluster.", dir=root))
        self.home = self.root / "home"  # one HOME, one cookie, for the nodes and for rabbitmqctl
        suffix = uuid.uuid4().hex[:8]
        taken: set[int] = set()
        (self.epmd_port,) = free_ports(1, taken)
        # osiris (stream replication) listens on a port of this range on each node
        start = free_ports(1, taken)[0] // 100 * 100
        self.stream_ports = (start, start + 99)
        self.nodes: list[RabbitNode] = []
        for i in range(size):
            port, dist, ctl = free_ports(3, taken)
            taken.update(range(ctl, ctl + 11))
            name = f"nw_{NAMES[i] if i < len(NAMES) else i}_{suffix}@localhost"
            self.nodes.append(RabbitNode(i, name, port, dist, ctl, self.root / f"node-{i}"))
        self._epmd: subprocess.Popen[bytes] | None = None

    # --- addresses --------------------------------------------------------------------------------

    def url(self, *, order: list[int] | None = None, query: str = "") -> str:
        """A multi-host AMQP URL (novawatch's bus URL) over the nodes, in ``order`` (default 0, 1, 2)."""
        hosts = ",".join(self.nodes[i].address for i in (order or range(len(self.nodes))))
        return f"amqp://guest:guest@{hosts}//" + (f"?{query}" if query else "")

    def oslo_url(self) -> str:
        """The same as oslo.messaging's ``transport_url`` (credentials with every host, as oslo writes it)."""
        hosts = ",".join(f"guest:guest@{n.address}" for n in self.nodes)
        return f"rabbit://{hosts}/"

    def node_at(self, address: str | None) -> RabbitNode:
        """The node listening at ``host:port``."""
        for node in self.nodes:
            if node.address == address:
                return node
        raise ClusterError(f"no node of the cluster listens at {address!r}")

    # --- life cycle -------------------------------------------------------------------------------

    def start(self) -> RabbitCluster:
        """Start epmd, node 0, then the others (which join node 0); returns once all three are clustered."""
        if not (RABBIT_BIN / "rabbitmq-server").is_file():
            raise ClusterError(f"rabbitmq-server not found in {RABBIT_BIN}: apt-get install -y rabbitmq-server")
        epmd = shutil.which("epmd")
        if epmd is None:
            raise ClusterError("epmd not found (Debian package erlang-base)")
        self.home.mkdir(parents=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex)
        cookie.chmod(0o400)
        log = (self.root / "epmd.log").open("wb")
        self._epmd = subprocess.Popen([epmd, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                      env=_hermetic_environ())
        wait_until(lambda: port_open(self.epmd_port), 30, f"epmd on port {self.epmd_port}")
        try:
            for node in self.nodes:
                self._configure(node)
            self._launch(self.nodes[0])
            self._await(self.nodes[0])
            for node in self.nodes[1:]:
                self._launch(node)
            for node in self.nodes[1:]:
                self._await(node)
            self.await_clustered()
        except BaseException:
            self.stop()
            raise
        return self

    def _configure(self, node: RabbitNode) -> None:
        for sub in ("mnesia", "log"):
            (node.dir / sub).mkdir(parents=True, exist_ok=True)
        peers = "\n".join(f"cluster_formation.classic_config.nodes.{i + 1} = {n.name}"
                          for i, n in enumerate(self.nodes))
        (node.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{node.port}\n"
            "loopback_users.guest = true\n"
            "log.console = false\n"
            "log.file.level = info\n"
            "disk_free_limit.absolute = 50MB\n"
            "cluster_formation.peer_discovery_backend = classic_config\n"
            f"{peers}\n"
        )
        low, high = self.stream_ports
        (node.dir / "advanced.config").write_text(
            f"[{{osiris, [{{port_range, {{{low}, {high}}}}}]}}].\n")
        (node.dir / "enabled_plugins").write_text("[].\n")
        (node.dir / "rabbitmq-env.conf").write_text("")

    def env(self, node: RabbitNode) -> dict[str, str]:
        """The environment of ``node`` (and of rabbitmqctl talking to it)."""
        return {
            **_hermetic_environ(),
            "HOME": str(self.home),
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_USE_LONGNAME": "false",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(node.port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_CTL_DIST_PORT_MIN": str(node.ctl_port),
            "RABBITMQ_CTL_DIST_PORT_MAX": str(node.ctl_port + 10),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": str(node.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.dir / "log"),
            "RABBITMQ_CONFIG_FILE": str(node.dir / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(node.dir / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(node.dir / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.dir / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(node.dir / "plugins-expand"),
            "RABBITMQ_PID_FILE": str(node.dir / "rabbitmq.pid"),
            "ERL_CRASH_DUMP": str(node.dir / "log" / "erl_crash.dump"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _launch(self, node: RabbitNode) -> None:
        out = (node.dir / "log" / "startup_stdout.log").open("ab")
        err = (node.dir / "log" / "startup_stderr.log").open("ab")
        node.proc = subprocess.Popen([str(RABBIT_BIN / "rabbitmq-server")], cwd=node.dir, env=self.env(node),
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        out.close()
        err.close()

    def _await(self, node: RabbitNode) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not amqp_ready(node.port):
            if node.proc is None or node.proc.poll() is not None:
                raise ClusterError(f"node {node.name} exited while starting; see {node.dir / 'log'}")
            if time.monotonic() > deadline:
                raise ClusterError(f"node {node.name} did not accept AMQP on {node.port} within {START_TIMEOUT:.0f}s; "
                                   f"see {node.dir / 'log'}")
            time.sleep(0.1)

    def await_clustered(self) -> None:
        """Wait until every node is running and in the cluster."""
        for node in self.nodes:
            self.ctl(node.index, "await_startup", "--timeout", str(int(START_TIMEOUT)))
        self.ctl(0, "await_online_nodes", str(len(self.nodes)), "--timeout", str(int(START_TIMEOUT)))

    def kill(self, index: int) -> RabbitNode:
        """SIGKILL node ``index`` (its VM and helpers) as a crash would; returns once it is gone."""
        node = self.nodes[index]
        proc = node.proc
        if proc is None or proc.poll() is not None:
            raise ClusterError(f"node {node.name} is not running")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(CTL_TIMEOUT)
        wait_until(lambda: not port_open(node.port), CTL_TIMEOUT, f"port {node.port} to close")
        return node

    def revive(self, index: int) -> RabbitNode:
        """Start node ``index`` again (same name, ports and data): it rejoins; returns once all are clustered."""
        node = self.nodes[index]
        if node.running():
            raise ClusterError(f"node {node.name} is running")
        self._launch(node)
        self._await(node)
        self.await_clustered()
        return node

    def heal(self) -> None:
        """Start every node that is not running (what a test that killed nodes leaves behind)."""
        down = [n.index for n in self.nodes if not n.running()]
        for index in down:
            self._launch(self.nodes[index])
        for index in down:
            self._await(self.nodes[index])
        if down:
            self.await_clustered()

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL if one will not go), epmd, and delete the directory."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.proc.pid, signal.SIGTERM)
        for node in self.nodes:
            if node.proc is None:
                continue
            try:
                node.proc.wait(60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.proc.pid, signal.SIGKILL)
                node.proc.wait(30)
            with contextlib.suppress(ProcessLookupError):  # helpers left in the node's group
                os.killpg(node.proc.pid, signal.SIGKILL)
        if self._epmd is not None and self._epmd.poll() is None:
            self._epmd.terminate()
            try:
                self._epmd.wait(10)
            except subprocess.TimeoutExpired:
                self._epmd.kill()
                self._epmd.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> RabbitCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- rabbitmqctl ------------------------------------------------------------------------------

    def ctl(self, index: int, *args: str, timeout: float = CTL_TIMEOUT, tool: str = "rabbitmqctl") -> str:
        """Run ``rabbitmqctl -n NODE ARGS`` (or another CLI ``tool``) against node ``index``; its stdout."""
        node = self.nodes[index]
        try:
            proc = subprocess.run([str(RABBIT_BIN / tool), "-n", node.name, *args], cwd=node.dir,
                                  env=self.env(node), capture_output=True, text=True, timeout=timeout,
                                  check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"{tool} {' '.join(args)} on {node.name} timed out") from exc
        if proc.returncode != 0:
            raise ClusterError(f"{tool} {' '.join(args)} on {node.name} failed (exit {proc.returncode}):\n"
                               f"{proc.stdout}{proc.stderr}")
        return proc.stdout

    def any_running(self) -> int:
        """The index of a running node (to run rabbitmqctl against)."""
        for node in self.nodes:
            if node.ready():
                return node.index
        raise ClusterError("no node of the cluster is running")

    def list_queues(self, *columns: str) -> list[list[str]]:
        """``rabbitmqctl list_queues`` (default columns: name, type, messages) as rows."""
        cols = columns or ("name", "type", "messages")
        out = self.ctl(self.any_running(), "list_queues", "-q", "--no-table-headers", "-s", *cols)
        return [line.split("\t") for line in out.splitlines() if line.strip()]

    def delete_queues(self, *names: str) -> None:
        for name in names:
            with contextlib.suppress(ClusterError):
                self.ctl(self.any_running(), "delete_queue", name)


@contextlib.contextmanager
def running_cluster(root: Path | None = None) -> Iterator[RabbitCluster]:
    """A started cluster, stopped (and its directory deleted) on the way out."""
    cluster = RabbitCluster(root)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
