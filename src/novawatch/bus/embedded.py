"""``embedded://DIR``: the default bus, a durable queue in a SQLite database that processes share.

One file, ``DIR/bus.sqlite3``, in WAL mode: publishers append rows (one committed transaction per
notification, so a notification is durable when ``publish`` returns); each consumer group keeps a cursor,
the highest sequence number below which it acknowledged everything. A restarted consumer resumes from its
cursor, so what was delivered but not acknowledged is delivered again (at-least-once; consumers dedup by
``message_id``). A kill -9 of either side loses nothing committed: WAL with ``synchronous=NORMAL`` is
durable against process crashes (``?synchronous=full`` also against power loss).

Bounded on disk: rows every group has acknowledged are deleted, and at most ``max_messages`` are kept when
a group stops consuming (the oldest go; that group logs how many it missed, and its model must audit).
Only one subscriber per group consumes at a time (a lock file); another one waits for the lock.
Publishers wake waiting subscribers with a datagram on an abstract Unix socket, so latency does not depend
on the polling interval (which remains the fallback).

Query options: ``max_messages`` (1000000), ``max_dead`` (10000), ``synchronous`` (normal|full),
``poll_interval`` seconds (0.05), ``batch`` rows per read (256).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from novawatch.bus.base import Backlog, BusError, Decoder, Delivery, Publisher, Subscriber
from novawatch.bus.url import BusURL

log = logging.getLogger("novawatch.bus.embedded")

DB_NAME = "bus.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, topics TEXT NOT NULL, acked INTEGER NOT NULL,
                                   fetched INTEGER NOT NULL, seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, grp TEXT NOT NULL, seq INTEGER,
                                         topic TEXT NOT NULL, body BLOB NOT NULL, reason TEXT NOT NULL,
                                         at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

_TRIM_EVERY = 1000  # publishes between two retention passes


def _connect(directory: Path, synchronous: str) -> sqlite3.Connection:
    directory.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(directory / DB_NAME, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if synchronous.lower() == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA journal_size_limit=67108864")  # the WAL shrinks back after a burst
    with _immediate(conn):
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
    return conn


@contextlib.contextmanager
def _immediate(conn: sqlite3.Connection) -> Any:
    """A write transaction taken up front, so concurrent writers queue on busy_timeout instead of failing."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _wake_address(directory: Path, group: str) -> bytes:
    digest = hashlib.sha1(f"{directory.resolve()}\0{group}".encode()).hexdigest()[:24]
    return b"\0novawatch-bus-" + digest.encode()


def _directory(url: BusURL) -> Path:
    if not url.path:
        raise BusError("embedded:// needs a directory, e.g. embedded:///var/lib/novawatch/bus")
    return Path(url.path).expanduser()


class EmbeddedPublisher(Publisher):
    """Appends notifications to ``DIR/bus.sqlite3``; thread-safe; durable when ``publish`` returns."""

    def __init__(self, url: BusURL, **options: Any) -> None:
        opts = {**url.options, **options}
        self.directory = _directory(url)
        self.max_messages = int(opts.get("max_messages", 1_000_000))
        self.max_dead = int(opts.get("max_dead", 10_000))
        self._conn = _connect(self.directory, str(opts.get("synchronous", "normal")))
        self._lock = threading.Lock()
        self._since_trim = 0
        self._wake = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._wake.setblocking(False)
        self._targets: dict[str, tuple[frozenset[str], bytes]] = {}
        self._targets_at = 0.0
        self._closed = False

    def publish_body(self, topic: str, priority: str, body: bytes) -> None:
        with self._lock:
            if self._closed:
                raise BusError("publisher is closed")
            self._conn.execute("INSERT INTO messages (topic, body) VALUES (?, ?)", (topic, body))
            self._since_trim += 1
            if self._since_trim >= _TRIM_EVERY:
                self._since_trim = 0
                self.trim()
            self._poke(topic)

    def _poke(self, topic: str) -> None:
        now = time.monotonic()
        if now - self._targets_at > 1.0:  # groups come and go rarely; re-read them once a second
            self._targets_at = now
            rows = self._conn.execute("SELECT name, topics FROM groups").fetchall()
            self._targets = {
                name: (frozenset(topics.split(",")), _wake_address(self.directory, name)) for name, topics in rows
            }
        for topics, address in self._targets.values():
            if topic in topics:
                # nobody listening, or a full buffer (it is already awake): the poll covers both
                with contextlib.suppress(OSError):
                    self._wake.sendto(b"!", address)

    def trim(self) -> None:
        """Delete what every group acknowledged, and the oldest rows beyond ``max_messages``."""
        conn = self._conn
        with _immediate(conn):
            (low,) = conn.execute("SELECT min(acked) FROM groups").fetchone()
            (high,) = conn.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()
            conn.execute("DELETE FROM messages WHERE seq <= ?", (high if low is None else low,))
            cap = high - self.max_messages
            if low is not None and cap > low:
                conn.execute("DELETE FROM messages WHERE seq <= ?", (cap,))
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('trimmed', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                    (cap,),
                )
                log.warning("embedded bus over %d messages: dropped unconsumed ones up to #%d", self.max_messages, cap)
            conn.execute(
                "DELETE FROM dead_letters WHERE id <= (SELECT max(id) FROM dead_letters) - ?", (self.max_dead,)
            )

    def flush(self, timeout: float | None = None) -> None:
        return None  # every publish is its own committed transaction

    def close(self, timeout: float | None = 30.0) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()
                self._wake.close()


class _EmbeddedDelivery(Delivery):
    __slots__ = ("_seq", "_subscriber")

    def __init__(self, subscriber: EmbeddedSubscriber, seq: int, topic: str, body: bytes, redelivered: bool) -> None:
        super().__init__(body, topic, subscriber.decoder, redelivered, seq)
        self._subscriber = subscriber
        self._seq = seq

    async def _ack(self) -> None:
        self._subscriber.settle(self._seq)

    async def _dead_letter(self, reason: str) -> None:
        self._subscriber.dead_letter(self, self._seq, reason)


class EmbeddedSubscriber(Subscriber):
    """Consumes ``DIR/bus.sqlite3`` for one consumer group.

    SQLite is called on the event loop itself: reads of a local WAL database take microseconds, less than
    handing them to a thread would cost.
    """

    def __init__(
        self, url: BusURL, *, group: str, topics: Sequence[str], decoder: Decoder | None = None, **options: Any
    ) -> None:
        super().__init__(group, topics, decoder)
        opts = {**url.options, **options}
        self.directory = _directory(url)
        self.synchronous = str(opts.get("synchronous", "normal"))
        self.poll_interval = float(opts.get("poll_interval", 0.05))
        self.batch = int(opts.get("batch", 256))
        self.commit_every = int(opts.get("commit_every", 256))
        self.lost = 0  #: notifications dropped by the size bound before this group read them
        self._conn: sqlite3.Connection | None = None
        self._lock_file: int | None = None
        self._wake: socket.socket | None = None
        self._inflight: dict[int, None] = {}  # insertion-ordered: the oldest unacknowledged is first
        self._fetched = 0
        self._committed = 0
        self._saved_fetched = 0  # highest sequence handed out, as last written (for ``redelivered``)
        self._unsaved = 0
        self._redelivered_upto = 0
        self._closed = False

    @property
    def kind(self) -> str:
        return "embedded"

    async def start(self) -> None:
        if self._conn is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        safe = hashlib.sha1(self.group.encode()).hexdigest()[:16]
        fd = os.open(self.directory / f"group-{safe}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        while True:  # one consumer per group; the kernel drops the lock when its holder dies (even kill -9)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if self._closed:
                    os.close(fd)
                    return
                await asyncio.sleep(0.2)
        self._lock_file = fd
        conn = self._conn = _connect(self.directory, self.synchronous)
        topics = ",".join(sorted(self.topics))
        with _immediate(conn):
            (high,) = conn.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()
            conn.execute(
                "INSERT INTO groups (name, topics, acked, fetched, seen) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET topics = excluded.topics, seen = excluded.seen",
                (self.group, topics, high, high, time.time()),
            )
            acked, fetched = conn.execute(
                "SELECT acked, fetched FROM groups WHERE name = ?", (self.group,)
            ).fetchone()
        self._fetched = self._committed = acked
        self._redelivered_upto = self._saved_fetched = fetched
        wake = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        wake.setblocking(False)
        try:
            wake.bind(_wake_address(self.directory, self.group))
            self._wake = wake
        except OSError:  # no abstract sockets here: fall back to polling
            wake.close()

    @property
    def position(self) -> int | None:
        """The sequence number up to which every delivery was acknowledged (None before the start)."""
        if self._conn is None:
            return None
        return next(iter(self._inflight)) - 1 if self._inflight else self._fetched

    async def backlog(self) -> Backlog:
        """The group's cursor against the newest notification in the file, and how many of its topics wait."""
        position = self.position
        if self._conn is None or position is None:
            return Backlog(self.group, "embedded", note="not started")
        marks = ",".join("?" * len(self.topics))
        last, behind = self._conn.execute(
            f"SELECT (SELECT coalesce(max(seq), 0) FROM messages), "
            f"(SELECT count(*) FROM messages WHERE seq > ? AND topic IN ({marks}))",
            (position, *self.topics),
        ).fetchone()
        return Backlog(self.group, "embedded", position, last, behind, str(self.directory / DB_NAME))

    def settle(self, seq: int) -> None:
        self._inflight.pop(seq, None)
        self._unsaved += 1
        if self._unsaved >= self.commit_every:
            self._save()

    def dead_letter(self, delivery: Delivery, seq: int, reason: str) -> None:
        assert self._conn is not None
        self._conn.execute(
            "INSERT INTO dead_letters (grp, seq, topic, body, reason, at) VALUES (?, ?, ?, ?, ?, ?)",
            (self.group, seq, delivery.topic, delivery.body, reason, time.time()),
        )
        self.settle(seq)

    def _save(self) -> None:
        """Persist the cursor: everything at or below it is acknowledged (lazily: a crash only redelivers)."""
        self._unsaved = 0
        cursor = next(iter(self._inflight)) - 1 if self._inflight else self._fetched
        if (cursor != self._committed or self._fetched > self._saved_fetched) and self._conn is not None:
            self._conn.execute(
                "UPDATE groups SET acked = ?, fetched = max(fetched, ?), seen = ? WHERE name = ?",
                (cursor, self._fetched, time.time(), self.group),
            )
            self._committed, self._saved_fetched = cursor, self._fetched

    def _read(self) -> list[tuple[int, str, bytes]]:
        assert self._conn is not None
        marks = ",".join("?" * len(self.topics))
        rows: list[tuple[int, str, bytes]] = self._conn.execute(
            f"SELECT seq, topic, body FROM messages WHERE seq > ? AND topic IN ({marks}) ORDER BY seq LIMIT ?",
            (self._fetched, *self.topics, self.batch),
        ).fetchall()
        if rows and rows[0][0] > self._fetched + 1:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'trimmed'").fetchone()
            if row is not None and row[0] > self._fetched:
                missed = row[0] - self._fetched
                self.lost += missed
                log.warning("consumer group %s missed up to %d notifications dropped by the size bound",
                            self.group, missed)
        return rows

    async def _wait(self) -> None:
        if self._wake is None:
            await asyncio.sleep(self.poll_interval)
            return
        loop = asyncio.get_running_loop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(loop.sock_recv(self._wake, 64), self.poll_interval)
        with contextlib.suppress(OSError):  # drain the pokes that arrived meanwhile
            while self._wake.recv(64):
                pass

    async def __aiter__(self) -> AsyncIterator[Delivery]:
        await self.start()
        while not self._closed:
            rows = self._read()
            if not rows:
                self._save()  # idle: a good moment to persist the cursor
                await self._wait()
                continue
            for seq, topic, body in rows:
                if self._closed:
                    return
                self._fetched = seq
                self._inflight[seq] = None
                yield _EmbeddedDelivery(self, seq, topic, body, seq <= self._redelivered_upto)

    def dead_letters(self) -> list[tuple[str, bytes, str]]:
        """This group's dead letters: (topic, body, reason), oldest first."""
        assert self._conn is not None
        rows: list[tuple[str, bytes, str]] = self._conn.execute(
            "SELECT topic, body, reason FROM dead_letters WHERE grp = ? ORDER BY id", (self.group,)
        ).fetchall()
        return rows

    async def close(self) -> None:
        self._closed = True
        if self._conn is not None:
            self._save()
            self._conn.close()
            self._conn = None
        if self._wake is not None:
            self._wake.close()
            self._wake = None
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None
