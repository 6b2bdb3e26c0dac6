"""RabbitMQ, the way oslo.messaging uses it, so that a real OpenStack cloud's notifications flow both ways.

Wire conventions (oslo_messaging/_drivers/impl_rabbit.py, notify/messaging.py): a ``topic`` exchange named
after the control exchange (``nova``), routing key ``<topic>.<priority lowercase>``, the body
``{"oslo.version": "2.0", "oslo.message": "<the notification dict as JSON, plus _unique_id>"}``,
``application/json`` in ``utf-8``, persistent. Exchange and queues are declared as oslo declares them
(no arguments, not auto-deleted, durable as ``amqp_durable_queues``; ``?durable=false`` for a cloud that
keeps oslo's default of transient queues).

Publisher: publisher confirms with a window of unconfirmed messages; a message leaves the outbox only when
the broker confirmed it, and is sent again after a reconnection otherwise (at-least-once).

Subscriber: a queue per consumer group, named after the group and bound to ``<topic>.<priority>`` for
every priority (an oslo listener pool of the same name shares it); manual acknowledgement after the
consumer applied the message, a prefetch window, and a dead-letter queue ``<group>.dead-letter`` where
messages that cannot be decoded go, with the reason in the ``x-novawatch-reason`` header.

The AMQP 0-9-1 client underneath is :mod:`novawatch.bus.amqp` (pamqp for the frames, the per-message ones
packed by hand). Both reconnect forever with exponential backoff (``retry_interval`` doubling up to
``retry_max``), trying the URL's hosts in turn.

Query options: ``exchange`` (nova), ``durable`` (true), ``prefetch`` (512), ``window`` (1024),
``max_outbox`` (100000), ``default_queue`` (false: declare oslo's ``<topic>.<priority>`` queue on publish,
as oslo does, for listeners that start late), ``heartbeat`` (60), ``connect_timeout`` (10),
``retry_interval`` (0.2), ``retry_max`` (5), ``ssl`` and ``ssl_ca_file``, ``ssl_cert_file``, ``ssl_key_file``,
``ssl_verify`` (true), ``password_file`` (read the password from a file instead of the URL).
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
from novawatch.bus.base import BusError, Decoder, Delivery, Publisher, Subscriber
from novawatch.bus.url import BusURL, mask_url, truthy

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
    durable: bool = True
    prefetch: int = 512
    window: int = 1024
    max_outbox: int = 100_000
    default_queue: bool = False
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
            durable=flag("durable", True),
            prefetch=int(opts.get("prefetch", 512)),
            window=int(opts.get("window", 1024)),
            max_outbox=int(opts.get("max_outbox", 100_000)),
            default_queue=flag("default_queue", False),
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


async def declare_exchange(connection: amqp.Connection, config: RabbitConfig) -> amqp.Channel:
    """Declare the control exchange as oslo does; if it exists with another durability, use it as it is.

    Returns a channel (with publisher confirms) on which the exchange is known to exist.
    """
    channel = await connection.channel(confirms=True)
    try:
        await channel.exchange_declare(config.exchange, "topic", durable=config.durable, auto_delete=False)
    except amqp.ChannelClosed as exc:
        if exc.reply_code != 406:  # PRECONDITION_FAILED
            raise
        # Another service (an oslo.messaging one with other settings) declared it first: the failed
        # declaration closed the channel, so take a new one and accept the exchange as it stands.
        log.info("exchange %s exists with other settings (%s); using it as is", config.exchange, safe_error(exc))
        channel = await connection.channel(confirms=True)
        await channel.exchange_declare(config.exchange, passive=True)
    return channel


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
        backoff = Backoff(self.config.retry_interval, self.config.retry_max)
        attempt = 0
        while not self._closing:
            connection: amqp.Connection | None = None
            try:
                connection = await connect(self.config, attempt, "novawatch publisher")
                channel = await declare_exchange(connection, self.config)
                backoff.reset()
                self.connected.set()
                await self._pump(connection, channel)
            except Exception as exc:  # whatever it was, the outbox must not stall: retry
                self.connected.clear()
                attempt += 1
                delay = backoff.next()
                log.warning("publisher to %s lost the broker (%s); retrying in %.1fs",
                            self.config.url, safe_error(exc), delay,
                            extra={"bus_url": self.config.url, "retry_in": delay})
                await asyncio.sleep(delay)
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()

    async def _pump(self, connection: amqp.Connection, channel: amqp.Channel) -> None:
        """Move the outbox to the broker, ``window`` unconfirmed at most, until closed or cut off."""
        exchange, window = self.config.exchange, self.config.window
        inflight: deque[tuple[int, _Item]] = deque()  # published, not yet confirmed, in delivery-tag order
        wake = self._work  # new work (publish_body), room in the window (a confirm), or the connection gone
        lost: list[BaseException] = []

        def gone(exc: BaseException) -> None:
            lost.append(exc)
            wake.set()

        def confirmed(tag: int, multiple: bool, acked: bool) -> None:
            settled: list[_Item] = []
            if multiple:
                while inflight and inflight[0][0] <= tag:
                    settled.append(inflight.popleft()[1])
            elif inflight and inflight[0][0] == tag:
                settled.append(inflight.popleft()[1])
            else:
                for i, (t, item) in enumerate(inflight):
                    if t == tag:
                        del inflight[i]
                        settled.append(item)
                        break
            with self._cond:
                if acked:
                    self._unconfirmed -= len(settled)
                    if not self._unconfirmed:
                        self._cond.notify_all()
                else:  # nacked: it goes again, first
                    self._retry.extend(settled)
            wake.set()

        connection.close_callbacks.append(gone)
        channel.close_callbacks.append(gone)
        channel.on_confirm = confirmed
        declared: set[str] = set()
        batch: deque[_Item] = deque()
        try:
            while not lost:
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
                        await self._default_queue(channel, item[1])
                        declared.add(item[1])
                    inflight.append((channel.publish(exchange, item[1], item[2]), item))
                    batch.popleft()
                await connection.drain()  # one write for the batch; waits while the socket is full
        finally:
            channel.on_confirm = None
            with self._cond:  # what was not confirmed goes again, first, on the next connection
                self._retry.extend(item for _, item in inflight)
                self._retry.extend(batch)
        raise ConnectionError(f"connection to the broker lost: {lost[0]}")

    async def _default_queue(self, channel: amqp.Channel, routing_key: str) -> None:
        await channel.queue_declare(routing_key, durable=self.config.durable, auto_delete=False)
        await channel.queue_bind(routing_key, self.config.exchange, routing_key)


# --- subscriber --------------------------------------------------------------------------------------


class _RabbitDelivery(Delivery):
    __slots__ = ("_epoch", "_message", "_subscriber")

    def __init__(self, subscriber: RabbitSubscriber, message: amqp.Message, epoch: int) -> None:
        super().__init__(message.body, message.routing_key, subscriber.decoder, message.redelivered)
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
        self._attempt = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"<RabbitSubscriber {self.config.url} queue={self.queue_name}>"

    async def start(self) -> None:
        if self._connection is None:
            await self._connect_forever()

    async def _connect_forever(self) -> None:
        while not self._closed:
            try:
                await self._connect()
                self._backoff.reset()
                return
            except Exception as exc:  # e.g. a queue declared with other settings: keep trying
                await self._disconnect()
                self._attempt += 1
                delay = self._backoff.next()
                log.warning("subscriber %s cannot reach %s (%s); retrying in %.1fs",
                            self.queue_name, self.config.url, safe_error(exc), delay,
                            extra={"bus_url": self.config.url, "queue": self.queue_name, "retry_in": delay})
                await asyncio.sleep(delay)

    async def _connect(self) -> None:
        connection = self._connection = await connect(self.config, self._attempt, f"novawatch {self.group}")
        channel = await declare_exchange(connection, self.config)
        await channel.basic_qos(self.config.prefetch)
        await channel.queue_declare(self.queue_name, durable=self.config.durable, auto_delete=False)
        for topic in self.topics:
            for priority in self.priorities:
                await channel.queue_bind(self.queue_name, self.config.exchange, f"{topic}.{priority}")
        await channel.queue_declare(self.dead_letter_queue, durable=True, auto_delete=False)
        incoming, wake = self._incoming, self._wake
        self._epoch += 1
        self._acked.clear()
        self._next_tag = 1

        def lost(_: BaseException) -> None:
            if self._channel is channel:  # not the old connection that _disconnect closes on purpose
                incoming.append(_LOST)
                wake()

        connection.close_callbacks.append(lost)
        channel.close_callbacks.append(lost)
        self._channel = channel
        epoch = self._epoch

        def on_message(message: amqp.Message) -> None:
            incoming.append((epoch, message))
            if self._waiter is not None:
                wake()

        await channel.basic_consume(self.queue_name, on_message)
        self.connected.set()

    async def _disconnect(self) -> None:
        self.connected.clear()
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
            stored = await channel.publish_confirmed("", self.dead_letter_queue, message.body, props)
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
                log.warning("subscriber %s lost the broker; reconnecting", self.queue_name)
                await self._disconnect()
                await self._connect_forever()
                continue
            epoch, message = item
            if epoch == self._epoch:
                yield _RabbitDelivery(self, message, epoch)

    async def close(self) -> None:
        self._send_acks()
        self._closed = True
        self._incoming.append(_LOST)
        self._wake()
        await self._disconnect()  # the connection's close sends the last acknowledgements first
