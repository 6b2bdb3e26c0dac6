"""The transactional outbox: a notification reaches the bus only once the change it reports is committed.

:class:`Outbox` is the notifier's driver in the served compute service. It keeps what an action emits;
:meth:`Outbox.stage` writes those notifications into ``notification_outbox`` inside the action's own
transaction; once that transaction has committed, a relay thread publishes the rows in order, waits until
the bus confirms them (:meth:`~novawatch.bus.base.Publisher.flush`: stored by the embedded bus, confirmed by
RabbitMQ) and deletes them. A rolled-back action's notifications are discarded with it.

A crash can only leave committed rows behind (published or not): :meth:`Outbox.start` queues them before
anything new, and they go out again with their ``message_id`` unchanged. Delivery is at least once;
consumers drop the copy they already had by message id.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from typing import Any, NamedTuple

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.orm import Session

from novawatch.bus.base import Publisher
from novawatch.compute import db
from novawatch.logs import Throttle
from novawatch.notifications.message import Notification

log = logging.getLogger("novawatch.compute.outbox")

#: Rows published per confirmation round.
BATCH = 1000
#: Seconds a warning about the same problem is held back after one was logged.
WARN_INTERVAL = 60.0


#: A notification emitted by the current transaction: (topic, priority, message id, encoded body).
Emitted = tuple[str, str, str, bytes]


class Row(NamedTuple):
    """One outbox row: what is published, and its place in the order."""

    id: int
    message_id: str
    topic: str
    priority: str
    body: bytes


class Outbox:
    """Notifications written with the change that caused them, relayed to ``publisher`` after commit.

    Thread use: :meth:`send`, :meth:`stage`, :meth:`committed` and :meth:`discard` are called by the one
    thread that runs the compute service's actions; the relay runs on its own thread.
    """

    def __init__(self, engine: Engine, publisher: Publisher, *, confirm_timeout: float = 30.0,
                 retry_interval: float = 0.5, retry_max: float = 10.0) -> None:
        self.engine = engine
        self.publisher = publisher
        self.confirm_timeout = confirm_timeout
        self.retry_interval = retry_interval
        self.retry_max = retry_max
        self._pending: list[Emitted] = []  # emitted, not yet in a transaction
        self._staged: list[Row] = []  # written into the current transaction, not known to be committed
        self._ready: deque[Row] = deque()  # committed, waiting for the bus's confirmation
        self._handed = 0  # rows at the head of _ready the publisher already has (not to be sent twice)
        self._next_id = 1
        self._lock = threading.Lock()
        self._relaying = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._warn = Throttle(WARN_INTERVAL)
        #: Notifications the bus confirmed (and the outbox then deleted) since start.
        self.sent = 0
        #: Rows found in the table at start: what a previous run left unsent (or unconfirmed).
        self.recovered = 0
        #: The relay's last failure, None once it succeeds again.
        self.error: str | None = None

    # --- the notifier's driver ----------------------------------------------------------------------

    def send(self, topic: str, notification: Notification[Any], body: bytes) -> None:
        """Keep a notification until the transaction it belongs to commits (the notifier calls this)."""
        self._pending.append((topic, notification.priority, str(notification.message_id or ""), body))

    @property
    def pending(self) -> bool:
        """True when notifications were emitted or staged since the last commit."""
        return bool(self._pending or self._staged)

    # --- the transaction ----------------------------------------------------------------------------

    @property
    def emitted(self) -> list[Emitted]:
        """What was emitted since the last commit and not yet staged, in order."""
        return self._pending

    def staged_as(self, first_id: int) -> None:
        """What was emitted since the last commit was written into the transaction by the caller (the workers'
        commit statement), with ids from ``first_id`` on in order: count it as staged."""
        self._staged.extend(Row(first_id + i, mid, topic, priority, body)
                            for i, (topic, priority, mid, body) in enumerate(self._pending))
        self._next_id = first_id + len(self._pending)
        self._pending.clear()

    def stage(self, session: Session) -> None:
        """Insert what was emitted since the last commit into ``session``'s transaction (before its commit)."""
        if not self._pending:
            return
        rows = [Row(self._next_id + i, mid, topic, priority, body)
                for i, (topic, priority, mid, body) in enumerate(self._pending)]
        session.execute(insert(db.OutboxMessage), [row._asdict() for row in rows])
        self._next_id += len(rows)
        self._staged.extend(rows)
        self._pending.clear()

    def committed(self) -> None:
        """The transaction committed: its notifications may now go to the bus."""
        if not self._staged:
            return
        with self._lock:
            self._ready.extend(self._staged)
        self._staged.clear()
        self._wake.set()

    def discard(self) -> None:
        """The transaction was rolled back: forget what it emitted."""
        self._pending.clear()
        self._staged.clear()

    # --- the relay ----------------------------------------------------------------------------------

    def start(self) -> Outbox:
        """Queue what a previous run left in the table (before anything new) and start the relay thread."""
        with Session(self.engine) as session:
            left = [Row(r.id, r.message_id, r.topic, r.priority, bytes(r.body))
                    for r in session.scalars(select(db.OutboxMessage).order_by(db.OutboxMessage.id))]
            top = session.scalar(select(func.max(db.OutboxMessage.id)))
        self._next_id = max(self._next_id, (top or 0) + 1)
        if left:
            self.recovered = len(left)
            log.info("the outbox holds %d notifications from before the restart: sending them first", len(left),
                     extra={"recovered": len(left)})
            with self._lock:
                self._ready.extendleft(reversed(left))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="novawatch-outbox-relay", daemon=True)
            self._thread.start()
        self._wake.set()
        return self

    @property
    def unsent(self) -> int:
        """Committed notifications the bus has not confirmed yet."""
        return len(self._ready)

    def relay(self, timeout: float | None = None) -> int:
        """One round: publish the oldest committed rows, wait for the bus to confirm them, delete them.

        Returns how many were confirmed (0: nothing was waiting). Raises when the bus or the database
        fails; the rows stay, and the next round resumes without publishing again what the publisher has.
        """
        with self._relaying:
            with self._lock:
                batch = [self._ready[i] for i in range(min(BATCH, len(self._ready)))]
            if not batch:
                return 0
            for row in batch[self._handed:]:
                self.publisher.publish_body(row.topic, row.priority, row.body)
                self._handed += 1
            self.publisher.flush(self.confirm_timeout if timeout is None else timeout)
            with self.engine.begin() as conn:
                conn.execute(delete(db.OutboxMessage).where(db.OutboxMessage.id.between(batch[0].id, batch[-1].id)))
            with self._lock:
                for _ in batch:
                    self._ready.popleft()
            self._handed = 0
            self.sent += len(batch)
            return len(batch)

    def _run(self) -> None:
        delay = self.retry_interval
        try:
            while True:
                self._wake.wait(self._pause(delay))
                self._wake.clear()
                try:
                    while self.relay():
                        pass
                except Exception as exc:
                    self.error = f"{type(exc).__name__}: {exc}"
                    unsent = self.unsent
                    self._warn.log(log, logging.WARNING, "relay",
                                   "%d committed notifications wait for the bus (%s); retrying in %.1fs",
                                   unsent, self.error, delay, extra={"unsent": unsent, "error": self.error})
                    if self._closing:
                        return
                    delay = min(self.retry_max, delay * 2)
                    continue
                self.error = None
                delay = self.retry_interval
                if self._closing and self._finished():
                    return
        finally:
            self._stopped_relaying()

    # The relay loop's three choices, which the workers' shared outbox makes otherwise.

    def _pause(self, delay: float) -> float | None:
        """How long the relay sleeps until woken: until the next commit, or ``delay`` while something waits."""
        return None if not self._ready and not self._closing else delay

    def _finished(self) -> bool:
        """Closing: whether the relay may stop (everything confirmed)."""
        return not self._ready

    def _stopped_relaying(self) -> None:
        """The relay thread ends."""

    def drain(self, timeout: float) -> bool:
        """Wait until every committed notification is confirmed; False when ``timeout`` ran out first."""
        deadline = time.monotonic() + timeout
        while self._ready:
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Relay what is committed (up to ``timeout``) and stop; what is left goes out on the next start."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with contextlib.suppress(Exception):
            if self._ready:
                log.warning("stopping with %d committed notifications not confirmed by the bus: they are kept "
                            "in the outbox and sent on the next start", self.unsent, extra={"unsent": self.unsent})

    def status(self) -> dict[str, Any]:
        """For health: unsent (committed, not confirmed), sent, recovered at start, the last relay error."""
        return {"unsent": self.unsent, "sent": self.sent, "recovered": self.recovered, "error": self.error}
