"""Nova's side of a shared RabbitMQ broker, with the real oslo.messaging and its default options.

:class:`Nova` holds what a Nova service has on the broker: a notifier (driver ``messagingv2``, topics
``versioned_notifications`` and ``notifications``) and an RPC server that receives casts, both on one
control exchange. :class:`Producer` runs the compute service's actions in a thread of their own, each
notification sent through oslo's Notifier as Nova sends it, with an RPC cast after every few actions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import oslo_messaging
from oslo_config import cfg

from novawatch.notifications.event import VERSIONED_TOPIC
from novawatch.simulate import Simulation
from novawatch.snapshot import Snapshot

#: What oslo logs when a declaration or a publish of Nova's fails because of someone else's declaration.
BROKEN = ("PRECONDITION_FAILED", "inequivalent", "ACCESS_REFUSED", "Could not send notification",
          "Failed to publish", "Unable to connect")


class Records(logging.Handler):
    """Keeps the records of a logger (and its children) while installed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._guard:
            self.records.append(record)

    def matching(self, *needles: str, level: int = logging.DEBUG) -> list[str]:
        with self._guard:
            lines = [r.getMessage() for r in self.records if r.levelno >= level]
        return [line for line in lines if any(n in line for n in needles)]


@contextlib.contextmanager
def capture(*names: str) -> Iterator[Records]:
    """Install one :class:`Records` on the loggers ``names`` for the duration."""
    handler = Records()
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


class Casts:
    """An RPC endpoint that records every ``ping`` cast it receives."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.lock = threading.Lock()

    def ping(self, ctxt: Any, seq: int) -> None:
        with self.lock:
            self.seen.add(seq)

    def count(self) -> int:
        with self.lock:
            return len(self.seen)


class Nova:
    """oslo.messaging as a Nova service configures it: ``control_exchange`` and oslo's defaults otherwise."""

    def __init__(self, url: str, exchange: str, topic: str, *, durable: bool = False, quorum: bool = False) -> None:
        self.exchange, self.topic = exchange, topic
        # Nova's configuration object is the global cfg.CONF, on which oslo.messaging registers some of its
        # options at import (the RPC client's tracing and metrics): use it too, and undo the overrides after.
        self.conf = cfg.CONF
        oslo_messaging.set_transport_defaults(control_exchange=exchange)  # what nova/rpc.py does ("nova")
        self.rpc = oslo_messaging.get_rpc_transport(self.conf, url=url)
        if durable:  # a cloud with [oslo_messaging_rabbit] amqp_durable_queues = true (read when connecting)
            self.conf.set_override("amqp_durable_queues", True, group="oslo_messaging_rabbit")
        if quorum:  # a clustered cloud: rabbit_quorum_queue = true (a durable exchange, quorum queues)
            self.conf.set_override("rabbit_quorum_queue", True, group="oslo_messaging_rabbit")
        self.notifications = oslo_messaging.get_notification_transport(self.conf, url=url)
        self.versioned = oslo_messaging.Notifier(self.notifications, driver="messagingv2",
                                                 topics=["versioned_notifications"])
        self.legacy = oslo_messaging.Notifier(self.notifications, driver="messagingv2", topics=["notifications"])
        self.casts = Casts()
        target = oslo_messaging.Target(topic=topic, server="host-1")
        self.server = oslo_messaging.get_rpc_server(self.rpc, target, [self.casts])  # threads: the default
        self.client = oslo_messaging.get_rpc_client(self.rpc, target)
        self._started = False

    def start_server(self) -> None:
        """Start the RPC server: it declares the exchange and its queues, as nova-compute does at start."""
        self.server.start()
        self._started = True

    def notify(self, topic: str, body: bytes) -> None:
        """Send one novawatch-encoded notification through oslo's notifier (oslo sets id and timestamp)."""
        doc = json.loads(body)
        notifier = self.versioned if topic == VERSIONED_TOPIC else self.legacy
        sender = notifier.prepare(publisher_id=doc["publisher_id"])
        getattr(sender, doc["priority"].lower())({}, doc["event_type"], doc["payload"])

    def cast(self, seq: int) -> None:
        self.client.cast({}, "ping", seq=seq)

    def close(self) -> None:
        if self._started:
            self.server.stop()
            self.server.wait()
        self.rpc.cleanup()
        self.notifications.cleanup()
        self.conf.clear_override("amqp_durable_queues", group="oslo_messaging_rabbit")
        self.conf.clear_override("rabbit_quorum_queue", group="oslo_messaging_rabbit")

    def queues(self) -> list[str]:
        """Queues oslo declared with names we know (the fanout one has a random name and expires)."""
        default = [f"{t}.{p}" for t in ("versioned_notifications", "notifications")
                   for p in ("audit", "debug", "info", "warn", "error", "critical", "sample")]
        return [self.topic, f"{self.topic}.host-1", *default]


class OsloDriver:
    """A novawatch notifications driver that sends through :class:`Nova` (oslo's Notifier), as Nova does."""

    def __init__(self, nova: Nova) -> None:
        self.nova = nova
        self.sent = 0

    def send(self, topic: str, notification: Any, body: bytes) -> None:
        self.nova.notify(topic, body)
        self.sent += 1


class Producer:
    """The cloud's activity in a daemon thread: compute actions (notified through oslo) and RPC casts.

    The simulation is used under ``lock``, so that :meth:`truth` can be read from another thread while
    the actions run. A producer stuck in oslo (retrying forever, as Nova's notifier does) is reported
    by :meth:`wait` rather than hanging the test run.
    """

    CAST_EVERY = 5

    def __init__(self, sim: Simulation, nova: Nova) -> None:
        self.sim, self.nova = sim, nova
        self.lock = threading.Lock()
        self.casts = 0
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def truth(self) -> Snapshot:
        with self.lock:
            return self.sim.truth()

    def run(self, actions: int) -> None:
        """Start ``actions`` actions in the background."""
        assert self._thread is None or not self._thread.is_alive()

        def work() -> None:
            try:
                for n in range(actions):
                    with self.lock:
                        self.sim.step()
                    if n % self.CAST_EVERY == 0:
                        self.casts += 1
                        self.nova.cast(self.casts)
            except BaseException as exc:  # the test asserts there was none
                self.error = exc

        self._thread = threading.Thread(target=work, name="nova-producer", daemon=True)
        self._thread.start()

    def wait(self, timeout: float) -> None:
        """Wait for the actions to finish; fails if oslo raised or is still stuck after ``timeout``."""
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"oslo's producer is stuck after {timeout:.0f}s"
        assert self.error is None, f"oslo's producer raised {self.error!r}"


def until(predicate: Callable[[], Any], what: str, timeout: float) -> Any:
    """Poll ``predicate`` (blocking) until truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(0.05)
