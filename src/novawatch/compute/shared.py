"""Several compute workers over one PostgreSQL database (``compute serve --workers N``).

Each worker keeps the cloud in memory (indexes, claims) between requests, so the workers agree on one
rule: an action runs on the newest state of everything it reads. An action that may touch anything takes
the PostgreSQL advisory lock :data:`WRITE_LOCK` exclusively; an action on one instance only takes that
instance's lock and :data:`WRITE_LOCK` shared (such actions on different instances run side by side); an
action on one instance that also writes its host's usage (a delete) takes the instance's lock, then its
host's (:data:`HOST_LOCKS`), then :data:`WRITE_LOCK` shared; a volume attach or swap takes the
instance's lock, then the locks of the volumes it names (:data:`VOLUME_LOCKS`: a volume any instance
could reserve), then :data:`WRITE_LOCK` shared; a boot takes the lock of the host the
scheduler picks, then :data:`WRITE_LOCK` shared (:mod:`novawatch.compute.host_guard`). Every request
takes its locks in that one order (instance, volumes, hosts, write lock), so two requests never wait for
each other in a circle. Network addresses come from a sequence (:meth:`SharedDatabase.next_address`), so
boots on different hosts never share one.
Holding them, a worker catches up when another worker committed since (``compute_state.generation``
moved: the rows each commit wrote are in ``compute_changes``, :mod:`novawatch.compute.catchup`), runs the
action and commits it with the generation bumped and its rows logged in the same transaction. So an
action always sees every earlier commit it depends on (no double-booked host, no lost update), and a
second action on a busy instance meets the task state the first one left (Nova's 409).

Outbox ids come from ``compute_state.outbox_next``, taken by the ``UPDATE`` of that row in the action's
own transaction (its row lock is held until the commit): id order is commit order, and any committed
outbox row has every lower id committed before it. The relay (:mod:`novawatch.compute.shared_outbox`)
relies on that.

A killed worker loses its connections, and PostgreSQL releases its locks with them. A worker told to stop
(:meth:`SharedDatabase.stop_waiting`) cancels the lock waits of its requests, which are then answered at
once (nothing was changed), instead of holding its shutdown up until the locks come free.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Connection, Engine, delete, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from novawatch.compute.db import ComputeChange, InstanceInfoCache
from novawatch.compute.errors import StorageUnavailable
from novawatch.compute.host_guard import GUARD
from novawatch.compute.network import highest_address
from novawatch.compute.outbox import Emitted
from novawatch.compute.repository import COUNTED_TABLES, Changes

log = logging.getLogger("novawatch.compute.shared")

_T = TypeVar("_T")

#: Advisory lock keys (64-bit; "nova" + a number, unlikely to meet another application's).
WRITE_LOCK = 0x6E6F7661_00000001
RELAY_LOCK = 0x6E6F7661_00000002

#: How long a request waits for the locks before it is answered 503 (a stuck holder must not hold up a
#: worker forever: its shutdown waits for the waiting thread).
LOCK_TIMEOUT_MS = 60_000

#: Tables whose ids a worker reserves a block at a time (each action writes some): their ids follow creation
#: order within a worker, not across workers (actions are listed by start time first).
BLOCK_TABLES = frozenset({"instance_actions", "instance_actions_events", "instance_faults"})
ID_BLOCK = 64

#: The sequence of network address numbers (10.x.y.z, fd00::n) that boots and interface attachments take.
ADDRESSES = "novawatch_address"

#: Generations whose changes the log keeps, and how often (in generations) it is pruned.
KEEP = 4096
PRUNE_EVERY = 256


#: The class key of the per-instance advisory locks (the two-int key space, apart from the locks above).
INSTANCE_LOCKS = 0x6E6F7661
#: The class key of the per-host advisory locks: the host whose node usage an action writes.
HOST_LOCKS = 0x6E6F7668
#: The class key of the per-volume advisory locks: a volume an attach or swap reserves (any instance could).
VOLUME_LOCKS = 0x6E6F7676

#: The ``application_name`` of a worker's lock connections (``pg_stat_activity`` shows which worker waits).
APPLICATION = "novawatch-compute-worker-{pid}"


def lock_key(name: str) -> int:
    """The advisory lock key of an instance uuid, a host or a volume id within its class (:data:`INSTANCE_LOCKS`,
    :data:`HOST_LOCKS`, :data:`VOLUME_LOCKS`): 32 bits, so two names may share one, which only serialises them."""
    return zlib.crc32(name.encode()) - 2**31


@dataclass
class Hold:
    """The locks one request holds, on a connection of its own."""

    conn: Connection
    exclusive: bool
    instance: str | None = None
    host: str | None = None


class SharedDatabase:
    """The write lock, the change counter and the id sequences that the workers of one PostgreSQL database share.

    The write lock is taken **exclusively** by an action that may touch anything (a rename, a service), or
    **shared**: with the lock of the host a boot is scheduled to, or with the lock of one instance by an
    action that touches that instance only (power, pause, metadata...), and with its hosts' locks too by
    one that also writes their usage (a delete, a move): such actions on different instances (and hosts)
    run at the same time, in any worker. Each hold lives on a connection of its own (session-level advisory
    locks), so the service's session commits freely while it is held, and a worker may hold several (one
    per request in flight).
    Thread use: :meth:`acquire` may run on any thread; :meth:`generation`, :meth:`changes_since` on one.
    """

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError(f"several workers need PostgreSQL (row and advisory locks); {engine.dialect.name} "
                             "has one writer at a time: run one worker")
        self.engine = engine
        self._peek: Connection | None = None  # the look at the generation and the change log: no transaction
        self._guard = threading.Lock()
        self._holds = 0
        self._idle: list[Connection] = []  # lock connections kept between holds (no pool checkout and reset)
        self._blocks: dict[str, tuple[int, int]] = {}  # table -> (next id, end) of this worker's reserved block
        self._stopping = False
        self._waiting: set[Any] = set()  # the DB-API connections of requests waiting for their locks now

    @property
    def held(self) -> bool:
        """True while a request of this process holds the write lock (either way)."""
        return self._holds > 0

    def acquire(self, instance: str | None = None, *, hosts: Collection[str] = (), volumes: Collection[str] = (),
                exclusive: bool = True) -> Hold:
        """Wait for the write lock: exclusive (every other worker's action ends first), or shared, after the
        lock of ``instance``, then of ``volumes`` (in id order), then of ``hosts`` (in name order) when they
        are named.
        StorageUnavailable without a database, after :data:`LOCK_TIMEOUT_MS` of waiting, or when the worker
        is stopping."""
        how = "pg_advisory_lock" if exclusive else "pg_advisory_lock_shared"
        # one round trip, in the one order every request follows (PostgreSQL evaluates the select list in
        # order): instance, volumes, hosts, write lock. A request waiting for a busy instance, volume or host
        # holds nothing that would hold up an exclusive writer.
        calls, values = [], {"key": WRITE_LOCK}
        if instance is not None:
            calls.append("pg_advisory_lock(:cls, :instance)")
            values |= {"cls": INSTANCE_LOCKS, "instance": lock_key(instance)}
        for n, volume in enumerate(sorted(set(volumes))):
            calls.append(f"pg_advisory_lock(:vcls, :volume{n})")
            values |= {"vcls": VOLUME_LOCKS, f"volume{n}": lock_key(volume)}
        names = sorted(set(hosts))
        for n, name in enumerate(names):
            calls.append(f"pg_advisory_lock(:hcls, :host{n})")
            values |= {"hcls": HOST_LOCKS, f"host{n}": lock_key(name)}
        host = ", ".join(names) or None  # for messages
        statement = text(f"SELECT {', '.join([*calls, f'{how}(:key)'])}")
        with self._guard:
            kept = self._idle.pop() if self._idle else None
        if kept is not None:
            try:
                self._wait(kept, statement, values)
                return self._held(kept, exclusive, instance, host)
            except Exception as exc:
                _discard(kept)
                if self._stopping or _waited_too_long(exc):
                    raise self._gave_up(exc, instance, host) from exc
                # a connection kept from before the database restarted: try once more on a new one
        try:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except Exception as exc:
            raise _unavailable(exc) from exc
        try:
            conn.execute(text(f"SET lock_timeout = {LOCK_TIMEOUT_MS}; "
                              f"SET application_name = '{APPLICATION.format(pid=os.getpid())}'"))
            self._wait(conn, statement, values)
        except Exception as exc:
            _discard(conn)
            if self._stopping or _waited_too_long(exc):
                raise self._gave_up(exc, instance, host) from exc
            raise _unavailable(exc) from exc
        return self._held(conn, exclusive, instance, host)

    def _wait(self, conn: Connection, statement: Any, values: dict[str, Any]) -> None:
        """Run the locking statement, cancellable by :meth:`stop_waiting` meanwhile."""
        raw = conn.connection.dbapi_connection
        with self._guard:
            if self._stopping:
                raise StorageUnavailable(_STOPPING)
            self._waiting.add(raw)
        try:
            conn.execute(statement, values)
        finally:
            with self._guard:
                self._waiting.discard(raw)

    def _gave_up(self, exc: Exception, instance: str | None, host: str | None) -> StorageUnavailable:
        if isinstance(exc, StorageUnavailable):
            return exc
        if _waited_too_long(exc):
            return _too_long(instance, host)
        return StorageUnavailable(_STOPPING)  # the wait was cancelled by stop_waiting

    def stop_waiting(self, patience: float = 10.0) -> None:
        """The worker is stopping: cancel the lock waits of its requests (they raise StorageUnavailable, and
        are answered 503 with nothing changed) and let no new request wait. A request holding its locks
        already runs to its end. Blocks until no request waits (at most ``patience`` seconds); thread-safe,
        but not for a signal handler (it takes a lock): call it from a thread of its own."""
        with self._guard:
            self._stopping = True
        deadline = time.monotonic() + patience
        while True:
            with self._guard:
                waiting = list(self._waiting)
            if not waiting or time.monotonic() > deadline:
                return
            for raw in waiting:
                # a cancel that reaches the server before the statement does is lost: hence the loop
                with contextlib.suppress(Exception):
                    raw.cancel_safe(timeout=5.0)
            time.sleep(0.05)

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop_waiting` was called."""
        return self._stopping

    def _held(self, conn: Connection, exclusive: bool, instance: str | None, host: str | None) -> Hold:
        with self._guard:
            self._holds += 1
        return Hold(conn, exclusive, instance, host)

    def release(self, hold: Hold) -> None:
        """Let the next writers run. Locks that cannot be released go with their connection."""
        with self._guard:
            self._holds -= 1
        try:
            hold.conn.execute(text("SELECT pg_advisory_unlock_all()"))
        except Exception:
            _discard(hold.conn)  # closing the connection releases the locks
            return
        with self._guard:
            self._idle.append(hold.conn)

    @contextlib.contextmanager
    def locked(self, instance: str | None = None, *, exclusive: bool = True) -> Iterator[Hold]:
        """The write lock for the block (exclusive by default: startup work such as seeding the cloud)."""
        hold = self.acquire(instance, exclusive=exclusive)
        try:
            yield hold
        finally:
            self.release(hold)

    def generation(self) -> int:
        """The generation of the last commit by any worker (a fresh read, outside any transaction)."""
        row = self._look(lambda driver: driver.execute(_GENERATION).fetchone())
        return int(row[0]) if row else 0

    def _look(self, read: Callable[[Any], _T]) -> _T:
        """``read(driver connection)`` on the look's connection: the driver's own cursor, for these small
        statements run before every action and every read (a third of SQLAlchemy's cost per statement)."""
        if self._peek is None or self._peek.closed or self._peek.invalidated:
            self._peek = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            return read(self._peek.connection.driver_connection)
        except Exception:
            peek, self._peek = self._peek, None
            with contextlib.suppress(Exception):
                peek.invalidate()
            raise

    def prepare(self) -> None:
        """Make sure the counter row exists, the outbox's next id is above every id in the table and each
        table's id sequence above its ids (a single-process run before may have written some). Takes the
        write lock."""
        with self.locked(), self.engine.begin() as conn:
            conn.execute(text("INSERT INTO compute_state (id, generation, outbox_next) VALUES (1, 0, 1) "
                              "ON CONFLICT (id) DO NOTHING"))
            conn.execute(text("UPDATE compute_state SET outbox_next = GREATEST(outbox_next, "
                              "(SELECT COALESCE(max(id), 0) + 1 FROM notification_outbox)) WHERE id = 1"))
            for table in COUNTED_TABLES:
                sequence = _sequence(table)
                step = ID_BLOCK if table in BLOCK_TABLES else 1
                conn.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {sequence} MINVALUE 0 START 1"))
                conn.execute(text(f"ALTER SEQUENCE {sequence} INCREMENT BY {step}"))
                # under the exclusive lock no worker takes ids: the sequence cannot move meanwhile
                conn.execute(text(f"SELECT setval('{sequence}', GREATEST((SELECT last_value FROM {sequence}), "
                                  f"(SELECT COALESCE(max(id), 0) FROM {table})))"))
            # network addresses: numbered after every address a port holds (a single-process run may have
            # handed some out by its own counter)
            used = highest_address(conn.execute(select(InstanceInfoCache.network_info)).scalars())
            conn.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {ADDRESSES} MINVALUE 0 START 1"))
            conn.execute(text(f"SELECT setval('{ADDRESSES}', GREATEST((SELECT last_value FROM {ADDRESSES}), :used))"),
                         {"used": used})

    def next_address(self, session: Session) -> int:
        """The number of a new port's addresses that no other worker gets (from a sequence: one round trip)."""
        return int(session.scalar(text(f"SELECT nextval('{ADDRESSES}')")) or 0)

    def next_id(self, session: Session, table: str) -> int:
        """A new id of ``table`` that no other worker gets: from its sequence (one round trip), or for the
        tables of :data:`BLOCK_TABLES` from a block of :data:`ID_BLOCK` ids this worker reserved."""
        block = self._blocks.get(table)
        if block is not None and block[0] < block[1]:
            self._blocks[table] = (block[0] + 1, block[1])
            return block[0]
        top = int(session.scalar(text(f"SELECT nextval('{_sequence(table)}')")) or 0)
        if table not in BLOCK_TABLES:
            return top
        self._blocks[table] = (top - ID_BLOCK + 2, top + 1)  # the sequence moved by a whole block
        return top - ID_BLOCK + 1

    def advance(self, session: Session, changes: Changes | None = None,
                notifications: Sequence[Emitted] = ()) -> tuple[int, int]:
        """In the committing transaction: bump the generation, log ``changes`` (the rows the action wrote)
        under the new generation for the other workers' catch-up, and write ``notifications`` (topic,
        priority, message id, body) into the outbox with ids reserved from the shared counter.

        Returns (the new generation, the first reserved id: the notifications have it and the ids after
        it, in order). Only the lock's holder may call it.
        """
        if not self.held:
            raise RuntimeError("a change committed without the workers' write lock (a request that was "
                               "not recognised as a write): refused, so that no worker's memory goes stale")
        guard = GUARD.get()
        if guard is not None and guard.probe:
            # a probe holds no lock of its own: another request of this worker holding one must not let it through
            raise RuntimeError("a boot or move probe (run without locks, only to learn its host) reached its "
                               "commit: refused; the action must check the host guard before it changes anything")
        # one statement: the counter row (its row lock orders concurrent commits), the change log, the outbox
        rows = list(changes.items()) if changes else []
        values = {"n": len(notifications), "tables": [t for (t, _), _ in rows], "keys": [k for (_, k), _ in rows],
                  "instances": [i for _, i in rows], "topics": [n[0] for n in notifications],
                  "priorities": [n[1] for n in notifications], "mids": [n[2] for n in notifications],
                  "bodies": [n[3] for n in notifications]}
        # psycopg's own cursor, in the session's transaction: once per action, a third less CPU than through
        # the session; its errors are raised as SQLAlchemy's (the commit maps those to 400 or 503)
        driver = session.connection().connection.driver_connection
        assert driver is not None  # a connection in use has its driver's
        try:
            row = driver.execute(_ADVANCE, values).fetchone()
        except psycopg.Error as exc:
            raise sa_exc.DBAPIError.instance(_ADVANCE, values, exc, psycopg.Error) from exc
        if row is None:
            raise RuntimeError("compute_state has no row: SharedDatabase.prepare() was not run")
        generation = int(row[0])
        if generation % PRUNE_EVERY == 0:
            # a worker further behind than KEEP generations reloads in full instead
            keep_from = generation - KEEP
            session.execute(delete(ComputeChange).where(ComputeChange.generation < keep_from))
            session.execute(text("UPDATE compute_state SET changes_from = GREATEST(changes_from, :g) WHERE id = 1"),
                            {"g": keep_from})
        return generation, int(row[1])

    def changes_since(self, generation: int, skip: Collection[int] = ()) -> tuple[int, Changes | None]:
        """The current generation and every row changed after ``generation`` by commits not in ``skip`` (None
        when the log no longer reaches back to it: pruned, or written before migration 0006). One round trip."""

        def read(conn: Any) -> tuple[int, Changes | None]:
            rows = conn.execute(_CHANGES, {"since": generation, "skip": list(skip)}).fetchall()
            current, oldest = int(rows[0][0]), int(rows[0][1])
            if generation + 1 < oldest:
                return current, None
            return current, {(table, key): instance for _, _, table, key, instance in rows if table is not None}

        return self._look(read)

    def close(self) -> None:
        with self._guard:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()
        if self._peek is not None:
            with contextlib.suppress(Exception):
                self._peek.close()
            self._peek = None


def _sequence(table: str) -> str:
    return f"novawatch_{table}_id"


def _unavailable(exc: Exception) -> StorageUnavailable:
    return StorageUnavailable(f"the database is unavailable ({type(exc).__name__}): the workers' write lock "
                              "cannot be taken; retry when it is back")


def _waited_too_long(exc: Exception) -> bool:
    cause = getattr(exc, "orig", None)
    return getattr(cause, "sqlstate", None) == "55P03"  # lock_not_available: lock_timeout ran out


def _too_long(instance: str | None, host: str | None = None) -> StorageUnavailable:
    what = f"instance {instance}" if instance is not None else "the cloud"
    if host is not None:
        what += f" and host {host}"
    return StorageUnavailable(f"waited {LOCK_TIMEOUT_MS // 1000} s for the workers' lock on {what}: another "
                              "action holds it; nothing was changed, retry later")


_STOPPING = ("this compute worker is stopping: the request did not run and nothing was changed; retry it "
             "(the other workers answer)")


def _discard(conn: Connection) -> None:
    with contextlib.suppress(Exception):
        conn.invalidate()
    with contextlib.suppress(Exception):
        conn.close()


# the look's statements go to the driver (psycopg's placeholders)
_GENERATION = "SELECT generation FROM compute_state WHERE id = 1"
_ADVANCE = (
    "WITH s AS (UPDATE compute_state SET generation = generation + 1, outbox_next = outbox_next + %(n)s "
    "WHERE id = 1 RETURNING generation, outbox_next - %(n)s AS first), "
    "c AS (INSERT INTO compute_changes (generation, tbl, key, instance_uuid) SELECT s.generation, v.tbl, v.key, v.inst "
    "FROM s, unnest(CAST(%(tables)s AS text[]), CAST(%(keys)s AS text[]), CAST(%(instances)s AS text[])) "
    "AS v(tbl, key, inst)), "
    "o AS (INSERT INTO notification_outbox (id, message_id, topic, priority, body) "
    "SELECT s.first + v.n - 1, v.mid, v.topic, v.priority, v.body FROM s, unnest(CAST(%(mids)s AS text[]), "
    "CAST(%(topics)s AS text[]), CAST(%(priorities)s AS text[]), CAST(%(bodies)s AS bytea[])) "
    "WITH ORDINALITY AS v(mid, topic, priority, body, n)) "
    "SELECT generation, first FROM s")
_CHANGES = (
    "SELECT s.generation, s.changes_from, c.tbl, c.key, c.instance_uuid FROM compute_state s "
    "LEFT JOIN compute_changes c ON c.generation > %(since)s AND c.generation <= s.generation "
    "AND NOT c.generation = ANY(CAST(%(skip)s AS bigint[])) WHERE s.id = 1")
