"""The outbox relay when several workers share one PostgreSQL database: one relay at a time, table order.

Every worker writes its actions' notifications into ``notification_outbox`` as a single worker does
(:class:`~novawatch.compute.outbox.Outbox`), with ids reserved by the committing transaction's update of the
shared counter row (:mod:`novawatch.compute.shared`), so id order is commit order. Only one worker relays at
a time: the one holding the PostgreSQL advisory lock :data:`~novawatch.compute.shared.RELAY_LOCK` on a
connection of its own. It publishes the table's rows in id order, waits for the bus's confirmation and
deletes them; the other workers' relays wait for the lock. When the relaying worker dies, its connection
goes, PostgreSQL releases the lock and another worker's relay takes over from the table, sending again what
was not deleted (at least once, with the same ``message_id``, as after a restart).

So the notifications of one instance leave in the order of its changes, whichever worker made them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from sqlalchemy import Connection, delete, func, select, text

from novawatch.compute import db
from novawatch.compute.outbox import BATCH, Outbox, Row
from novawatch.compute.shared import RELAY_LOCK

log = logging.getLogger("novawatch.compute.outbox")

#: Seconds between looks at the table when no local commit woke the relay (another worker's commits).
POLL_INTERVAL = 0.1


class SharedOutbox(Outbox):
    """An outbox whose relay runs in one worker at a time and reads the table, not its own memory."""

    def __init__(self, *args: Any, poll_interval: float = POLL_INTERVAL, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.poll_interval = poll_interval
        self._lock_conn: Connection | None = None
        self._handed_upto = 0  # highest id the publisher has but has not confirmed
        #: True while this worker's relay is the one relaying.
        self.relaying = False

    # --- the transaction: committed rows are in the table; the relay reads them from there ----------

    def committed(self) -> None:
        self._staged.clear()
        self._wake.set()

    # --- the relay ----------------------------------------------------------------------------------

    def start(self) -> SharedOutbox:
        with self.engine.connect() as conn:
            self.recovered = int(conn.scalar(select(func.count()).select_from(db.OutboxMessage)) or 0)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="novawatch-outbox-relay", daemon=True)
            self._thread.start()
        self._wake.set()
        return self

    def _lead(self) -> bool:
        """Try to become the relay (or check that this worker still is)."""
        if self.relaying and self._lock_conn is not None and not self._lock_conn.closed:
            return True
        self._drop_lock()
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": RELAY_LOCK}))
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._lock_conn = conn
        self.relaying = True
        self._handed_upto = 0  # a new leader publishes from the table's head
        log.info("this worker relays the outbox now", extra={"relay": "active"})
        return True

    def _drop_lock(self) -> None:
        self.relaying = False
        conn, self._lock_conn = self._lock_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": RELAY_LOCK})
            with contextlib.suppress(Exception):
                conn.close()

    def relay(self, timeout: float | None = None) -> int:
        """One round, if this worker is the relay: publish the table's oldest rows, wait for the bus, delete them."""
        with self._relaying:
            if not self._lead():
                return 0
            with self.engine.connect() as conn:
                batch = [Row(r.id, r.message_id, r.topic, r.priority, bytes(r.body)) for r in conn.execute(
                    select(db.OutboxMessage).order_by(db.OutboxMessage.id).limit(BATCH))]
            if not batch:
                return 0
            for row in batch:
                if row.id > self._handed_upto:
                    self.publisher.publish_body(row.topic, row.priority, row.body)
                    self._handed_upto = row.id
            self.publisher.flush(self.confirm_timeout if timeout is None else timeout)
            with self.engine.begin() as conn:
                conn.execute(delete(db.OutboxMessage).where(db.OutboxMessage.id.between(batch[0].id, batch[-1].id)))
            self.sent += len(batch)
            return len(batch)

    def _pause(self, delay: float) -> float | None:
        # other workers' commits do not wake this relay: look at the table every poll_interval
        return self.poll_interval if self.error is None else delay

    def _finished(self) -> bool:
        return True  # what is left in the table is another worker's relay's to send

    def _stopped_relaying(self) -> None:
        with self._relaying:
            self._drop_lock()

    @property
    def unsent(self) -> int:
        """Committed notifications (of every worker) the bus has not confirmed yet; -1 when the table cannot
        be read."""
        try:
            with self.engine.connect() as conn:
                return int(conn.scalar(select(func.count()).select_from(db.OutboxMessage)) or 0)
        except Exception:
            return -1

    def drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.unsent != 0:
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.02)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Relay what is in the table (if this worker is the relay, up to ``timeout``), then stop and let
        another worker's relay take over."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        return {**super().status(), "relay": "active" if self.relaying else "standby"}
