"""Several compute workers over one PostgreSQL database (``compute serve --workers N``).

Each worker keeps the cloud in memory (indexes, claims) between requests, so the workers agree on one
rule: **one writer at a time**. A worker takes a PostgreSQL advisory lock (:data:`WRITE_LOCK`) before an
action, catches up when another worker committed since (``compute_state.generation`` moved: the rows each
commit wrote are in ``compute_changes``, :mod:`novawatch.compute.catchup`), runs the action, commits it
with the generation bumped and its rows logged in the same transaction, and releases the lock. So an
action always sees every earlier commit (no double-booked host, no lost update), and a second action
on a busy instance meets the task state the first one left (Nova's 409).

Outbox ids come from ``compute_state.outbox_next``, taken under the same lock in the action's own
transaction: id order is commit order, and any committed outbox row has every lower id committed before
it. The relay (:mod:`novawatch.compute.shared_outbox`) relies on that.

A killed worker loses its connections, and PostgreSQL releases its locks with them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from sqlalchemy import Connection, Engine, delete, insert, select, text
from sqlalchemy.orm import Session

from novawatch.compute.db import ComputeChange
from novawatch.compute.errors import StorageUnavailable
from novawatch.compute.repository import Changes

log = logging.getLogger("novawatch.compute.shared")

#: Advisory lock keys (64-bit; "nova" + a number, unlikely to meet another application's).
WRITE_LOCK = 0x6E6F7661_00000001
RELAY_LOCK = 0x6E6F7661_00000002

#: Generations whose changes the log keeps, and how often (in generations) it is pruned.
KEEP = 4096
PRUNE_EVERY = 256


class SharedDatabase:
    """The write lock and the change counter that the workers of one PostgreSQL database share.

    The lock lives on a connection of its own (session-level advisory lock), so the service's session
    can commit and roll back freely while it is held. Thread use: :meth:`acquire` may run on any
    thread; one holder at a time per process (the caller serialises, e.g. with an ``asyncio.Lock``).
    """

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError(f"several workers need PostgreSQL (row and advisory locks); {engine.dialect.name} "
                             "has one writer at a time: run one worker")
        self.engine = engine
        self._conn: Connection | None = None
        self._peek: Connection | None = None  # reads' look at the generation: one round trip, no transaction
        self._guard = threading.Lock()
        #: True while this process holds the write lock.
        self.held = False

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()

    def acquire(self) -> None:
        """Wait for the write lock (every other worker's action to end); StorageUnavailable without a database."""
        with self._guard:
            try:
                self._connection().execute(text("SELECT pg_advisory_lock(:key)"), {"key": WRITE_LOCK})
            except Exception as exc:
                self._drop()
                raise StorageUnavailable(f"the database is unavailable ({type(exc).__name__}): the workers' "
                                         "write lock cannot be taken; retry when it is back") from exc
            self.held = True

    def release(self) -> None:
        """Let the next worker's action run. A lock that cannot be released is dropped with its connection."""
        with self._guard:
            if not self.held:
                return
            self.held = False
            try:
                self._connection().execute(text("SELECT pg_advisory_unlock(:key)"), {"key": WRITE_LOCK})
            except Exception:
                self._drop()  # closing the connection releases the lock

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The write lock for the block (startup work: seeding the cloud)."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def generation(self) -> int:
        """The generation of the last commit by any worker (a fresh read, outside any transaction).

        Holding the lock it reads on the lock's connection; otherwise on a connection of its own, so call
        it from one thread (the worker's event loop) only.
        """
        if self.held:
            return int(self._connection().scalar(_GENERATION) or 0)
        if self._peek is None or self._peek.closed or self._peek.invalidated:
            self._peek = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            return int(self._peek.scalar(_GENERATION) or 0)
        except Exception:
            peek, self._peek = self._peek, None
            with contextlib.suppress(Exception):
                peek.invalidate()
            raise

    def prepare(self) -> None:
        """Make sure the counter row exists and the outbox's next id is above every id in the table
        (a single-process run before may have written some). Takes the write lock."""
        with self.locked(), self.engine.begin() as conn:
            conn.execute(text("INSERT INTO compute_state (id, generation, outbox_next) VALUES (1, 0, 1) "
                              "ON CONFLICT (id) DO NOTHING"))
            conn.execute(text("UPDATE compute_state SET outbox_next = GREATEST(outbox_next, "
                              "(SELECT COALESCE(max(id), 0) + 1 FROM notification_outbox)) WHERE id = 1"))

    def advance(self, session: Session, count: int, changes: Changes | None = None) -> tuple[int, int]:
        """In the committing transaction: bump the generation, reserve ``count`` outbox ids and log ``changes``
        (the rows the action wrote) under the new generation, for the other workers' catch-up.

        Returns (the new generation, the first reserved id). Only the lock's holder may call it.
        """
        if not self.held:
            raise RuntimeError("a change committed without the workers' write lock (a request that was "
                               "not recognised as a write): refused, so that no worker's memory goes stale")
        row = session.execute(text(
            "UPDATE compute_state SET generation = generation + 1, outbox_next = outbox_next + :n "
            "WHERE id = 1 RETURNING generation, outbox_next - :n"), {"n": count}).one()
        generation = int(row[0])
        if changes:
            session.execute(insert(ComputeChange), [
                {"generation": generation, "table": table, "key": key, "instance_uuid": instance}
                for (table, key), instance in changes.items()])
        if generation % PRUNE_EVERY == 0:
            # a worker further behind than KEEP generations reloads in full instead
            keep_from = generation - KEEP
            session.execute(delete(ComputeChange).where(ComputeChange.generation < keep_from))
            session.execute(text("UPDATE compute_state SET changes_from = GREATEST(changes_from, :g) WHERE id = 1"),
                            {"g": keep_from})
        return generation, int(row[1])

    def changes_since(self, generation: int) -> tuple[int, Changes] | None:
        """(the current generation, every row changed after ``generation``), read holding the lock; None when
        the log no longer reaches back to it (pruned, or written before migration 0006)."""
        conn = self._connection()
        current, oldest = conn.execute(_STATE).one()
        if generation + 1 < int(oldest):
            return None
        rows = conn.execute(select(ComputeChange.table, ComputeChange.key, ComputeChange.instance_uuid)
                            .where(ComputeChange.generation > generation))
        return int(current), {(table, key): instance for table, key, instance in rows}

    def close(self) -> None:
        self.release()
        self._drop()
        if self._peek is not None:
            with contextlib.suppress(Exception):
                self._peek.close()
            self._peek = None


_GENERATION = text("SELECT generation FROM compute_state WHERE id = 1")
_STATE = text("SELECT generation, changes_from FROM compute_state WHERE id = 1")
