"""Running an app: uvicorn on a loop of its own thread (the demo, tests, benchmarks) or in the foreground.

Port 0 picks a free port; :attr:`ServerThread.url` says which. :meth:`ServerThread.call` runs a function
on the server's loop, which is how other threads touch state that the app's handlers also touch.
Connections are capped and timed (:mod:`novawatch.api.connections`), and the loop's own error reports
(such as "socket.accept() out of system resource", which asyncio repeats for every pending connection)
are logged at most once per interval each.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType
from typing import Any, NamedTuple, TypeVar

import uvicorn

from novawatch.api.connections import ConnectionGuard, ConnectionLimits, guarded_protocol
from novawatch.config import ServiceConfig
from novawatch.logs import Throttle

T = TypeVar("T")


class ServerError(RuntimeError):
    """The server could not start (port in use, bad address)."""


def _config(app: Any, host: str, port: int, guard: ConnectionGuard) -> uvicorn.Config:
    # Access logs off: a log line per request is noise at the default level; -vv turns logging up elsewhere.
    # log_config=None: uvicorn's records go to the process's handlers (and their secret filter), not its own.
    # ws="none": no endpoint speaks WebSocket, and an upgraded connection would leave the guard's count.
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on",
                          timeout_graceful_shutdown=2, log_config=None, http=guarded_protocol(guard), ws="none",
                          timeout_keep_alive=_keep_alive(guard.limits.idle_timeout))


def _keep_alive(idle_timeout: float) -> int:
    # uvicorn's own timer after a response (whole seconds); the guard's is the precise one. 0: no limit.
    return max(1, math.ceil(idle_timeout)) if idle_timeout > 0 else 365 * 24 * 3600


def limits(service: ServiceConfig) -> ConnectionLimits:
    """The connection limits a service's configuration (``[compute]`` or ``[model]``) asks for."""
    return ConnectionLimits(max_connections=service.max_connections, header_timeout=service.header_timeout,
                            idle_timeout=service.idle_timeout)


def _guard(limits: ConnectionLimits | None, name: str) -> ConnectionGuard:
    try:
        return ConnectionGuard(limits or ConnectionLimits(), name)
    except ValueError as exc:
        raise ServerError(f"{name}: {exc}") from None


class _GuardedServer(uvicorn.Server):
    """A uvicorn server whose loop reports each kind of error at most once per interval."""

    def __init__(self, config: uvicorn.Config, guard: ConnectionGuard) -> None:
        super().__init__(config)
        self.guard = guard

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        throttle = Throttle(self.guard.limits.log_interval)
        loop = asyncio.get_running_loop()

        def report(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            held = throttle.ready(str(context.get("message", "")))
            if held is None:
                return
            if held:
                context = {**context, "message": f"{context.get('message')} ({held} more like this since the "
                           "last report)"}
            loop.default_exception_handler(context)

        loop.set_exception_handler(report)
        await super().serve(sockets)


class _Server(_GuardedServer):
    """A server in a thread: the main thread owns the signals (uvicorn already leaves them alone there)."""


class _ForegroundServer(_GuardedServer):
    """Ctrl-C and SIGTERM stop the server gracefully, and the process then exits normally (status 0).

    ``stopping`` runs (on a thread of its own) as soon as the signal arrives, before the server waits for
    the requests in flight: a compute worker lets its requests that wait for a lock give up there.
    """

    def __init__(self, config: uvicorn.Config, guard: ConnectionGuard,
                 stopping: Callable[[], None] | None = None) -> None:
        super().__init__(config, guard)
        self._stopping = stopping

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the captured signal after shutdown, which turns a clean stop into exit 130/143.
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for open connections
        if not self.should_exit and self._stopping is not None:
            # not here: a signal handler must not take locks the interrupted code may hold
            threading.Thread(target=self._stopping, name="novawatch-stopping", daemon=True).start()
        self.should_exit = True


class Worker(NamedTuple):
    """What a worker of :func:`serve_workers` serves: its app, what runs once it stopped, and what runs as soon
    as it is told to stop (optional)."""

    app: Any
    finish: Callable[[], None]
    stopping: Callable[[], None] | None = None


class ServerThread:
    """An ASGI app served by uvicorn in a daemon thread; ``start()`` returns once it accepts connections."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, name: str = "server",
                 limits: ConnectionLimits | None = None) -> None:
        self.app = app
        self.host = host
        self.name = name
        self.guard = _guard(limits, name)
        self.server = _Server(_config(app, host, port, self.guard), self.guard)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name=f"novawatch-{name}", daemon=True)
        self._error: BaseException | None = None
        self._requested = port
        self._sock: socket.socket | None = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            assert self._sock is not None  # start() binds it before this thread runs
            loop.run_until_complete(self.server.serve(sockets=[self._sock]))
        except BaseException as exc:  # reported by start(); a thread cannot raise to its starter
            self._error = exc
        finally:
            loop.close()
            if self._sock is not None:
                self._sock.close()

    def start(self, timeout: float = 60.0) -> ServerThread:
        """Bind the port (a :class:`ServerError` saying why it cannot be), then serve until :meth:`stop`."""
        self._sock = listening_socket(self.host, self._requested)
        self.thread.start()
        waited = 0.0
        while not self.server.started:
            if not self.thread.is_alive():
                raise ServerError(f"{self.name} did not start on {self.host}: {self._error or 'see the log above'}")
            self.thread.join(0.02)
            waited += 0.02
            if waited > timeout:
                raise ServerError(f"{self.name} did not start within {timeout:.0f}s")
        return self

    @property
    def port(self) -> int:
        for server in self.server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        raise ServerError(f"{self.name} is not listening")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def call(self, fn: Callable[[], T], timeout: float | None = 60.0) -> T:
        """Run ``fn()`` on the server's loop and return its result."""
        async def run() -> T:
            return fn()
        return self.submit(run(), timeout)

    def submit(self, coro: Awaitable[T], timeout: float | None = 60.0) -> T:
        """Run a coroutine on the server's loop and return its result."""
        if self.loop is None:
            raise ServerError(f"{self.name} is not running")
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return future.result(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(app: Any, host: str, port: int, *, name: str = "server",
                  limits: ConnectionLimits | None = None, listening: Callable[[int], None] | None = None) -> None:
    """Serve in the foreground until SIGINT/SIGTERM (uvicorn's own signal handling: a clean shutdown).

    ``listening(port)`` is called once the port is bound, with the port (the one asked for, or the system's
    choice for port 0). A port that cannot be bound is a :class:`ServerError` saying why.
    """
    guard = _guard(limits, name)
    # Bound here rather than by uvicorn, which logs the reason and exits the process when it cannot bind.
    sock = listening_socket(host, port)
    try:
        if listening is not None:
            listening(sock.getsockname()[1])
        server = _ForegroundServer(_config(app, host, port, guard), guard)
        server.run(sockets=[sock])
    finally:
        sock.close()


#: A worker that exits this soon after its start, this many times in a row, stops the whole service
#: (it cannot start: a database that refuses it, a bad configuration) instead of being restarted for ever.
QUICK_EXIT_SECONDS = 5.0
QUICK_EXITS = 3


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket: the foreground server's, or the one forked workers share (the kernel spreads
    connections among them)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it a
    # response written in two parts waits for the client's delayed ACK (40 ms a request).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ServerError(f"could not listen on {host}:{port} ({exc.strerror}); choose another port with "
                          "--port (0: any free one)") from None
    return sock


def _die_with(parent: int) -> None:
    """On Linux, have this (forked) process get SIGTERM when ``parent`` dies: no orphaned worker keeps the
    port from the service's next start."""
    import ctypes
    import os

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)


def serve_workers(factory: Callable[[int], tuple[Any, ...]], host: str, port: int, workers: int, *,
                  name: str = "server", limits: ConnectionLimits | None = None,
                  listening: Callable[[int], None] | None = None) -> None:
    """Serve with ``workers`` forked processes on one port until SIGINT/SIGTERM.

    ``factory(index)`` runs in each worker (after the fork: no connection or thread crosses it) and returns
    a :class:`Worker` (or the tuple (app, finish)); ``finish()`` runs when that worker stopped. A worker that
    dies is replaced; workers that keep dying at start stop the service with :class:`ServerError`. SIGINT or
    SIGTERM stops every worker gracefully. ``listening(port)``: as for :func:`serve_forever`.
    """
    import logging
    import os
    import time

    log = logging.getLogger("novawatch.api.server")
    guard = _guard(limits, name)  # a bad limit is an error before anything is forked
    sock = listening_socket(host, port)
    if listening is not None:
        listening(sock.getsockname()[1])
    children: dict[int, tuple[int, float]] = {}  # pid -> (index, started)
    stopping = False
    quick: dict[int, int] = {}

    parent = os.getpid()

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, signal.SIG_DFL)
                _die_with(parent)
                made = Worker(*factory(index))
                try:
                    server = _ForegroundServer(_config(made.app, host, port, guard), guard, made.stopping)
                    server.run(sockets=[sock])
                finally:
                    made.finish()
            except BaseException:
                log.exception("%s worker %d failed", name, index)
                code = 1
            os._exit(code)
        children[pid] = (index, time.monotonic())

    def stop(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    failed: str | None = None
    try:
        for index in range(workers):
            spawn(index)
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index, started = children.pop(pid, (-1, 0.0))
            if index < 0 or stopping:
                continue
            how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"status {os.WEXITSTATUS(status)}")
            quick[index] = quick.get(index, 0) + 1 if time.monotonic() - started < QUICK_EXIT_SECONDS else 0
            if quick[index] >= QUICK_EXITS:
                failed = (f"{name} worker {index} exited at start {QUICK_EXITS} times in a row (last: {how}); "
                          "see the log above")
                stop(signal.SIGTERM, None)
                continue
            log.warning("%s worker %d (pid %d) exited with %s: starting another", name, index, pid, how,
                        extra={"worker": index, "pid": pid})
            spawn(index)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    if failed is not None:
        raise ServerError(failed)
