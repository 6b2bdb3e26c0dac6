"""Source lookups of the running model service, off the event loop that applies notifications.

The handlers of a deferred model (:class:`~novawatch.model.cluster.ClusterModel`) only record what
they would have asked the source: the node of a host they have not seen (from ``service.*`` or an
instance event), an instance they have not seen. :class:`SourceWorker` asks the source in a thread,
then applies the answers on the loop; the model's change events tell the listeners what changed. A host
the source does not know yet (Nova creates the compute node after the service) is asked again with backoff;
every ``node_refresh_interval`` seconds all nodes are re-read, which refreshes capacity and finds nodes
that no notification named. Usage is never taken from the source: it stays derived from instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from novawatch.model.changes import LOOKUP, REFRESH
from novawatch.model.cluster import find_node
from novawatch.model.live.runtime import ModelRuntime
from novawatch.snapshot import SourceError

log = logging.getLogger("novawatch.model.live.lookups")

#: Backoff of a host the source did not know: first retry after this many seconds, doubling.
FIRST_RETRY = 1.0
MAX_RETRY = 60.0
#: A host still unknown after this many tries is left to the periodic refresh (and to the next event naming it).
MAX_TRIES = 12


class SourceWorker:
    """Resolves the model's wishes and refreshes nodes through ``source``; run :meth:`run` as a task."""

    def __init__(self, runtime: ModelRuntime, source: Any, *, refresh_interval: float = 300.0,
                 first_retry: float = FIRST_RETRY, max_retry: float = MAX_RETRY, max_tries: int = MAX_TRIES) -> None:
        self.runtime = runtime
        self.source = source
        self.refresh_interval = refresh_interval
        self.first_retry = first_retry
        self.max_retry = max_retry
        self.max_tries = max_tries
        #: host -> (tries so far, monotonic time of the next try)
        self._retries: dict[str, tuple[int, float]] = {}
        self._wake: asyncio.Event | None = None
        self.refreshes = 0
        self.found_nodes = 0

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Resolve wishes as they come, retry unknown hosts, refresh nodes; until cancelled."""
        self._wake = asyncio.Event()
        cluster = self.runtime.cluster
        cluster.on_wish = self._poke
        next_refresh = time.monotonic() + self.refresh_interval if self.refresh_interval > 0 else None
        try:
            while True:
                now = time.monotonic()
                waits = [t for _, t in self._retries.values()]
                if next_refresh is not None:
                    waits.append(next_refresh)
                timeout = max(0.0, min(waits) - now) if waits else None
                if not (cluster.wanted_hosts.difference(self._retries) or cluster.wanted_instances):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout)
                self._wake.clear()
                if next_refresh is not None and time.monotonic() >= next_refresh:
                    await self.refresh_nodes()
                    next_refresh = time.monotonic() + self.refresh_interval
                await self.resolve()
        finally:
            cluster.on_wish = None

    async def _ask(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` in a thread, one source call at a time (shared with the audit)."""
        async with self.runtime.source_lock:
            return await asyncio.to_thread(fn)

    def _failed(self, doing: str, exc: Exception) -> None:
        message = str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}"
        self.runtime.state.note_source_error(f"{doing}: {message}")

    async def resolve(self) -> None:
        """One pass over the wishes whose time has come."""
        cluster = self.runtime.cluster
        store = cluster.store
        now = time.monotonic()
        for host in sorted(cluster.wanted_hosts):
            tries, when = self._retries.get(host, (0, 0.0))
            if when > now:
                continue
            if host in store.nodes_by_host:
                cluster.wanted_hosts.discard(host)
                self._retries.pop(host, None)
                continue
            try:
                record = await self._ask(lambda h=host: find_node(self.source, h))  # type: ignore[misc]
            except Exception as exc:
                self._failed(f"looking up the node of host {host}", exc)
                record = None
            else:
                self.runtime.state.note_source_ok()
            node = cluster.adopt_node(record) if record is not None and record.host == host else None
            if node is not None or host in store.nodes_by_host:
                cluster.wanted_hosts.discard(host)
                self._retries.pop(host, None)
                if node is not None:
                    self.found_nodes += 1
                    self.runtime.publish(LOOKUP)
                continue
            tries += 1
            if tries >= self.max_tries:
                # Not forever: the periodic refresh finds it, and the next notification naming it asks again.
                cluster.wanted_hosts.discard(host)
                self._retries.pop(host, None)
                log.info("no node for host %s after %d lookups; left to the node refresh", host, tries)
            else:
                self._retries[host] = (tries, time.monotonic() + min(self.max_retry,
                                                                      self.first_retry * 2 ** (tries - 1)))
        for uuid in sorted(cluster.wanted_instances):
            cluster.wanted_instances.discard(uuid)
            old = store.instances.get(uuid)
            mark = old.ts if old is not None else ""
            try:
                record = await self._ask(lambda u=uuid: self.source.get_instance(u))  # type: ignore[misc]
            except Exception as exc:
                self._failed(f"looking up instance {uuid}", exc)
                continue
            self.runtime.state.note_source_ok()
            if record is not None and cluster.adopt_instance(record, mark) is not None:
                self.runtime.publish(LOOKUP)

    async def refresh_nodes(self) -> int:
        """Re-read every node: capacity and names of known nodes, nodes not known yet. The number changed."""
        try:
            records = await self._ask(lambda: list(self.source.list_nodes()))
        except Exception as exc:
            self._failed("refreshing nodes", exc)
            return 0
        self.runtime.state.note_source_ok()
        self.refreshes += 1
        cluster = self.runtime.cluster
        changed = 0
        for record in records:
            node = cluster.adopt_node(record)
            if node is not None:
                changed += 1
                cluster.wanted_hosts.discard(node.host)
                self._retries.pop(node.host, None)
        self.runtime.publish(REFRESH)
        return changed
