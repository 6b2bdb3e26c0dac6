"""Notifier drivers: where emitted notifications go (memory, a JSONL stream file, the bus's ``BusDriver``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Protocol

from novawatch.notifications.message import Notification


class Driver(Protocol):
    """Receives every emitted notification with its topic and its encoded JSON body."""

    def send(self, topic: str, notification: Notification[Any], body: bytes) -> None: ...


class Sent(NamedTuple):
    topic: str
    notification: Notification[Any]
    body: bytes


class MemoryDriver:
    """Keeps what was sent, in order; for tests and for embedding."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    def send(self, topic: str, notification: Notification[Any], body: bytes) -> None:
        self.sent.append(Sent(topic, notification, body))

    @property
    def event_types(self) -> list[str]:
        return [s.notification.event_type for s in self.sent]

    def clear(self) -> None:
        self.sent.clear()


class JsonlDriver:
    """Appends each notification as one JSON line: the stream file contract of DESIGN.md."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: BinaryIO = self.path.open("ab")
        self._lock = threading.Lock()

    def send(self, topic: str, notification: Notification[Any], body: bytes) -> None:
        with self._lock:
            self._file.write(body + b"\n")

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()
