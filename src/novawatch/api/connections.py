"""How many connections the HTTP servers hold, and for how long: a cap below the descriptor limit, a
header timeout and an idle timeout.

uvicorn closes a keep-alive connection after a response when it stays quiet, but it has no header
timeout (a client that sends its request one byte a second holds a connection for ever), no timeout
for a connection that never sends anything, and no cap on open connections (``limit_concurrency``
answers 503 to requests, but accepts and keeps the connections). At the descriptor limit asyncio's
accept loop then logs "socket.accept() out of system resource" up to ``backlog`` times a second and
nothing is answered. :func:`guarded_protocol` builds uvicorn's h11 protocol with what is missing:

- a connection may stay without a request for ``idle_timeout`` seconds, and once the first byte of a
  request arrived, its headers (and body) must be in within ``header_timeout`` seconds (408, then closed);
- at ``max_connections`` open, a new connection closes the one that has been idle longest (clients
  reopen idle keep-alive connections as a matter of course), or else the oldest server-sent event
  stream (``text/event-stream``: clients reconnect and resume from ``Last-Event-ID``), so health
  checks and real clients get in while idle, slow or watching clients hold the slots; only when every
  connection has an ordinary request in progress is the new one refused, with a fixed 503 written
  without parsing anything;
- both conditions are logged at most once per ``log_interval`` (with counts), never per connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from novawatch.logs import Throttle

log = logging.getLogger("novawatch.api.connections")

#: Descriptors kept for everything but client connections: at least this many, or a quarter of the limit.
RESERVED_DESCRIPTORS = 32
#: The default cap never goes above this (memory, not descriptors, is then what runs out).
MAX_DEFAULT_CONNECTIONS = 16384


def descriptor_limit() -> int | None:
    """This process's soft limit on open descriptors (``ulimit -n``); None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def default_max_connections(limit: int | None = None) -> int:
    """The cap when none is configured: the descriptor limit less a quarter of it (at least 32) for the
    database, the bus and the rest, and at most :data:`MAX_DEFAULT_CONNECTIONS`."""
    limit = descriptor_limit() if limit is None else limit
    if limit is None:
        return MAX_DEFAULT_CONNECTIONS
    return max(1, min(MAX_DEFAULT_CONNECTIONS, limit - max(RESERVED_DESCRIPTORS, limit // 4)))


@dataclass(frozen=True)
class ConnectionLimits:
    """A server's limits (``[compute]``/``[model]`` ``max_connections``, ``header_timeout``, ``idle_timeout``)."""

    max_connections: int = 0  # 0: derived from the descriptor limit (default_max_connections)
    header_timeout: float = 10.0  # seconds from a request's first byte until its headers and body are in; 0: none
    idle_timeout: float = 15.0  # seconds a connection may wait without a request; 0: none
    log_interval: float = 60.0  # seconds between two log lines about the same condition

    def resolved(self) -> int:
        """The cap in force; raises ValueError when a configured one is not below the descriptor limit."""
        limit = descriptor_limit()
        if self.max_connections <= 0:
            return default_max_connections(limit)
        if limit is not None and self.max_connections >= limit:
            raise ValueError(
                f"max_connections = {self.max_connections} is not below this process's descriptor limit "
                f"({limit}, `ulimit -n`): lower it, raise the limit, or set 0 for the default "
                f"({default_max_connections(limit)} here)")
        return self.max_connections


def _response(status: str, message: str, extra_headers: str = "") -> bytes:
    body = json.dumps({"error": message}).encode()
    head = (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"{extra_headers}connection: close\r\n\r\n")
    return head.encode() + body


class ConnectionGuard:
    """The open connections of one server: admits, evicts the longest idle at the cap, or refuses."""

    def __init__(self, limits: ConnectionLimits, name: str = "server") -> None:
        self.limits = limits
        self.name = name
        self.max_connections = limits.resolved()
        self.open = 0
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0
        self.streams_closed = 0
        #: Connections without a request in progress, the longest idle first.
        self._idle: OrderedDict[GuardedH11Protocol, None] = OrderedDict()
        #: Connections answering with an event stream, the oldest first.
        self._streams: OrderedDict[GuardedH11Protocol, None] = OrderedDict()
        self._throttle = Throttle(limits.log_interval)
        self.refusal = _response(
            "503 Service Unavailable",
            f"the {name} has {self.max_connections} connections open, each with a request in progress "
            "(max_connections); retry in a moment", "retry-after: 1\r\n")
        self.header_timeout_response = _response(
            "408 Request Timeout",
            f"the request (headers and body) did not arrive within {limits.header_timeout:g}s of its first "
            "byte (header_timeout); send a request at once")

    def admit(self, conn: GuardedH11Protocol) -> bool:
        """Count a new connection in, at the cap closing the longest idle one (or else the oldest event
        stream) to make room; False: refuse it, every connection has a request in progress."""
        if self.open >= self.max_connections:
            if self._idle:
                victim, _ = self._idle.popitem(last=False)
                self.evicted += 1
            elif self._streams:
                victim, _ = self._streams.popitem(last=False)
                self.streams_closed += 1
            else:
                self.refused += 1
                self._report()
                return False
            victim.close_now()
            self._report()
        self.open += 1
        return True

    def idle(self, conn: GuardedH11Protocol) -> None:
        self._streams.pop(conn, None)  # a stream that ended, its connection kept alive
        self._idle[conn] = None

    def busy(self, conn: GuardedH11Protocol) -> None:
        self._idle.pop(conn, None)

    def streaming(self, conn: GuardedH11Protocol) -> None:
        self._streams[conn] = None

    def release(self, conn: GuardedH11Protocol) -> None:
        self._idle.pop(conn, None)
        self._streams.pop(conn, None)
        self.open -= 1

    def header_timeout(self) -> None:
        self.timed_out += 1
        self._throttle.log(log, logging.WARNING, "header",
                           "%s: closed a connection whose request took longer than %gs to arrive (%d so far): "
                           "a slow or stalled client", self.name, self.limits.header_timeout, self.timed_out,
                           extra={"server": self.name, "timed_out": self.timed_out})

    def _report(self) -> None:
        self._throttle.log(log, logging.WARNING, "limit",
                           "%s: at its limit of %d open connections (max_connections): %d idle ones and %d event "
                           "streams closed, %d new ones refused with 503 so far; if this is real load, raise "
                           "max_connections (and `ulimit -n`)", self.name, self.max_connections, self.evicted,
                           self.streams_closed, self.refused,
                           extra={"server": self.name, "max_connections": self.max_connections,
                                  "evicted": self.evicted, "streams_closed": self.streams_closed,
                                  "refused": self.refused})


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol under a :class:`ConnectionGuard` (set on the subclass by :func:`guarded_protocol`).

    Each connection is in one phase: ``idle`` (no request; closed after ``idle_timeout``), ``reading`` (a
    request's first byte came; its headers and body must be in within ``header_timeout``) or ``busy``
    (the app has the whole request). Idle connections, and reading ones the app has not seen, may be
    closed to make room.
    """

    guard: ConnectionGuard

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._admitted = False
        self._counted = False
        self._timer: asyncio.TimerHandle | None = None
        self._phase = "busy"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.guard.admit(self):
            transport.write(self.guard.refusal)  # type: ignore[attr-defined]
            transport.close()
            return
        self._admitted = self._counted = True
        super().connection_made(transport)  # type: ignore[arg-type]
        self._sync()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._cancel_timer()
        self._release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        if self._phase == "idle":
            self._enter("reading", self.guard.limits.header_timeout, self._on_read_timeout)
        super().data_received(data)
        self._sync()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._sync()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not None and self.cycle is not cycle:
            self._follow_response(self.cycle)

    def _follow_response(self, cycle: Any) -> None:
        # The new request's task has not started yet: it will call this send, which notes an event stream.
        send = cycle.send

        async def noting_send(message: Any) -> None:
            if message["type"] == "http.response.start" and any(
                    name.lower() == b"content-type" and value.startswith(b"text/event-stream")
                    for name, value in message.get("headers", ())):
                self.guard.streaming(self)
            await send(message)

        cycle.send = noting_send

    def _sync(self) -> None:
        """Follow h11's view of the client and the app's of the request into the phase (and timer)."""
        state = self.conn.their_state
        app_done = self.cycle is None or self.cycle.response_complete
        if self.transport.is_closing():
            self._enter("busy")
        elif state is h11.IDLE and app_done:
            if self._phase == "busy":
                self._enter("idle", self.guard.limits.idle_timeout, self.close_now)
        elif state is h11.SEND_BODY:
            if self._phase != "reading":
                self._enter("reading", self.guard.limits.header_timeout, self._on_read_timeout)
        else:
            self._enter("busy")
        if self._phase != "busy" and app_done:
            self.guard.idle(self)
        else:
            self.guard.busy(self)

    def _enter(self, phase: str, seconds: float = 0.0, callback: Any = None) -> None:
        self._phase = phase
        self._cancel_timer()
        if callback is not None and seconds > 0:
            self._timer = self.loop.call_later(seconds, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _release(self) -> None:
        if self._counted:
            self._counted = False
            self.guard.release(self)

    def close_now(self) -> None:
        """Close the connection (idle timeout, or at the cap to make room), counting it out at once."""
        self._enter("busy")
        self._release()  # its slot is free now, not when the loop gets round to connection_lost
        self.transport.close()

    def _on_read_timeout(self) -> None:
        self._timer = None
        if self._phase != "reading" or self.transport.is_closing():
            return
        self.guard.header_timeout()
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(self.guard.header_timeout_response)
        self.transport.close()


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedH11Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` whose connections ``guard`` keeps."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"guard": guard})
