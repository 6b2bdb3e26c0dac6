"""Nodes kept in query order, by state and status, up to date from the model's change events.

``GET /v1/nodes`` sorts and filters 10,000 nodes while notifications keep arriving. A scan costs a pass
over every node per query; an order costs a few bisections per node change instead (nodes change far less
often than they are asked about): one sorted list per (state, status) and per sort, made on the first query
that needs it and then kept current by :meth:`NodeOrders.update`, from the node records the change events
carry. The number of matches of a minimum on the sort's own figure is a bisection per list; a page is a
merge of the lists' heads.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from novawatch.model.changes import NODE, Update
from novawatch.snapshot import NodeRecord

#: The figure each sort orders by, from a node record (``host`` orders by name).
FIGURES: dict[str, Callable[[NodeRecord], Any]] = {
    "host": lambda r: r.host,
    "free_ram_mb": lambda r: r.memory_mb - r.memory_mb_used,
    "free_vcpus": lambda r: r.vcpus - r.vcpus_used,
    "free_disk_gb": lambda r: r.local_gb - r.local_gb_used,
    "running_vms": lambda r: r.running_vms,
}

Group = tuple[str, str]  # (state, status)
Entry = tuple[Any, ...]


def _free(r: NodeRecord) -> tuple[int, int, int]:
    return r.memory_mb - r.memory_mb_used, r.vcpus - r.vcpus_used, r.local_gb - r.local_gb_used


class NodeOrder:
    """The nodes in one sort's order, one list per (state, status); ties by host, then uuid."""

    def __init__(self, sort: str) -> None:
        name = sort.lstrip("-")
        self.figure = FIGURES[name]
        self.by_name = name == "host"
        self.descending = sort.startswith("-")
        # Figures are negated for a descending order, so that every list is ascending with ties by host.
        self.sign = -1 if self.descending and not self.by_name else 1
        self.lists: dict[Group, list[Entry]] = {}
        self.entries: dict[str, tuple[Group, Entry]] = {}

    def entry(self, record: NodeRecord) -> tuple[Group, Entry]:
        group = (record.state, record.status)
        if self.by_name:
            return group, (record.host, record.uuid)
        return group, (self.sign * self.figure(record), record.host, record.uuid)

    def put(self, record: NodeRecord) -> None:
        """Add a node, or move it to where its record now says."""
        self.drop(record.uuid)
        group, entry = self.entry(record)
        insort(self.lists.setdefault(group, []), entry)
        self.entries[record.uuid] = (group, entry)

    def drop(self, uuid: str) -> None:
        found = self.entries.pop(uuid, None)
        if found is not None:
            group, entry = found
            entries = self.lists[group]
            del entries[bisect_left(entries, entry)]
            if not entries:
                del self.lists[group]

    def select(self, groups: Iterable[Group], minimum: int | None) -> tuple[int, Iterator[str]]:
        """(how many nodes of ``groups`` have at least ``minimum`` of the figure, their uuids in order)."""
        parts: list[Iterable[Entry]] = []
        total = 0
        for group in groups:
            entries = self.lists.get(group)
            if not entries:
                continue
            if minimum is None:
                start, stop = 0, len(entries)
            elif self.sign > 0:
                start, stop = bisect_left(entries, (minimum,)), len(entries)
            else:  # figures negated: "at least minimum" is "at most -minimum", a prefix
                start, stop = 0, bisect_left(entries, (-minimum + 1,))
            total += stop - start
            if self.by_name and self.descending:
                parts.append(islice(reversed(entries), len(entries) - stop, len(entries) - start))
            else:
                parts.append(islice(entries, start, stop))
        merged = heapq.merge(*parts, reverse=self.by_name and self.descending)
        return total, (entry[-1] for entry in merged)


class NodeOrders:
    """The orders made so far, kept up to date; subscribe :meth:`update` to the model's changes."""

    def __init__(self, records: Callable[[], Iterable[NodeRecord]]) -> None:
        #: Every node's record as the store holds it now (to make an order, or remake it after a reset).
        self.records = records
        self.orders: dict[str, NodeOrder] = {}
        self._free: dict[str, tuple[int, int, int]] | None = None

    def free(self) -> dict[str, tuple[int, int, int]]:
        """uuid -> (free RAM MB, free vCPUs, free disk GB) of every node, made on first use and kept current."""
        if self._free is None:
            self._free = {r.uuid: _free(r) for r in self.records()}
        return self._free

    def order(self, sort: str) -> NodeOrder:
        """The order of ``sort`` (``host``, ``-free_ram_mb``, ...), made from the store on first use."""
        order = self.orders.get(sort)
        if order is None:
            order = NodeOrder(sort)
            for record in self.records():
                order.put(record)
            self.orders[sort] = order
        return order

    def update(self, update: Update) -> None:
        """Apply one update of the model to every order (a reset drops them: they are made again when asked)."""
        if update.reset:
            self.orders.clear()
            self._free = None
            return
        free = self._free
        if free is not None:
            for change in update.changes:
                if change.kind == NODE:
                    if change.new is None:
                        free.pop(change.key, None)
                    else:
                        free[change.key] = _free(change.new)
        if not self.orders:
            return
        for change in update.changes:
            if change.kind != NODE:
                continue
            for order in self.orders.values():
                if change.new is None:
                    order.drop(change.key)
                else:
                    order.put(change.new)
