"""The cloud at a glance: capacity, use and free of vCPU, RAM and disk, hosts by state and status, and how
many hosts sit in each tenth of utilisation, kept current from the model's change events.

Each node change moves its old record's share out of the totals and its new record's in: a summary costs
nothing to read at 10,000 hosts and a few additions per node change to keep (no scan per request or tick).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from novawatch.model.changes import NODE, Update
from novawatch.snapshot import NodeRecord

#: The three resources, each as (name in the answer, capacity field, used field).
RESOURCES = (("vcpus", "vcpus", "vcpus_used"), ("ram_mb", "memory_mb", "memory_mb_used"),
             ("disk_gb", "local_gb", "local_gb_used"))
BUCKETS = 10
EDGES = [i * 100 // BUCKETS for i in range(BUCKETS + 1)]

#: Why ``groups`` is null (see docs/api.md, "Dashboard API").
GROUPS_NOTE = ("the model's records (the novawatch.model/1 snapshot and Nova's compute node notifications) carry no "
               "availability zone or aggregate, so the model cannot group hosts by them")


def _bucket(used: int, capacity: int) -> int:
    """The tenth of utilisation ``used`` of ``capacity`` (> 0) falls in; overcommitted counts in the last."""
    return min(BUCKETS - 1, max(0, used * BUCKETS // capacity))


class Totals:
    """Sums of capacity and use over a set of nodes."""

    __slots__ = ("capacity", "used")

    def __init__(self) -> None:
        self.capacity = [0, 0, 0]
        self.used = [0, 0, 0]

    def add(self, capacity: tuple[int, int, int], used: tuple[int, int, int], sign: int) -> None:
        for i in range(3):
            self.capacity[i] += sign * capacity[i]
            self.used[i] += sign * used[i]

    def json(self) -> dict[str, Any]:
        out = {}
        for i, (name, _, _) in enumerate(RESOURCES):
            capacity, used = self.capacity[i], self.used[i]
            out[name] = {"capacity": capacity, "used": used, "free": capacity - used,
                         "util": used / capacity if capacity > 0 else 0.0}
        return out


class Summary:
    """Totals over every node and over schedulable ones (up and enabled), host counts and the utilisation
    histogram; subscribe :meth:`update` to the model's changes (a reset rebuilds from ``records()``)."""

    def __init__(self, records: Callable[[], Iterable[NodeRecord]]) -> None:
        self.records = records
        self.rebuild()

    def rebuild(self) -> None:
        """Start again from every node the store holds."""
        self.all = Totals()
        self.schedulable = Totals()
        self.hosts = {"total": 0, "up": 0, "down": 0, "enabled": 0, "disabled": 0, "schedulable": 0}
        self.histogram = {name: [0] * BUCKETS for name, _, _ in RESOURCES}
        self._histograms = [self.histogram[name] for name, _, _ in RESOURCES]
        for record in self.records():
            self._count(record, 1)

    def _count(self, record: NodeRecord, sign: int) -> None:
        hosts = self.hosts
        hosts["total"] += sign
        hosts[record.state] = hosts.get(record.state, 0) + sign
        hosts[record.status] = hosts.get(record.status, 0) + sign
        capacity = (record.vcpus, record.memory_mb, record.local_gb)
        used = (record.vcpus_used, record.memory_mb_used, record.local_gb_used)
        self.all.add(capacity, used, sign)
        if record.state == "up" and record.status == "enabled":
            hosts["schedulable"] += sign
            self.schedulable.add(capacity, used, sign)
        for counts, cap, use in zip(self._histograms, capacity, used, strict=True):
            if cap > 0:
                counts[_bucket(use, cap)] += sign

    def update(self, update: Update) -> None:
        """Apply one update of the model."""
        if update.reset:
            self.rebuild()
            return
        for change in update.changes:
            if change.kind != NODE:
                continue
            old, new = change.old, change.new
            if (old is not None and new is not None and old.state == new.state and old.status == new.status
                    and old.vcpus == new.vcpus and old.memory_mb == new.memory_mb and old.local_gb == new.local_gb):
                self._used_moved(old, new)  # the usual change: instances came or went
                continue
            if old is not None:
                self._count(old, -1)
            if new is not None:
                self._count(new, 1)

    def _used_moved(self, old: NodeRecord, new: NodeRecord) -> None:
        before = (old.vcpus_used, old.memory_mb_used, old.local_gb_used)
        after = (new.vcpus_used, new.memory_mb_used, new.local_gb_used)
        if before == after:
            return  # a change of something the summary does not count (a reported figure, a reason)
        capacity = (new.vcpus, new.memory_mb, new.local_gb)
        schedulable = new.state == "up" and new.status == "enabled"
        for i in range(3):
            delta = after[i] - before[i]
            if not delta:
                continue
            self.all.used[i] += delta
            if schedulable:
                self.schedulable.used[i] += delta
            cap = capacity[i]
            if cap > 0:
                was, now = _bucket(before[i], cap), _bucket(after[i], cap)
                if was != now:
                    counts = self._histograms[i]
                    counts[was] -= 1
                    counts[now] += 1

    def json(self) -> dict[str, Any]:
        """The ``hosts``, ``capacity`` and ``histogram`` parts of ``GET /v1/summary``."""
        return {
            "hosts": dict(self.hosts),
            "capacity": {"schedulable": self.schedulable.json(), "all": self.all.json()},
            "histogram": {"edges": EDGES, **{name: list(counts) for name, counts in self.histogram.items()}},
            "groups": {"availability_zones": None, "aggregates": None, "note": GROUPS_NOTE},
        }
