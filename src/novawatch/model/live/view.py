"""The read side of the data model: filtered, sorted, paged queries over the store (what the REST API asks).

A node query that filters on state, status and at least some of the figure it sorts by (the usual "which
nodes have 8 GB free, most free first") is answered from orders kept up to date by the model's change events
(:mod:`novawatch.model.live.index`): a few bisections, then records for one page only. Any other node query
scans the store's own objects and per-host usage (no record is built for a node filtered out) and uses the
store's indexes where a filter names a host or a project.
"""

from __future__ import annotations

import fnmatch
import heapq
import re
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

import msgspec

from novawatch.model.cluster import ClusterModel
from novawatch.model.live.index import NodeOrder, NodeOrders
from novawatch.model.live.search import InstanceSearch
from novawatch.model.live.summary import Summary
from novawatch.model.store import Instance, Node, Store, Usage
from novawatch.snapshot import InstanceRecord, NodeRecord

_ZERO = Usage()


class NodeQuery(msgspec.Struct, kw_only=True):
    """Filters of ``GET /v1/nodes``; None means "any"."""

    min_free_ram_mb: int | None = None
    min_free_vcpus: int | None = None
    min_free_disk_gb: int | None = None
    state: str | None = None
    status: str | None = None
    host: str | None = None  # a host name, or a glob (host-00*)
    project: str | None = None  # nodes hosting at least one instance of this project
    sort: str = "host"  # a key of NODE_SORTS, '-' in front for descending
    limit: int = 100
    offset: int = 0


class InstanceQuery(msgspec.Struct, kw_only=True):
    """Filters of ``GET /v1/instances``."""

    host: str | None = None  # a host name or glob
    project: str | None = None
    state: str | None = None
    power_state: str | None = None
    name: str | None = None  # a display name or glob
    q: str | None = None  # a uuid prefix, part of a name (any case), or a project id, host or state
    sort: str = "uuid"
    limit: int = 100
    offset: int = 0


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _glob(text: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(text))


NodeKey = Callable[[Node, Usage], Any]
NODE_SORTS: dict[str, NodeKey] = {
    "host": lambda n, u: n.host,
    "free_ram_mb": lambda n, u: n.memory_mb - u.memory_mb,
    "free_vcpus": lambda n, u: n.vcpus - u.vcpus,
    "free_disk_gb": lambda n, u: n.local_gb - u.disk_gb,
    "running_vms": lambda n, u: u.count,
}
INSTANCE_SORTS: dict[str, Callable[[Instance], Any]] = {
    "uuid": lambda i: i.uuid,
    "display_name": lambda i: i.display_name,
    "host": lambda i: i.host or "",
    "memory_mb": lambda i: i.memory_mb,
    "vcpus": lambda i: i.vcpus,
}


#: For each free figure, the filter of NodeQuery that asks for a minimum of it.
_MINIMUMS = {"free_ram_mb": "min_free_ram_mb", "free_vcpus": "min_free_vcpus", "free_disk_gb": "min_free_disk_gb"}


class StoreView:
    """Read-only queries over a :class:`ClusterModel`. Not thread-safe: call it on the thread that applies.

    It listens to the model's changes (which makes the store record them) to keep its node orders current.
    """

    def __init__(self, cluster: ClusterModel) -> None:
        self.cluster = cluster
        store = cluster.store
        records = lambda: [store.node_record(n, reported=False) for n in store.nodes.values()]  # noqa: E731
        self.orders = NodeOrders(records)
        self.summary = Summary(records)
        self.search = InstanceSearch(lambda: [(i.uuid, i.display_name) for i in store.instances.values()])
        self._unsubscribe = (cluster.changes.subscribe(self.orders.update),
                             cluster.changes.subscribe(self.summary.update),
                             cluster.changes.subscribe(self.search.update))

    def close(self) -> None:
        """Stop following the model's changes."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    @property
    def store(self) -> Store:
        return self.cluster.store

    def counts(self) -> tuple[int, int]:
        """(nodes, instances)."""
        return len(self.store.nodes), len(self.store.instances)

    def node_record(self, node: Node) -> NodeRecord:
        return self.store.node_record(node)

    def get_node(self, ident: str) -> NodeRecord | None:
        """A node by uuid, or else by host name."""
        store = self.store
        node = store.nodes.get(ident) or store.nodes_by_host.get(ident)
        return None if node is None else store.node_record(node)

    def node_by_host(self, host: str) -> NodeRecord | None:
        node = self.store.nodes_by_host.get(host)
        return None if node is None else self.store.node_record(node)

    def get_instance(self, uuid: str) -> InstanceRecord | None:
        inst = self.store.instances.get(uuid)
        return None if inst is None else self.store.instance_record(inst)

    def instances_on_host(self, host: str) -> list[InstanceRecord]:
        """The instances placed on ``host``, sorted by uuid."""
        store = self.store
        return [store.instance_record(i) for i in sorted(store.instances_on(host), key=lambda i: i.uuid)]

    def query_nodes(self, q: NodeQuery) -> tuple[int, list[NodeRecord]]:
        """(number of matches, the requested page of them)."""
        name = q.sort.lstrip("-")
        if name not in NODE_SORTS:
            raise ValueError(f"cannot sort nodes by {q.sort!r}; use one of {', '.join(NODE_SORTS)}")
        ordered = self._ordered(q, name) or self._capacity(q)
        if ordered is not None:
            return ordered
        return self._scan_nodes(q)

    def _capacity(self, q: NodeQuery) -> tuple[int, list[NodeRecord]] | None:
        """A query with several minimums (a capacity query), from the orders: the total counted over the nodes
        meeting the minimum the fewest meet (a bisection each), the page read off the sort's own order until it
        is full. None when the query has fewer than two minimums, or a filter the orders cannot tell."""
        minimums = [(figure, getattr(q, key)) for figure, key in _MINIMUMS.items() if getattr(q, key) is not None]
        if len(minimums) < 2 or q.host is not None or q.project is not None:
            return None
        want = dict(minimums)
        # a figure without a minimum: anything, overcommitted (negative) too
        ram, cpu, disk = (want.get(f, -(1 << 62)) for f in _MINIMUMS)
        free = self.orders.free()

        def groups(order: NodeOrder) -> list[tuple[str, str]]:
            return [g for g in order.lists if (q.state is None or g[0] == q.state) and (q.status is None or
                                                                                     g[1] == q.status)]

        narrowest: tuple[int, Iterable[str]] | None = None
        for figure, minimum in minimums:
            order = self.orders.order(figure)
            found = order.select(groups(order), minimum)
            if narrowest is None or found[0] < narrowest[0]:
                narrowest = found
        assert narrowest is not None
        total = 0
        for uuid in narrowest[1]:
            f = free[uuid]
            if f[0] >= ram and f[1] >= cpu and f[2] >= disk:
                total += 1
        sort = self.orders.order(q.sort)
        page: list[str] = []
        skip = q.offset
        if q.limit > 0 and total > q.offset:
            for uuid in sort.select(groups(sort), None)[1]:
                f = free[uuid]
                if f[0] >= ram and f[1] >= cpu and f[2] >= disk:
                    if skip:
                        skip -= 1
                        continue
                    page.append(uuid)
                    if len(page) >= q.limit:
                        break
        store = self.store
        return total, [store.node_record(store.nodes[uuid]) for uuid in page]

    def _ordered(self, q: NodeQuery, name: str) -> tuple[int, list[NodeRecord]] | None:
        """The answer from the sort's order, when the query filters on nothing an order cannot tell."""
        minimums = {"min_free_ram_mb": q.min_free_ram_mb, "min_free_vcpus": q.min_free_vcpus,
                    "min_free_disk_gb": q.min_free_disk_gb}
        own = _MINIMUMS.get(name)
        if q.host is not None or q.project is not None or any(v is not None for k, v in minimums.items() if k != own):
            return None
        order = self.orders.order(q.sort)
        groups = [g for g in order.lists if (q.state is None or g[0] == q.state) and (q.status is None or
                                                                                      g[1] == q.status)]
        total, uuids = order.select(groups, minimums[own] if own is not None else None)
        store = self.store
        page = islice(uuids, q.offset, q.offset + q.limit)
        return total, [store.node_record(store.nodes[uuid]) for uuid in page]

    def _scan_nodes(self, q: NodeQuery) -> tuple[int, list[NodeRecord]]:
        store = self.store
        usage_by_host = store.usage_by_host
        candidates: Iterable[Node]
        pattern = None
        if q.host is not None and not _is_glob(q.host):
            one = store.nodes_by_host.get(q.host)
            candidates = () if one is None else (one,)
        else:
            candidates = store.nodes.values()
            if q.host is not None:
                pattern = _glob(q.host)
        hosts: set[str] | None = None
        if q.project is not None:
            uuids = store.instances_by_project.get(q.project, ())
            hosts = {h for h in (store.instances[u].host for u in uuids) if h is not None}
        ram, cpu, disk = q.min_free_ram_mb, q.min_free_vcpus, q.min_free_disk_gb
        state, status = q.state, q.status
        name = q.sort.lstrip("-")
        descending = q.sort.startswith("-")
        sign = -1 if descending else 1
        by = ("free_ram_mb", "free_vcpus", "free_disk_gb", "running_vms").index(name) if name != "host" else -1
        # One pass: filter, and build a plain tuple sort key per match (compared in C, no key function).
        # Ties are broken by host, then uuid (unique), so that pages are stable.
        matches: list[tuple[Any, ...]] = []
        append = matches.append
        for n in candidates:
            if state is not None and n.state != state:
                continue
            if status is not None and n.status != status:
                continue
            u = usage_by_host.get(n.host) or _ZERO
            free_ram = n.memory_mb - u.memory_mb
            if ram is not None and free_ram < ram:
                continue
            free_cpu = n.vcpus - u.vcpus
            if cpu is not None and free_cpu < cpu:
                continue
            free_disk = n.local_gb - u.disk_gb
            if disk is not None and free_disk < disk:
                continue
            if pattern is not None and not pattern.match(n.host):
                continue
            if hosts is not None and n.host not in hosts:
                continue
            if by < 0:
                append((n.host, n.uuid, n))
            else:
                value = (free_ram, free_cpu, free_disk, u.count)[by]
                append((sign * value, n.host, n.uuid, n))
        # Only one page is returned: a bounded heap (n log k) instead of sorting every match.
        wanted = q.offset + q.limit
        pick = heapq.nlargest if by < 0 and descending else heapq.nsmallest
        page = pick(wanted, matches)
        return len(matches), [store.node_record(m[-1]) for m in page[q.offset :]]

    def query_instances(self, q: InstanceQuery) -> tuple[int, list[InstanceRecord]]:
        """(number of matches, the requested page of them)."""
        store = self.store
        pattern = None
        candidates: Iterable[Instance]
        text = q.q
        if text is not None:
            # what q matches: the search's uuids and names, and the indexes of projects, hosts and states
            found = self.search.matching(text)
            found.update(store.instances_by_project.get(text, ()))
            found.update(store.instances_by_state.get(text, ()))
            found.update(i.uuid for i in store.instances_on(text))
            candidates = [store.instances[u] for u in found if u in store.instances]
            pattern = _glob(q.host) if q.host is not None else None
        elif q.host is not None and not _is_glob(q.host):
            candidates = store.instances_on(q.host)
        elif q.project is not None:
            candidates = (store.instances[u] for u in store.instances_by_project.get(q.project, ()))
            pattern = _glob(q.host) if q.host is not None else None
        elif q.state is not None:
            candidates = (store.instances[u] for u in store.instances_by_state.get(q.state, ()))
            pattern = _glob(q.host) if q.host is not None else None
        else:
            candidates = store.instances.values()
            pattern = _glob(q.host) if q.host is not None else None
        name_pattern = _glob(q.name) if q.name is not None else None
        matches: list[Instance] = []
        for i in candidates:
            if q.project is not None and i.project_id != q.project:
                continue
            if q.state is not None and i.state != q.state:
                continue
            if q.power_state is not None and i.power_state != q.power_state:
                continue
            if pattern is not None and (i.host is None or not pattern.match(i.host)):
                continue
            if name_pattern is not None and not name_pattern.match(i.display_name):
                continue
            matches.append(i)
        wanted = q.offset + q.limit
        name = q.sort.lstrip("-")
        descending = q.sort.startswith("-")
        if name in ("memory_mb", "vcpus"):
            key = INSTANCE_SORTS[name]
            sign = -1 if descending else 1
            page = heapq.nsmallest(wanted, matches, key=lambda i: (sign * key(i), i.uuid))
        else:
            key = INSTANCE_SORTS[name]
            pick = heapq.nlargest if descending else heapq.nsmallest
            page = pick(wanted, matches, key=lambda i: (key(i), i.uuid))
        return len(matches), [store.instance_record(i) for i in page[q.offset :]]
