"""RabbitMQ, the way oslo.messaging uses it, so that a real OpenStack cloud's notifications flow both ways.

Wire conventions (oslo_messaging/_drivers/impl_rabbit.py, notify/messaging.py): a ``topic`` exchange named
after the control exchange (``nova``), routing key ``<topic>.<priority lowercase>``, the body
``{"oslo.version": "2.0", "oslo.message": "<the notification dict as JSON, plus _unique_id>"}``,
``application/json`` in ``utf-8``, persistent.

On a broker shared with Nova nothing is ever declared differently from what oslo.messaging declares
(:mod:`novawatch.bus.topology`): what exists is used as it is, and Nova's exchange, when missing, is
created with oslo's settings (``durable`` as ``amqp_durable_queues``, default false; ``auto_delete`` as
``amqp_auto_delete``, default false; no arguments) or, when the user may not, waited for.

Publisher: publisher confirms with a window of unconfirmed messages; a message leaves the outbox only when
the broker confirmed it, and is sent again after a reconnection otherwise (at-least-once); a nacked one is
sent again on a new connection after a hold (see :class:`Nacked`).

Subscriber: a queue of its own per consumer group (``novawatch-model`` for the model service), bound to
``<topic>.<priority>`` for every priority (an oslo listener pool of the same name shares it); manual
acknowledgement after the consumer applied the message, a prefetch window, and dead letters (messages
that cannot be decoded, the reason in the ``x-novawatch-reason`` header) in ``<group>.dead-letter``. When
a reconnection finds that the queue may have missed notifications (it had to be created again), the
subscriber reports a gap (``on_gap``) so that the model re-lists its source.

The AMQP 0-9-1 client underneath is :mod:`novawatch.bus.amqp` (pamqp for the frames, the per-message ones
packed by hand). Both reconnect forever with exponential backoff (``retry_interval`` doubling up to
``retry_max``), trying the URL's hosts in turn, and log a condition that persists once, not per attempt.

Queue types (:mod:`novawatch.bus.queues`): the subscriber's queue is a classic one by default (as an oslo
listener pool's), a quorum queue with ``queue_type=quorum``, or a stream with ``queue_type=stream``, which
each subscriber reads from an ``offset`` of its own (:mod:`novawatch.bus.streams`); every delivery from a
stream carries its offset (``Delivery.position``), and after a reconnection the subscriber resumes just
after the last offset it acknowledged.

Query options: ``exchange`` (nova), ``durable`` (false: Nova's ``amqp_durable_queues``), ``auto_delete``
(false: Nova's ``amqp_auto_delete``), ``queue_auto_delete`` (false: the subscriber's queue goes with its
last consumer), ``queue_type`` (classic|quorum|stream), ``offset`` (next; streams: first, last, next, an
offset or an ISO 8601 time), ``max_age``, ``max_length_bytes`` and ``segment_bytes`` (a stream's
retention, when the subscriber creates it), ``prefetch`` (512), ``window`` (1024), ``max_outbox`` (100000),
``default_queue`` (false: declare oslo's ``<topic>.<priority>`` queue on publish, as oslo does, for
listeners that start late), ``mandatory`` (false: a notification no queue takes is held and sent again
instead of dropped), ``heartbeat`` (60), ``connect_timeout`` (10), ``retry_interval`` (0.2),
``retry_max`` (5), ``ssl`` and ``ssl_ca_file``, ``ssl_cert_file``, ``ssl_key_file``, ``ssl_verify`` (true),
``password_file`` (read the password from a file instead of the URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import ssl
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from pamqp import commands as spec

from novawatch.bus import amqp
from novawatch.bus.base import Backlog, BusError, Decoder, Delivery, Publisher, Subscriber
from novawatch.bus.queues import (
    Offset,
    QueueType,
    age,
    consume_arguments,
    describe,
    queue_arguments,
    queue_type,
    stream_offset,
)
from novawatch.bus.streams import StreamCursor, first_offset
from novawatch.bus.topology import Declarer, Exchange, ExchangeMissing, explain
from novawatch.bus.url import BusURL, mask_url, truthy
from novawatch.logs import QuietLog

log = logging.getLogger("novawatch.bus.rabbit")

#: oslo.messaging's priorities, lower case as in routing keys.
PRIORITIES = ("audit", "debug", "info", "warn", "error", "critical", "sample")
REASON_HEADER = "x-novawatch-reason"
_PERSISTENT = 2

_CONNECTION_ERRORS = (amqp.AMQPError, ConnectionError, OSError, TimeoutError)


@dataclass(frozen=True)
class RabbitConfig:
    """Everything needed to reach the broker; ``repr`` shows no password."""

    hosts: tuple[tuple[str, int], ...]
    user: str
    password: str = field(repr=False)
    vhost: str
    tls: bool
    exchange: str = "nova"
    durable: bool = False
    auto_delete: bool = False
    queue_auto_delete: bool = False
    queue_type: QueueType = "classic"
    offset: Offset = "next"
    max_age: str | None = None
    max_length_bytes: int | None = None
    segment_bytes: int | None = None
    prefetch: int = 512
    window: int = 1024
    max_outbox: int = 100_000
    default_queue: bool = False
    mandatory: bool = False
    heartbeat: int = 60
    connect_timeout: float = 10.0
    retry_interval: float = 0.2
    retry_max: float = 5.0
    ssl_ca_file: str | None = None
    ssl_cert_file: str | None = None
    ssl_key_file: str | None = None
    ssl_verify: bool = True
    url: str = ""

    @classmethod
    def from_url(cls, url: BusURL, options: Mapping[str, Any]) -> RabbitConfig:
        opts: dict[str, Any] = {**url.options, **options}

        def flag(name: str, default: bool) -> bool:
            value = opts.get(name, default)
            return value if isinstance(value, bool) else truthy(str(value))

        tls = flag("ssl", url.tls) or url.tls
        kind = queue_type(opts.get("queue_type", "classic"))
        if kind != "classic" and flag("queue_auto_delete", False):
            raise BusError(f"queue_type={kind} cannot be combined with queue_auto_delete: quorum queues and streams "
                           "are durable; drop queue_auto_delete, or use queue_type=classic for a passing consumer")
        if "offset" in opts and kind != "stream":
            raise BusError(f"offset= in the bus URL is for queue_type=stream (this queue is {kind}): only a stream "
                           "can be read from an offset")
        if int(opts.get("prefetch", 512)) < 1 and kind == "stream":
            raise BusError("a stream needs prefetch >= 1 in the bus URL (RabbitMQ refuses an unlimited stream "
                           "consumer)")

        def number(name: str) -> int | None:
            value = opts.get(name)
            return None if value is None or value == "" else int(value)

        first = url.hosts[0]
        password = opts.get("password", first.password)
        if opts.get("password_file"):
            password = Path(str(opts["password_file"])).read_text().strip()
        return cls(
            hosts=tuple((h.host, h.port or (5671 if tls else 5672)) for h in url.hosts),
            user=str(opts.get("user", first.user or "guest")),
            password=str(password if password is not None else "guest"),
            vhost=url.path,
            tls=tls,
            exchange=str(opts.get("exchange", opts.get("control_exchange", "nova"))),
            durable=flag("durable", False),
            auto_delete=flag("auto_delete", False),
            queue_auto_delete=flag("queue_auto_delete", False),
            queue_type=kind,
            offset=stream_offset(opts.get("offset", "next")),
            max_age=age(opts["max_age"]) if opts.get("max_age") else None,
            max_length_bytes=number("max_length_bytes"),
            segment_bytes=number("segment_bytes"),
            prefetch=int(opts.get("prefetch", 512)),
            window=int(opts.get("window", 1024)),
            max_outbox=int(opts.get("max_outbox", 100_000)),
            default_queue=flag("default_queue", False),
            mandatory=flag("mandatory", False),
            heartbeat=int(opts.get("heartbeat", 60)),
            connect_timeout=float(opts.get("connect_timeout", 10.0)),
            retry_interval=float(opts.get("retry_interval", 0.2)),
            retry_max=float(opts.get("retry_max", 5.0)),
            ssl_ca_file=opts.get("ssl_ca_file"),
            ssl_cert_file=opts.get("ssl_cert_file"),
            ssl_key_file=opts.get("ssl_key_file"),
            ssl_verify=flag("ssl_verify", True),
            url=mask_url(url.raw),
        )

    @property
    def queue_durable(self) -> bool:
        """Whether the subscriber's queue survives a broker restart: quorum queues and streams always do."""
        return self.durable or self.queue_type != "classic"

    def address(self, attempt: int) -> str:
        """``host:port`` of the host the ``attempt``-th connection goes to."""
        host, port = self.hosts[attempt % len(self.hosts)]
        return f"{host}:{port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ssl_ca_file)
        if self.ssl_cert_file:
            context.load_cert_chain(self.ssl_cert_file, self.ssl_key_file)
        if not self.ssl_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


class Attempts:
    """Connection failures since the last success, host by host: with several hosts in the URL, one host
    down is no problem while another answers, so a condition is reported once every host has failed.

    ``failed`` returns (key, message) to report, or None while some host has not been tried since the
    last success; the key stays the same while the same hosts fail in the same ways, so that a retry loop
    logs a lasting condition once (:class:`~novawatch.logs.QuietLog`), not once per host.
    """

    def __init__(self, config: RabbitConfig) -> None:
        self.config = config
        self.failures: dict[str, tuple[str, str]] = {}

    def where(self, attempt: int) -> str:
        """Where the ``attempt``-th connection goes, as error messages name it."""
        config = self.config
        return config.url if len(config.hosts) == 1 else f"RabbitMQ at {config.address(attempt)}"

    def failed(self, attempt: int, exc: BaseException) -> tuple[str, str] | None:
        config = self.config
        key, why = explain(exc, user=config.user, vhost=config.vhost, where=self.where(attempt))
        self.failures[config.address(attempt)] = (key, why)
        if len(config.hosts) == 1:
            return key, why
        if len(self.failures) < len(config.hosts):
            return None
        keys = sorted({k for k, _ in self.failures.values()})
        return "|".join(keys), f"no host of {config.url} answers: " + "; ".join(
            why for _, (_, why) in sorted(self.failures.items()))

    def unreachable(self) -> bool:
        """True when every host's last attempt found no broker at all (refused, reset, timed out)."""
        failures = self.failures
        return len(failures) == len(self.config.hosts) and all(k.startswith("unreachable:") for k, _ in
                                                               failures.values())

    def succeeded(self) -> None:
        self.failures.clear()


class Nacked(amqp.AMQPError):
    """The broker refused (nacked) published notifications: the publisher starts again on a new connection."""


class Hold:
    """How long a publisher holds notifications the broker returned (no queue took them) before sending them
    again: ``retry_interval`` doubling up to ``retry_max`` while they keep coming back."""

    def __init__(self, first: float, most: float) -> None:
        self.first, self.most = first, most
        self.delay = first
        self.until = 0.0

    def hold(self) -> None:
        self.until = time.monotonic() + self.delay
        self.delay = min(self.delay * 2, self.most)

    def reset(self) -> None:
        self.delay = self.first

    def remaining(self) -> float:
        return self.until - time.monotonic()


class Backoff:
    """Exponential backoff with jitter, reset after a successful connection."""

    def __init__(self, first: float, most: float) -> None:
        self.first, self.most, self.delay = first, most, first

    def reset(self) -> None:
        self.delay = self.first

    def next(self) -> float:
        delay = self.delay * random.uniform(0.5, 1.0)
        self.delay = min(self.delay * 2, self.most)
        return delay


async def connect(config: RabbitConfig, attempt: int, name: str) -> amqp.Connection:
    """Connect to the ``attempt``-th host (round robin)."""
    host, port = config.hosts[attempt % len(config.hosts)]
    return await amqp.connect(
        host,
        port,
        user=config.user,
        password=config.password,
        vhost=config.vhost,
        ssl_context=config.ssl_context(),
        heartbeat=config.heartbeat,
        timeout=config.connect_timeout,
        name=name,
    )


def safe_error(exc: BaseException) -> str:
    """An exception as one line for the log, with any URL's password masked."""
    return mask_url(f"{type(exc).__name__}: {exc}")


async def open_exchange(
    connection: amqp.Connection, config: RabbitConfig, notices: QuietLog, *, check: bool = True
) -> tuple[Declarer, Exchange]:
    """Make sure the control exchange exists (as oslo declares it); say once if its settings differ from ours.

    ``check``: compare its settings with ours (see :meth:`Declarer.control_exchange`); once the user
    turned out not to be allowed to, callers pass False.
    """
    declarer = Declarer(connection, user=config.user, vhost=config.vhost)
    found = await declarer.control_exchange(config.exchange, durable=config.durable,
                                            auto_delete=config.auto_delete, check=check)
    if found.durable is not None and found.durable != config.durable:
        want = str(found.durable).lower()
        notices.problem(
            "exchange-durable",
            f"exchange '{config.exchange}' on {config.url} is {'durable' if found.durable else 'transient'} but "
            f"novawatch's durable={str(config.durable).lower()}: set durable={want} in the bus URL "
            f"(?durable={want}, what Nova's [oslo_messaging_rabbit] amqp_durable_queues is); the exchange is "
            "used as it is", extra={"bus_url": config.url, "exchange": config.exchange})
    return declarer, found


def envelope(body: bytes) -> bytes:
    """oslo.messaging's 2.0 envelope around a plain notification dict, with oslo's ``_unique_id``."""
    unique = '{"_unique_id":"' + os.urandom(16).hex() + '",'  # oslo's is uuid4().hex: 32 random hex digits
    inner = unique + body[1:].decode() if len(body) > 2 else body.decode()
    return b'{"oslo.version":"2.0","oslo.message":' + msgspec.json.encode(inner) + b"}"


# --- publisher ---------------------------------------------------------------------------------------

_Item = tuple[int, str, bytes]  # (sequence number, routing key, body)


class RabbitPublisher(Publisher):
    """Publishes to RabbitMQ from any thread, through a connection owned by a background thread."""

    def __init__(self, url: BusURL, **options: Any) -> None:
        self.config = RabbitConfig.from_url(url, options)
        self._cond = threading.Condition()
        self._outbox: deque[_Item] = deque()
        self._retry: list[_Item] = []  # sent but not confirmed when the connection went: they go first
        self._sequence = 0
        self._unconfirmed = 0  # accepted by publish_body, not yet confirmed by the broker
        self._idle = False
        self._closing = False
        self._error: BaseException | None = None
        self.connected = threading.Event()
        #: ``host:port`` of the broker connected to (None while not connected)
        self.broker: str | None = None
        self._hold = Hold(self.config.retry_interval, self.config.retry_max)
        self._unroutable = QuietLog(log)
        self._refused = QuietLog(log)
        self._loop = asyncio.new_event_loop()
        self._work = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="novawatch-bus-publisher", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"<RabbitPublisher {self.config.url} exchange={self.config.exchange}>"

    def publish_body(self, topic: str, priority: str, body: bytes) -> None:
        routing_key, data = f"{topic}.{priority.lower()}", envelope(body)
        with self._cond:
            if self._closing:
                raise BusError("publisher is closed")
            while len(self._outbox) >= self.config.max_outbox:  # back-pressure while the broker is away
                self._cond.wait()
            self._sequence += 1
            self._outbox.append((self._sequence, routing_key, data))
            self._unconfirmed += 1
            if self._idle:
                self._idle = False
                self._loop.call_soon_threadsafe(self._work.set)

    def flush(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._unconfirmed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"{self._unconfirmed} notifications not confirmed by the broker")
                self._cond.wait(remaining)

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush (up to ``timeout``) and disconnect; what the broker did not confirm by then is lost."""
        with contextlib.suppress(TimeoutError):
            self.flush(timeout)
        with self._cond:
            self._closing = True
            self._idle = False
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop may have ended meanwhile
                self._loop.call_soon_threadsafe(self._work.set)
            self._thread.join(timeout)

    # --- the background thread ---

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        config = self.config
        backoff = Backoff(config.retry_interval, config.retry_max)
        trouble, notices = QuietLog(log), QuietLog(log)
        attempts = Attempts(config)
        attempt = 0
        check = True
        while not self._closing:
            connection: amqp.Connection | None = None
            try:
                connection = await connect(config, attempt, "novawatch publisher")
                declarer, exchange = await open_exchange(connection, config, notices, check=check)
                check = check and exchange.durable is not None
                channel = await connection.channel(confirms=True)
                backoff.reset()
                self.broker = config.address(attempt)
                attempts.succeeded()
                self.connected.set()
                trouble.cleared(f"publisher now connected to {config.url}",
                                extra={"bus_url": config.url})
                await self._pump(connection, channel, declarer)
            except Nacked:  # said once by _pump; the hold paces the next try, on the next host if there are several
                self.connected.clear()
                self.broker = None
                attempt += 1
            except Exception as exc:  # whatever it was, the outbox must not stall: retry
                self.connected.clear()
                self.broker = None
                failed = attempts.failed(attempt, exc)
                attempt += 1
                delay = backoff.next() if failed is not None else 0.0  # another host may answer at once
                if failed is not None:
                    key, why = failed
                    trouble.problem(key, mask_url(f"publisher: {why}; notifications wait in the outbox, retrying"),
                                    extra={"bus_url": config.url, "retry_in": delay})
                else:
                    log.info("publisher: %s; trying the next host", mask_url(safe_error(exc)),
                             extra={"bus_url": config.url, "broker": config.address(attempt - 1)})
                await asyncio.sleep(delay)
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()

    async def _pump(self, connection: amqp.Connection, channel: amqp.Channel, declarer: Declarer) -> None:
        """Move the outbox to the broker, ``window`` unconfirmed at most, until closed or cut off."""
        exchange, window = self.config.exchange, self.config.window
        inflight: deque[tuple[int, _Item]] = deque()  # published, not yet confirmed, in delivery-tag order
        wake = self._work  # new work (publish_body), room in the window (a confirm), or the connection gone
        lost: list[BaseException] = []

        def gone(exc: BaseException) -> None:
            lost.append(exc)
            wake.set()

        returned: set[int] = set()  # delivery tags of messages the broker returned: no queue took them
        refused: list[int] = []  # set by a nack: send nothing more on this connection
        hold = self._hold

        def bounced(message: amqp.Message, code: int, text: str) -> None:
            # a return names no delivery tag; the body (unique: oslo's _unique_id is in it) tells which
            for t, item in inflight:
                if item[2] == message.body and t not in returned:
                    returned.add(t)
                    self._unroutable.problem(
                        "unroutable",
                        f"publisher: the broker took no queue for notifications to exchange '{exchange}' "
                        f"(routing key {message.routing_key}: {code} {text}): they are held and sent again; is a "
                        "model service's queue or stream bound to it? (the bus URL has mandatory=true)",
                        extra={"bus_url": self.config.url, "exchange": exchange})
                    break

        def confirmed(tag: int, multiple: bool, acked: bool) -> None:
            settled: list[tuple[int, _Item]] = []
            if multiple:
                while inflight and inflight[0][0] <= tag:
                    settled.append(inflight.popleft())
            elif inflight and inflight[0][0] == tag:
                settled.append(inflight.popleft())
            else:
                for i, (t, item) in enumerate(inflight):
                    if t == tag:
                        del inflight[i]
                        settled.append((t, item))
                        break
            again = [item for t, item in settled if not acked or t in returned]
            if acked and again:
                hold.hold()  # returned: a queue may be missing for a while, so wait before sending them again
            elif acked and settled:
                hold.reset()
            if not acked and settled and not refused:
                # A queue could not take them: a quorum queue between the loss of its leader and the election of
                # the next, say. RabbitMQ 3.10 goes on nacking on a channel that saw that, even once the queue
                # has a leader again: send nothing more here, and once what is in flight is settled (so that
                # what was taken is not sent twice), wait, then send the rest again on a new connection.
                hold.hold()
                refused.append(len(settled))
                self._refused.problem(
                    "nacked", f"publisher: the broker refused (nacked) notifications to exchange '{exchange}' (a "
                    "queue bound to it could not take them, e.g. a quorum queue electing a new leader after a node "
                    "was lost): they are sent again on a new connection; if this goes on, look at the broker's "
                    "queues (rabbitmqctl list_queues name type leader online)",
                    extra={"bus_url": self.config.url, "exchange": exchange})
            if refused and not inflight and not lost:
                gone(Nacked("the broker nacked notifications"))
            returned.difference_update(t for t, _ in settled)
            with self._cond:
                if len(again) < len(settled):
                    self._unconfirmed -= len(settled) - len(again)
                    if not self._unconfirmed:
                        self._cond.notify_all()
                        self._refused.cleared("publisher: the broker took every notification it had refused",
                                              extra={"bus_url": self.config.url})
                self._retry.extend(again)  # nacked or returned: it goes again, first
            wake.set()

        connection.close_callbacks.append(gone)
        channel.close_callbacks.append(gone)
        channel.on_confirm = confirmed
        channel.on_return = bounced
        mandatory = self.config.mandatory
        declared: set[str] = set()
        batch: deque[_Item] = deque()
        try:
            while not lost:
                if refused:  # a nack: only wait for what is in flight to be settled (see confirmed)
                    await self._lost(lost, wake)
                    continue
                wait = hold.remaining()
                if wait > 0:  # notifications came back unrouted: send nothing until the hold ends
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._lost(lost, wake), wait)
                    continue
                with self._cond:
                    if self._retry and not inflight:
                        # in their original order, so that consumers see the stream as it was published
                        self._outbox.extendleft(sorted(self._retry, reverse=True))
                        self._retry.clear()
                    room = window - len(inflight)
                    while self._outbox and len(batch) < room:
                        batch.append(self._outbox.popleft())
                    if batch:
                        self._cond.notify_all()  # room in the outbox for blocked publishers
                    elif self._closing and not inflight:
                        return
                    else:
                        self._idle = not self._outbox
                        wake.clear()
                if not batch:
                    await wake.wait()
                    continue
                while batch:
                    item = batch[0]
                    if self.config.default_queue and item[1] not in declared:
                        await self._default_queue(declarer, item[1])
                        declared.add(item[1])
                    inflight.append((channel.publish(exchange, item[1], item[2], mandatory=mandatory), item))
                    batch.popleft()
                await connection.drain()  # one write for the batch; waits while the socket is full
        finally:
            channel.on_confirm = None
            channel.on_return = None
            with self._cond:  # what was not confirmed goes again, first, on the next connection
                self._retry.extend(item for _, item in inflight)
                self._retry.extend(batch)
        if isinstance(lost[0], amqp.AMQPError):  # what the broker said: a refused publish, a shutdown
            raise lost[0]
        raise ConnectionError(f"connection to the broker lost: {lost[0]}")

    @staticmethod
    async def _lost(lost: list[BaseException], wake: asyncio.Event) -> None:
        """Return once the connection is gone (woken by every event; the hold waits for this or its end)."""
        while not lost:
            wake.clear()
            await wake.wait()

    async def _default_queue(self, declarer: Declarer, routing_key: str) -> None:
        # as oslo's notifier does: the queue takes the exchange's settings, and its name is the routing key
        config = self.config
        await declarer.queue(routing_key, durable=config.durable, auto_delete=config.auto_delete)
        await declarer.bind(routing_key, config.exchange, [routing_key])


# --- subscriber --------------------------------------------------------------------------------------


def gap_reason(
    config: RabbitConfig, queue: str, created: bool, exchange: Exchange, *, outage: bool = False
) -> str | None:
    """Why a reconnected subscriber may have missed notifications, or None when its queue kept them.

    A queue that had to be created again was lost with what it held, and nothing was routed to it
    meanwhile; an exchange that had to be created again lost its bindings; a durable queue bound to a
    transient exchange survives a restart of the broker but its bindings do not. A stream, after an
    ``outage`` (the only host was lost, or none of the URL's hosts answered): RabbitMQ (3.10) restores a
    stream's bindings some moments after it accepts connections again, and what publishers send in
    between is dropped, yet confirmed. Otherwise the queue and its bindings were there all along, and
    kept every notification.
    """
    if created:
        return (f"queue '{queue}' was gone and had to be created again (the broker restarted or it was deleted): "
                "notifications published meanwhile never reached it")
    if exchange.created:
        return (f"exchange '{config.exchange}' was gone and had to be created again: queue '{queue}' was not "
                "bound to it meanwhile")
    if outage and config.queue_type == "stream":
        return (f"the connection to RabbitMQ was lost and no other node took over (a restart of the broker?): a "
                "stream's bindings come back "
                f"only some moments after the broker accepts connections again, so stream '{queue}' may have "
                "missed what was published in between (a publisher with mandatory=true holds those instead)")
    if config.queue_durable and exchange.durable is False:
        return (f"queue '{queue}' is durable but exchange '{config.exchange}' is not: its bindings may have been "
                "lost with a restart of the broker")
    return None


class _RabbitDelivery(Delivery):
    __slots__ = ("_epoch", "_message", "_subscriber")

    def __init__(self, subscriber: RabbitSubscriber, message: amqp.Message, epoch: int,
                 offset: int | None = None) -> None:
        super().__init__(message.body, message.routing_key, subscriber.decoder, message.redelivered, offset)
        self._subscriber = subscriber
        self._message = message
        self._epoch = epoch

    async def _ack(self) -> None:
        self._subscriber.settle(self._epoch, self._message.delivery_tag)

    async def _dead_letter(self, reason: str) -> None:
        await self._subscriber.dead_letter(self._message, self._epoch, reason)


_LOST = object()
_ACK_BATCH = 64  # acknowledgements sent together (one multiple-ack frame) while busy


class RabbitSubscriber(Subscriber):
    """Consumes the notifications of ``topics`` through the queue of consumer ``group``.

    Acknowledgements are coalesced: while messages keep coming, one ``basic.ack(multiple)`` covers up to
    64 of them; whenever the subscriber waits for the next message, everything acknowledged is sent.

    On a stream (``queue_type=stream``) the group names the stream, and every subscriber reads all of it
    from its own ``offset``: several model services may share one stream.
    """

    def __init__(
        self,
        url: BusURL,
        *,
        group: str,
        topics: Sequence[str],
        decoder: Decoder | None = None,
        priorities: Sequence[str] = PRIORITIES,
        **options: Any,
    ) -> None:
        super().__init__(group, topics, decoder)
        self.config = RabbitConfig.from_url(url, options)
        self.priorities = tuple(p.lower() for p in priorities)
        self.queue_name = group
        self.dead_letter_queue = f"{group}.dead-letter"
        self.connected = asyncio.Event()
        self._connection: amqp.Connection | None = None
        self._channel: amqp.Channel | None = None
        self._epoch = 0  # one per channel: delivery tags of an old channel mean nothing on a new one
        self._incoming: deque[Any] = deque()  # (epoch, message) or _LOST, filled by the connection
        self._waiter: asyncio.Future[None] | None = None  # set while __aiter__ waits for _incoming
        self._acked: set[int] = set()
        self._next_tag = 1  # the lowest delivery tag not yet acknowledged to the broker
        self._backoff = Backoff(self.config.retry_interval, self.config.retry_max)
        self._attempts = Attempts(self.config)
        self._attempt = 0
        self._closed = False
        self._consumed = False  # consumed before: the next connection is a reconnection
        self._created = self._exchange_created = False  # by an attempt since the last consume
        self._trouble = QuietLog(log)  # why it cannot connect, once per condition
        self._notices = QuietLog(log)  # settings that differ from the broker's, once
        self._check = True  # compare the exchange's settings with ours (until the user may not)
        #: ``host:port`` of the broker connected to (None while not connected)
        self.broker: str | None = None
        stream = self.config.queue_type == "stream"
        self._cursor = StreamCursor(self.config.offset) if stream else None
        self._expect: int | None = None  # the stream offset the next delivery should have (None: any)
        self._outage = False  # since the last consume, the broker was down (see gap_reason)
        self._connection_lost = False  # the last loss was the connection's, not only the channel's

    @property
    def position(self) -> int | None:
        """On a stream, the offset up to which every delivery was acknowledged; None on a queue."""
        return self._cursor.position if self._cursor is not None else None

    @property
    def kind(self) -> str:
        return self.config.queue_type

    def resume_after(self, position: int) -> bool:
        """On a stream, read from ``position + 1`` (where a checkpoint stopped); a stream made anew meanwhile
        is read from its start (its offsets are not the old one's)."""
        if self._cursor is None:
            return False
        self._cursor.restart(position + 1)
        self._cursor.position = position
        return True

    def __repr__(self) -> str:
        return f"<RabbitSubscriber {self.config.url} queue={self.queue_name}>"

    async def start(self) -> None:
        if self._connection is None:
            await self._connect_forever()

    async def _connect_forever(self) -> None:
        config = self.config
        while not self._closed:
            try:
                await self._connect()
            except Exception as exc:  # a broker away, a permission missing, a race on a declaration: retry
                if isinstance(exc, ExchangeMissing):
                    self._exchange_created = True  # gone, so bindings to it are gone: Nova creates it again
                await self._disconnect()
                failed = self._attempts.failed(self._attempt, exc)
                self._attempt += 1
                if failed is None:  # another host of the URL may answer: try it at once
                    log.info("subscriber %s: %s; trying the next host", self.queue_name, mask_url(safe_error(exc)),
                             extra={"bus_url": config.url, "queue": self.queue_name})
                    continue
                delay = self._backoff.next()
                key, why = failed
                if self._attempts.unreachable():  # no host answered at all: the broker itself went down
                    self._outage = True
                self.problem = mask_url(f"subscriber {self.queue_name}: {why}")
                self._trouble.problem(key, f"{self.problem}; retrying",
                                      extra={"bus_url": config.url, "queue": self.queue_name, "retry_in": delay})
                await asyncio.sleep(delay)
                continue
            self._backoff.reset()
            self._attempts.succeeded()
            self.problem = None
            self._trouble.cleared(f"subscriber {self.queue_name} now consumes from {config.url}",
                                  extra={"bus_url": config.url, "queue": self.queue_name})
            return

    async def _connect(self) -> None:
        config, queue = self.config, self.queue_name
        connection = self._connection = await connect(config, self._attempt, f"novawatch {self.group}")
        declarer, exchange = await open_exchange(connection, config, self._notices, check=self._check)
        self._check = self._check and exchange.durable is not None
        # The queue is novawatch's own, declared as an oslo listener pool's queue would be (so one of the
        # same name shares it) but not auto-deleted: it keeps notifications while the model restarts
        # (``queue_auto_delete`` for a passing consumer such as ``novawatch tail``, whose queue must not
        # fill up on Nova's broker once it has gone). What an attempt creates counts until an attempt
        # consumes (a later one finds it existing).
        arguments = queue_arguments(config.queue_type, max_age=config.max_age,
                                    max_length_bytes=config.max_length_bytes, segment_bytes=config.segment_bytes)
        created = await declarer.queue(queue, durable=config.queue_durable, auto_delete=config.queue_auto_delete,
                                       arguments=arguments)
        self._created |= created
        self._exchange_created |= exchange.created
        await declarer.bind(queue, config.exchange,
                            [f"{topic}.{priority}" for topic in self.topics for priority in self.priorities])
        await declarer.dead_letter(self.dead_letter_queue, replicated=config.queue_type != "classic")
        channel = await connection.channel(confirms=True)  # confirms: a dead letter is stored before the ack
        await channel.basic_qos(config.prefetch)
        incoming, wake = self._incoming, self._wake
        self._epoch += 1
        self._acked.clear()
        self._next_tag = 1

        def lost(_: BaseException) -> None:
            if self._channel is channel:  # not the old connection that _disconnect closes on purpose
                incoming.append(_LOST)
                wake()

        def connection_lost(exc: BaseException) -> None:
            if self._channel is channel:
                self._connection_lost = True
            lost(exc)

        connection.close_callbacks.append(connection_lost)
        channel.close_callbacks.append(lost)
        self._channel = channel
        epoch = self._epoch

        def on_message(message: amqp.Message) -> None:
            incoming.append((epoch, message))
            if self._waiter is not None:
                wake()

        consume = None
        cursor = self._cursor
        if cursor is not None:
            if created and cursor.position is not None:
                # a stream made anew holds nothing of the old one's offsets: read the new one from its start
                cursor.restart("first")
            start = cursor.resume()
            consume = consume_arguments(start)
            self._expect = start if isinstance(start, int) else None
            if self._consumed or self.resumed:
                log.info("subscriber %s: reading stream '%s' from %s", queue, queue, describe(start),
                         extra={"queue": queue, "offset": describe(start)})
        await declarer.consume(channel, queue, on_message, consume)
        if cursor is not None:
            cursor.subscribed()
        self.broker = config.address(self._attempt)
        self.connected.set()
        again, self._consumed = self._consumed or self.resumed, True
        meanwhile = Exchange(created=self._exchange_created, durable=exchange.durable)
        reason = gap_reason(config, queue, self._created, meanwhile, outage=self._outage) if again else None
        self._created = self._exchange_created = self._outage = False
        if reason is not None:
            log.info("subscriber %s: %s", queue, reason, extra={"queue": queue, "gap": reason})
            self._gap(reason)

    async def _disconnect(self) -> None:
        self.connected.clear()
        self.broker = None
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def settle(self, epoch: int, tag: int) -> None:
        """Record an acknowledgement; it goes to the broker with the next batch."""
        if epoch == self._epoch:  # else the channel is gone: the broker delivers it again (at-least-once)
            if self._cursor is not None:
                self._cursor.settled(tag)
            self._acked.add(tag)
            if len(self._acked) >= _ACK_BATCH:
                self._send_acks()

    def _send_acks(self) -> None:
        channel, acked = self._channel, self._acked
        if channel is None or not acked:
            return
        top = self._next_tag
        while top in acked:
            acked.discard(top)
            top += 1
        try:
            if top > self._next_tag:
                channel.ack(top - 1, multiple=True)
            # acknowledged out of order: one by one, so that a message held back never stalls the window
            for tag in acked:
                channel.ack(tag)
        except _CONNECTION_ERRORS as exc:  # the broker delivers them again on the next channel
            log.debug("acknowledgements lost with the channel: %s", safe_error(exc))
        acked.clear()
        self._next_tag = top

    async def dead_letter(self, message: amqp.Message, epoch: int, reason: str) -> None:
        """Keep ``message`` in the dead-letter queue with ``reason``, then acknowledge it."""
        channel = self._channel
        if channel is None or epoch != self._epoch:
            return  # it will be delivered again, and dead-lettered then
        source = message.properties
        headers: dict[str, Any] = {
            REASON_HEADER: reason[:4000],
            "x-novawatch-routing-key": message.routing_key,
            "x-novawatch-exchange": message.exchange,
            "x-novawatch-group": self.group,
        }
        props = spec.Basic.Properties(
            headers=headers,
            content_type=source.content_type,
            content_encoding=source.content_encoding,
            delivery_mode=_PERSISTENT,
        )
        try:
            stored = await channel.publish_confirmed(self.dead_letter_queue, "", message.body, props)
        except _CONNECTION_ERRORS as exc:
            log.debug("dead-lettering lost with the connection: %s", safe_error(exc))
            return
        if stored:
            self.settle(epoch, message.delivery_tag)

    async def __aiter__(self) -> AsyncIterator[Delivery]:
        await self.start()
        incoming = self._incoming
        while not self._closed:
            if not incoming:
                self._send_acks()  # caught up: acknowledge everything applied so far
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
                continue
            item = incoming.popleft()
            if item is _LOST:
                if self._closed:
                    return
                # deliveries still queued came on the dead channel: the broker sends them again
                incoming.clear()
                # with one host, losing it may mean the broker restarted, even if it is back by the time we
                # reconnect; with several, an outage is seen when none of them answers
                self._outage = self._outage or (len(self.config.hosts) == 1 and self._connection_lost)
                self._connection_lost = False
                self._trouble.problem("lost", f"subscriber {self.queue_name} lost the broker; reconnecting",
                                      extra={"bus_url": self.config.url, "queue": self.queue_name})
                await self._disconnect()
                await self._connect_forever()
                continue
            epoch, message = item
            if epoch != self._epoch:
                continue
            cursor = self._cursor
            if cursor is None:
                yield _RabbitDelivery(self, message, epoch)
                continue
            offset = message.stream_offset
            if offset is None:  # not from a stream after all (the queue is another type): no position
                yield _RabbitDelivery(self, message, epoch)
                continue
            expected, self._expect = self._expect, offset + 1
            if expected is not None and offset > expected:  # skipped offsets: entries of the stream's own,
                await self._check_retention(expected)  # or removed by its retention before they were read
            cursor.delivered(message.delivery_tag, offset)
            yield _RabbitDelivery(self, message, epoch, offset)

    async def _check_retention(self, expected: int) -> None:
        """A delivery came after the offset expected (the one asked for, or the one after the last): a gap
        if the stream no longer holds that offset (its retention removed it before it was read). Offsets
        the stream spent on entries of its own (they are not messages) are not a gap."""
        connection = self._connection
        if connection is None:
            return
        try:
            first = await first_offset(connection, self.queue_name)
        except _CONNECTION_ERRORS as exc:
            log.debug("could not look at the start of stream %s: %s", self.queue_name, safe_error(exc))
            return
        if first is not None and first > expected:
            reason = (f"stream '{self.queue_name}' no longer holds offsets {expected} to {first - 1} (its retention, "
                      "max_age or max_length_bytes, removed them): notifications there were never applied")
            log.warning("subscriber %s: %s", self.queue_name, reason, extra={"queue": self.queue_name, "gap": reason})
            self._gap(reason)

    async def backlog(self) -> Backlog:
        """Asks the broker how much the queue holds (a passive declaration; on a stream, also its first offset).

        A queue: ``behind`` counts what waits in it plus what was delivered and not applied yet. A stream:
        ``last`` is its first offset plus the number of messages RabbitMQ counted (which it refreshes every
        few seconds), and ``behind`` is ``last`` minus ``position``.
        """
        config, queue = self.config, self.queue_name
        kind = config.queue_type
        connection = self._connection
        if connection is None or not self.connected.is_set():
            return Backlog(queue, kind, self.position, note=self.problem or "not connected to the broker")
        channel = await connection.channel()
        try:
            count, _ = await channel.queue_declare(queue, passive=True)
        finally:
            with contextlib.suppress(amqp.AMQPError, ConnectionError):
                await channel.close()
        waiting = sum(1 for item in self._incoming if item is not _LOST)
        if self._cursor is None:
            return Backlog(queue, kind, None, None, count + waiting, self.broker)
        position, received = self._cursor.position, self._cursor.received
        if not count:  # empty, or not counted yet: what was delivered here is all that is known
            behind = received - position if received is not None and position is not None else 0
            return Backlog(queue, kind, position, received, behind, self.broker,
                           "RabbitMQ has not counted the stream yet (it does every few seconds)")
        first = await first_offset(connection, queue)
        if first is None:
            return Backlog(queue, kind, position, broker=self.broker, note="the stream's first offset did not come")
        last = max(first + count - 1, received or 0)
        return Backlog(queue, kind, position, last, max(0, last - position) if position is not None else None,
                       self.broker, "last: as RabbitMQ counted the stream, every few seconds")

    async def close(self) -> None:
        self._send_acks()
        self._closed = True
        self._incoming.append(_LOST)
        self._wake()
        await self._disconnect()  # the connection's close sends the last acknowledgements first
