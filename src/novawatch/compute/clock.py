"""Clocks and identifier sources: the wall clock for a live service, a simulated one for ``simulate``."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Protocol

#: The simulated clock's default starting point.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    """``now()`` reads the time; ``tick()`` reads it for a notification (each gets its own instant)."""

    def now(self) -> datetime: ...

    def tick(self) -> datetime: ...


class WallClock:
    """Real time (aware UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def tick(self) -> datetime:
        return datetime.now(UTC)


class SimClock:
    """Simulated time: moves only when told to, one microsecond per ``tick()``."""

    def __init__(self, start: datetime = EPOCH) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def tick(self) -> datetime:
        self._now += timedelta(microseconds=1)
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward (between actions of a simulation)."""
        self._now += timedelta(seconds=seconds)


class Ids:
    """UUIDs (version 4 layout) drawn from a seeded RNG, or from the OS when no seed is given."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed) if seed is not None else None

    def __call__(self) -> str:
        if self._rng is None:
            return str(uuid.uuid4())
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
