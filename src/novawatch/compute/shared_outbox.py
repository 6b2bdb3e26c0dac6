"""The outbox relay when several workers share one PostgreSQL database: one relay at a time, id order.

Every worker writes its actions' notifications into ``notification_outbox`` as a single worker does
(:class:`~novawatch.compute.outbox.Outbox`), with ids reserved by the committing transaction's update of the
shared counter row (:mod:`novawatch.compute.shared`), so id order is commit order, and once a row is
committed every row with a lower id has committed (or never will). Only one worker relays at a time: the
one holding the PostgreSQL advisory lock :data:`~novawatch.compute.shared.RELAY_LOCK` on a connection of
its own, which it also reads and deletes the rows with. The other workers try for the lock every
``poll_interval``.

The relaying worker keeps a cursor, the next id to send. Rows its own worker committed are sent from
memory when they are next; the rows before them (other workers' commits) are read from the table, from
the cursor up to its own lowest id; with nothing of its own waiting it looks at the table every
``poll_interval``. It waits for the bus's confirmation and deletes what was confirmed. When the relaying
worker dies, its connection goes, PostgreSQL releases the lock and another worker's relay takes over from
the table's head, sending again what was not deleted (at least once, with the same ``message_id``, as
after a restart).

So the notifications of one instance leave in the order of its changes, whichever worker made them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from typing import Any

from sqlalchemy import Connection, func, select, text

from novawatch.compute import db
from novawatch.compute.outbox import BATCH, Outbox, Row
from novawatch.compute.shared import RELAY_LOCK

log = logging.getLogger("novawatch.compute.outbox")

#: Seconds between looks at the table when no local commit woke the relay (another worker's commits), and
#: between a standby's tries for the relay lock.
POLL_INTERVAL = 0.1
#: Rows the bus confirmed are deleted in one statement once this many ids wait, or ``poll_interval`` after the
#: first of them was confirmed (a relaying worker that dies meanwhile has them sent again, as after a restart).
DELETE_EVERY = 256

_NO_END = 2**63 - 1
_READ = text("SELECT id, message_id, topic, priority, body FROM notification_outbox WHERE id >= :low AND id < :high "
             f"ORDER BY id LIMIT {BATCH}")
_TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)")
_DELETE = text("DELETE FROM notification_outbox WHERE id BETWEEN :first AND :last")


def _consecutive(rows: deque[Row]) -> list[Row]:
    """The first rows of ``rows`` whose ids follow each other (up to :data:`BATCH`): after them comes another
    worker's commit, which the table holds."""
    run: list[Row] = []
    for row in rows:
        if len(run) == BATCH or (run and row.id != run[-1].id + 1):
            break
        run.append(row)
    return run


class SharedOutbox(Outbox):
    """An outbox whose relay runs in one worker at a time: its own commits from memory, the others' from the table."""

    def __init__(self, *args: Any, poll_interval: float = POLL_INTERVAL, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.poll_interval = poll_interval
        self._conn: Connection | None = None  # the relay lock's connection (held, or tried with)
        self._mine: deque[Row] = deque()  # committed by this worker while it relays, not yet sent (id order)
        self._cursor: int | None = None  # the next id to send; None: from the table's head
        self._handed_upto = 0  # highest id the publisher has but has not confirmed
        self._confirmed: tuple[int, int] | None = None  # (first, last) id the bus confirmed, not yet deleted
        self._confirmed_at = 0.0
        #: True while this worker's relay is the one relaying.
        self.relaying = False
        #: Relay rounds that read the table (the others' rows, or a look for them) and that sent from memory only
        #: (in :meth:`status`: how much of the relay's work a worker's own commits spare it).
        self.table_reads = 0
        self.memory_rounds = 0

    # --- the transaction ----------------------------------------------------------------------------

    def committed(self) -> None:
        """The transaction committed: the relaying worker keeps its rows to send them without reading them
        back; a standby forgets them (they are in the table for whichever worker relays)."""
        if self._staged and self.relaying:
            with self._lock:
                self._mine.extend(self._staged)
            self._wake.set()
        self._staged.clear()

    # --- the relay ----------------------------------------------------------------------------------

    def start(self) -> SharedOutbox:
        with self.engine.connect() as conn:
            self.recovered = int(conn.scalar(select(func.count()).select_from(db.OutboxMessage)) or 0)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="novawatch-outbox-relay", daemon=True)
            self._thread.start()
        self._wake.set()
        return self

    def _lead(self) -> Connection | None:
        """The relay lock's connection when this worker relays (trying for the lock first when it does not)."""
        conn = self._conn
        if self.relaying and conn is not None and not conn.closed and not conn.invalidated:
            return conn
        if self.relaying:
            self._drop_lock()
            conn = None
        if conn is None or conn.closed or conn.invalidated:
            # kept between tries: a standby costs one statement per poll_interval, not a new connection
            conn = self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = bool(conn.scalar(_TRY_LOCK, {"key": RELAY_LOCK}))
        except Exception:
            self._drop_lock()
            raise
        if not got:
            return None
        with self._lock:
            self._mine.clear()  # what this worker committed while standby is in the table
        self._cursor = None  # a new leader publishes from the table's head
        self._handed_upto = 0
        self._confirmed = None
        self.relaying = True
        log.info("this worker relays the outbox now", extra={"relay": "active"})
        return conn

    def _drop_lock(self) -> None:
        self.relaying = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": RELAY_LOCK})
            with contextlib.suppress(Exception):
                conn.close()

    def relay(self, timeout: float | None = None) -> int:
        """One round, if this worker is the relay: publish the next rows in id order, wait for the bus,
        delete them. Returns how many were confirmed."""
        with self._relaying:
            conn = self._lead()
            if conn is None:
                return 0
            try:
                self._delete_confirmed(conn)
                batch = self._next_batch(conn)
                if not batch:
                    return 0
                for row in batch:
                    if row.id > self._handed_upto:
                        self.publisher.publish_body(row.topic, row.priority, row.body)
                        self._handed_upto = row.id
                self.publisher.flush(self.confirm_timeout if timeout is None else timeout)
                if self._confirmed is None:
                    self._confirmed, self._confirmed_at = (batch[0].id, batch[-1].id), time.monotonic()
                else:
                    self._confirmed = (self._confirmed[0], batch[-1].id)
                self._cursor = batch[-1].id + 1
                with self._lock:
                    while self._mine and self._mine[0].id <= batch[-1].id:
                        self._mine.popleft()
                self.sent += len(batch)
                self._delete_confirmed(conn)
            except Exception:
                if conn.invalidated or conn.closed:
                    self._drop_lock()  # the lock went with the connection: another worker may relay now
                raise
            return len(batch)

    def _delete_confirmed(self, conn: Connection, *, now: bool = False) -> None:
        """Delete the rows the bus confirmed, when enough of them wait or the first waited long enough.

        Every id between the first and the last was passed by the cursor: the range holds only sent rows.
        """
        if self._confirmed is None:
            return
        first, last = self._confirmed
        if now or last - first + 1 >= DELETE_EVERY or time.monotonic() - self._confirmed_at >= self.poll_interval:
            conn.execute(_DELETE, {"first": first, "last": last})
            self._confirmed = None

    def _next_batch(self, conn: Connection) -> list[Row]:
        """The rows from the cursor on, in id order: the table's below this worker's lowest unsent id (other
        workers' commits), then this worker's own from memory, as long as their ids follow each other."""
        with self._lock:
            while self._mine and self._cursor is not None and self._mine[0].id < self._cursor:
                self._mine.popleft()  # read from the table already (its commit was seen before committed())
            mine = _consecutive(self._mine)
        if mine and mine[0].id == self._cursor:
            self.memory_rounds += 1
            return mine
        # Every row below this worker's lowest unsent id was committed before it (the counter row's lock
        # orders the commits): what the table does not hold there was sent and deleted already.
        bounds = {"low": 0 if self._cursor is None else self._cursor, "high": mine[0].id if mine else _NO_END}
        rows = [Row(r[0], r[1], r[2], r[3], bytes(r[4])) for r in conn.execute(_READ, bounds)]
        self.table_reads += 1
        if mine and len(rows) < BATCH:
            rows.extend(mine[:BATCH - len(rows)])  # the table holds nothing else below them
        return rows

    def _pause(self, delay: float) -> float | None:
        # other workers' commits do not wake this relay: look at the table every poll_interval
        return self.poll_interval if self.error is None else delay

    def _finished(self) -> bool:
        return True  # what is left in the table is another worker's relay's to send

    def _stopped_relaying(self) -> None:
        with self._relaying:
            self._let_go()

    def _let_go(self) -> None:
        """Delete what the bus confirmed (else the next relay sends it again) and give the relay lock back."""
        if self.relaying and self._conn is not None:
            with contextlib.suppress(Exception):
                self._delete_confirmed(self._conn, now=True)
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
        if self._thread is None or not self._thread.is_alive():
            with self._relaying:
                self._let_go()  # (the relay thread did as it ended; an outbox never started did not)

    def status(self) -> dict[str, Any]:
        return {**super().status(), "relay": "active" if self.relaying else "standby", "table_reads": self.table_reads,
                "memory_rounds": self.memory_rounds}
