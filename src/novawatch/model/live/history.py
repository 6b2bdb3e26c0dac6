"""What happened to each instance, and each host's usage over time, from the model's change events.

Both are bounded: an instance keeps its newest ``per_instance`` entries and the service its newest ``total``
(the oldest entry of the whole service goes first); a host keeps at most ``points`` points, one per
``step`` seconds (the last change in a step wins), packed in an array of integers (40 bytes a point).
"""

from __future__ import annotations

import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from msgspec.structs import astuple

from novawatch.model.changes import INSTANCE, NODE, Update
from novawatch.snapshot import InstanceRecord, NodeRecord

FIELDS = tuple(InstanceRecord.__struct_fields__)


def differences(old: InstanceRecord | None, new: InstanceRecord | None) -> dict[str, list[Any]]:
    """Each field that differs, as ``[old, new]`` (every field of an added instance; none of a deleted one)."""
    if new is None:
        return {}
    after = astuple(new)
    if old is None:
        return {name: [None, list(a) if isinstance(a, list) else a] for name, a in zip(FIELDS, after, strict=True)}
    return {name: [b, list(a) if isinstance(a, list) else a]
            for name, b, a in zip(FIELDS, astuple(old), after, strict=True) if b != a}


#: What one step of the model was: (seq, at, cause, event_type, message_id, timestamp).
Head = tuple[int, float, str, "str | None", "str | None", "str | None"]


class Entry:
    """One change of one instance: the step's head and the records before and after (or, restored from a
    checkpoint, the entry as the API shows it)."""

    __slots__ = ("head", "new", "old", "serial", "shown")

    def __init__(self, serial: int, head: Head | None, old: InstanceRecord | None, new: InstanceRecord | None,
                 shown: dict[str, Any] | None = None) -> None:
        self.serial = serial
        self.head = head
        self.old = old
        self.new = new
        self.shown = shown

    def json(self) -> dict[str, Any]:
        if self.shown is not None:
            return self.shown
        assert self.head is not None
        seq, at, cause, event_type, message_id, timestamp = self.head
        op = "add" if self.old is None else "delete" if self.new is None else "update"
        return {"seq": seq, "at": at, "cause": cause, "event_type": event_type, "message_id": message_id,
                "timestamp": timestamp, "op": op, "changes": differences(self.old, self.new)}


class InstanceHistory:
    """The changes of each instance, oldest first; subscribe :meth:`update` (after the feed's publisher, so
    that ``seq`` reads the watch stream's position)."""

    def __init__(self, per_instance: int = 50, total: int = 100000, *, seq: Callable[[], int] = lambda: 0,
                 clock: Callable[[], float] = time.time) -> None:
        self.per_instance = max(1, per_instance)
        self.total = max(1, total)
        self.seq = seq
        self.clock = clock
        #: uuid -> its entries, oldest first.
        self.entries: dict[str, deque[Entry]] = {}
        self.truncated: set[str] = set()
        self._order: deque[tuple[int, str]] = deque()  # (serial, uuid) of every entry kept, oldest first
        self._serial = 0

    def update(self, update: Update) -> None:
        if update.reset or not update.changes:
            return
        head: Head | None = None
        for change in update.changes:
            if change.kind != INSTANCE:
                continue
            if head is None:
                note = update.notification
                head = (self.seq(), self.clock(), update.cause, note.event_type if note is not None else None,
                        note.message_id if note is not None else None, note.timestamp if note is not None else None)
            self._serial += 1
            # the records as they are: what differs is worked out when someone asks (rarely, compared with applies)
            entry = Entry(self._serial, head, change.old, change.new)
            kept = self.entries.get(change.key)
            if kept is None:
                kept = self.entries[change.key] = deque()
            if len(kept) >= self.per_instance:
                kept.popleft()
                self.truncated.add(change.key)
            kept.append(entry)
            self._order.append((self._serial, change.key))
        if len(self._order) > self.total:
            self._trim()

    def _trim(self) -> None:
        order = self._order
        while len(order) > self.total:
            serial, uuid = order.popleft()
            kept = self.entries.get(uuid)
            if kept and kept[0].serial == serial:
                kept.popleft()
                self.truncated.add(uuid)
                if not kept:
                    del self.entries[uuid]
                    self.truncated.discard(uuid)

    def of(self, uuid: str) -> tuple[list[dict[str, Any]], bool] | None:
        """(entries oldest first, as the API shows them; whether older ones were dropped), or None when nothing
        is kept."""
        kept = self.entries.get(uuid)
        if not kept:
            return None
        return [entry.json() for entry in kept], uuid in self.truncated

    def kept(self) -> int:
        """Entries kept in all."""
        return sum(len(k) for k in self.entries.values())

    def save(self) -> dict[str, Any]:
        """A copy for a checkpoint section (entries in the order they came)."""
        index = {uuid: {e.serial: e for e in kept} for uuid, kept in self.entries.items()}
        out = []
        for serial, uuid in self._order:
            entry = index.get(uuid, {}).get(serial)
            if entry is not None:
                out.append([uuid, entry.json()])
        return {"entries": out, "truncated": sorted(self.truncated)}

    def load(self, saved: Any) -> None:
        for uuid, entry in saved["entries"]:
            self._serial += 1
            kept = self.entries.setdefault(uuid, deque())
            if len(kept) >= self.per_instance:
                kept.popleft()
            kept.append(Entry(self._serial, None, None, None, entry))
            self._order.append((self._serial, uuid))
        self.truncated.update(u for u in saved.get("truncated", ()) if u in self.entries)
        self._trim()


#: Integers per point of a host: time (ms), vCPUs, RAM MB, disk GB used, and state/status flags.
WIDTH = 5
UP, ENABLED = 1, 2


class HostSeries:
    """Each node's usage as a step series; subscribe :meth:`update`; :meth:`seed` at a (re)load."""

    def __init__(self, points: int = 120, step: float = 60.0, *, clock: Callable[[], float] = time.time) -> None:
        self.points = max(2, points)
        self.step_ms = int(step * 1000)
        self.clock = clock
        self.hosts: dict[str, array[int]] = {}

    def seed(self, records: Iterable[NodeRecord]) -> None:
        """Record every node as it is now (after a bootstrap)."""
        now = self.clock()
        for record in records:
            self._put(record, now)

    def update(self, update: Update) -> None:
        if update.reset:
            return  # the runtime seeds after a reload (the listener has no store to read)
        now = None
        for change in update.changes:
            if change.kind != NODE:
                continue
            now = now if now is not None else self.clock()
            if change.new is None:
                if change.old is not None:
                    self.hosts.pop(change.old.host, None)  # gone with its node: the hosts kept stay bounded
                continue
            self._put(change.new, now)

    def _put(self, record: NodeRecord, now: float) -> None:
        ms = int(now * 1000)
        flags = (UP if record.state == "up" else 0) | (ENABLED if record.status == "enabled" else 0)
        point = (ms, record.vcpus_used, record.memory_mb_used, record.local_gb_used, flags)
        kept = self.hosts.get(record.host)
        if kept is None:
            self.hosts[record.host] = array("q", point)
            return
        last = len(kept) - WIDTH
        if tuple(kept[last + 1:]) == point[1:]:
            return  # nothing this series shows changed (the capacity or a reported field did)
        if len(kept) > WIDTH and ms // self.step_ms == kept[last] // self.step_ms:
            kept[last:] = array("q", point)  # one point per step: the last change in it wins
            return
        kept.extend(point)
        if len(kept) > self.points * WIDTH:
            del kept[:WIDTH]

    def of(self, host: str, since: float | None = None) -> dict[str, list[Any]] | None:
        kept = self.hosts.get(host)
        if kept is None:
            return None
        out: dict[str, list[Any]] = {"t": [], "vcpus_used": [], "ram_mb_used": [], "disk_gb_used": [],
                                     "state": [], "status": []}
        for i in range(0, len(kept), WIDTH):
            t = kept[i] / 1000
            if since is not None and t < since and i + WIDTH < len(kept) and kept[i + WIDTH] / 1000 <= since:
                continue  # before since, and not the point in force at since
            out["t"].append(t)
            out["vcpus_used"].append(kept[i + 1])
            out["ram_mb_used"].append(kept[i + 2])
            out["disk_gb_used"].append(kept[i + 3])
            out["state"].append("up" if kept[i + 4] & UP else "down")
            out["status"].append("enabled" if kept[i + 4] & ENABLED else "disabled")
        return out

    def save(self) -> dict[str, Any]:
        return {"step_ms": self.step_ms, "hosts": {host: kept.tolist() for host, kept in self.hosts.items()}}

    def load(self, saved: Any) -> None:
        for host, values in saved["hosts"].items():
            if len(values) % WIDTH == 0 and values:
                kept = array("q", values[-self.points * WIDTH:])
                current = self.hosts.get(host)
                if current is not None:  # seeded at the restore: the restored series comes before it
                    kept.extend(current)
                    del kept[:max(0, len(kept) - self.points * WIDTH)]
                self.hosts[host] = kept
