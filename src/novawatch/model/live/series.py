"""Bounded time series of the overview figures, sampled from the model (never from a scan), kept in tiers:
the finest for the last hour, then one point a minute for a day, then one per ten minutes up to the window.

Each tier is a ring of points; a coarser tier's point is the mean of the finer points that fell in its
step, so memory is fixed by the window and the resolution whatever the uptime (7 days at 10 s: about
3,000 points per figure).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

#: Every figure kept, in the order the answers list them.
NAMES = ("vcpus_used", "vcpus_free", "vcpus_capacity", "ram_mb_used", "ram_mb_free", "ram_mb_capacity",
         "disk_gb_used", "disk_gb_free", "disk_gb_capacity", "hosts_down", "hosts_disabled", "instances",
         "applied_rate", "rejected_rate", "lag_seconds", "drift")

#: The most points one answer carries; a longer range is averaged into a larger step.
MAX_POINTS = 2000

Values = tuple[float | None, ...]


def tiers_for(window: float, resolution: float) -> list[tuple[float, int]]:
    """(step, points kept) of each tier, finest first, for a ``window`` in seconds at ``resolution``."""
    if resolution <= 0 or window <= 0:
        raise ValueError("model.series_resolution and model.series_window must be above 0")
    tiers: list[tuple[float, int]] = []
    span = 0.0
    for step, until in ((resolution, 3600.0), (60.0, 86400.0), (600.0, math.inf)):
        reach = min(window, until)
        if reach <= span:
            break
        if tiers and step <= tiers[-1][0]:  # a resolution as coarse as this tier's: the finer tier reaches further
            finer = tiers[-1][0]
            tiers[-1] = (finer, max(1, math.ceil(reach / finer)))
            span = reach
            continue
        tiers.append((step, max(1, math.ceil(reach / step))))
        span = reach
    return tiers


def _mean(values: Iterable[float | None]) -> float | None:
    total, count = 0.0, 0
    for v in values:
        if v is not None:
            total += v
            count += 1
    return total / count if count else None


class Tier:
    """One resolution: a ring of (time, values) and the finer points gathered for its next point."""

    def __init__(self, step: float, keep: int) -> None:
        self.step = step
        self.points: deque[tuple[float, Values]] = deque(maxlen=keep)
        self.dropped = False  # whether the ring has lost its oldest points
        self._bucket: float | None = None
        self._gathered: list[Values] = []

    def add(self, t: float, values: Values) -> None:
        if len(self.points) == self.points.maxlen:
            self.dropped = True
        self.points.append((t, values))

    def gather(self, t: float, values: Values) -> tuple[float, Values] | None:
        """Take a finer point; when it starts a new step, the mean point of the step it closed."""
        start = math.floor(t / self.step) * self.step
        closed = None
        if self._bucket is not None and start != self._bucket and self._gathered:
            closed = (self._bucket, tuple(_mean(column) for column in zip(*self._gathered, strict=True)))
            self._gathered = []
        self._bucket = start
        self._gathered.append(values)
        return closed


class Series:
    """The figures' tiers; :meth:`add` one sample of all figures at a time."""

    def __init__(self, window: float = 7 * 86400.0, resolution: float = 10.0,
                 names: Sequence[str] = NAMES) -> None:
        self.window = window
        self.resolution = resolution
        self.names = tuple(names)
        self.tiers = [Tier(step, keep) for step, keep in tiers_for(window, resolution)]
        #: Samples taken since start (the watch stream sends the ones a reader has not seen).
        self.samples = 0

    def add(self, t: float, values: dict[str, float | None]) -> None:
        """One sample of the figures at ``t`` (Unix seconds); a figure missing is None."""
        row: Values = tuple(values.get(name) for name in self.names)
        self.samples += 1
        self.tiers[0].add(t, row)
        point = (t, row)
        for tier in self.tiers[1:]:
            closed = tier.gather(*point)
            if closed is None:
                break
            tier.add(*closed)
            point = closed

    def latest(self, count: int) -> list[tuple[float, Values]]:
        """The ``count`` newest samples (at most what the finest tier keeps), oldest first."""
        points = self.tiers[0].points
        count = min(count, len(points))
        return [points[i] for i in range(len(points) - count, len(points))]

    def query(self, names: Sequence[str], since: float, until: float, step: float | None = None) -> dict[str, Any]:
        """The points of ``names`` from ``since`` to ``until``, at ``step`` or the finest kept that far back."""
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise ValueError(f"unknown series {', '.join(unknown)}; use any of {', '.join(self.names)}")
        tier = self.tiers[-1]
        for candidate in self.tiers:
            if not candidate.dropped or (candidate.points and candidate.points[0][0] <= since):
                tier = candidate
                break
        wanted = max(step or 0.0, tier.step, (until - since) / MAX_POINTS if until > since else 0.0)
        columns = [self.names.index(n) for n in names]
        rows = [(t, values) for t, values in tier.points if since <= t <= until]
        times: list[float] = []
        out: dict[str, list[float | None]] = {n: [] for n in names}
        if wanted <= tier.step:
            for t, values in rows:
                times.append(t)
                for name, column in zip(names, columns, strict=True):
                    out[name].append(values[column])
        else:
            buckets: dict[float, list[Values]] = {}
            for t, values in rows:
                buckets.setdefault(math.floor(t / wanted) * wanted, []).append(values)
            for start, group in buckets.items():
                times.append(start)
                for name, column in zip(names, columns, strict=True):
                    out[name].append(_mean(v[column] for v in group))
        return {"step": wanted, "since": since, "until": until, "t": times, "series": out}

    # --- checkpoints ------------------------------------------------------------------------------

    def save(self) -> dict[str, Any]:
        """A copy for a checkpoint section."""
        return {"names": list(self.names),
                "tiers": [{"step": tier.step, "points": [[t, list(v)] for t, v in tier.points]}
                          for tier in self.tiers]}

    def load(self, saved: Any, now: float) -> None:
        """Take back what :meth:`save` kept (figures matched by name; points older than the window dropped)."""
        names = list(saved["names"])
        where = [names.index(n) if n in names else None for n in self.names]
        by_step = {float(t["step"]): t["points"] for t in saved["tiers"]}
        for tier in self.tiers:
            for t, values in by_step.get(tier.step, ()):
                if now - float(t) > self.window:
                    continue
                tier.add(float(t), tuple(None if i is None else values[i] for i in where))
