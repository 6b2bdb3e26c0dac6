"""The running model service: subscribe, bootstrap (list), consume (watch), audit, and tell the API.

The data model (:mod:`novawatch.model`) applies notifications; this module wraps its consumer so that
every applied notification also becomes changes on the watch stream (the entities it touched, read
back from the store), a line in the recent-notifications feed, and metrics. Everything runs on one
asyncio loop, so the API's reads never race with the applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec

from novawatch.api.state import ModelState, NotificationNote
from novawatch.api.view import StoreView
from novawatch.bus.base import Delivery, Subscriber
from novawatch.model.apply import Consumer
from novawatch.model.audit import Drift, audit, repair
from novawatch.model.bootstrap import bootstrap
from novawatch.model.cluster import ClusterModel
from novawatch.model.outcome import APPLIED, REJECTED
from novawatch.snapshot import Snapshot, SnapshotSource, Source

log = logging.getLogger("novawatch.api.runtime")

#: Seconds between the two looks of an audit: an entity counts as drifted only if it differs in both,
#: so that notifications still in flight on the bus are not mistaken for drift.
AUDIT_CONFIRM_DELAY = 1.0

#: Seconds before a failed re-list is tried again (doubling up to the second figure).
RELIST_RETRY = (1.0, 60.0)


class _Data(msgspec.Struct):
    uuid: str | None = None
    host: str | None = None
    instance_id: str | None = None


class _Payload(msgspec.Struct):
    data: _Data | None = msgspec.field(name="nova_object.data", default=None)
    uuid: str | None = None
    host: str | None = None
    instance_id: str | None = None


class _Head(msgspec.Struct):
    """Just what the feed shows and what tells which entities a notification is about."""

    event_type: str | None = None
    publisher_id: str | None = None
    message_id: str | None = None
    timestamp: str | None = None
    payload: _Payload | None = None
    oslo_message: str | None = msgspec.field(name="oslo.message", default=None)


_head = msgspec.json.Decoder(_Head)


def peek(body: bytes | str) -> _Head:
    """The head of a notification (either wire form); an empty head when it cannot be read."""
    try:
        head = _head.decode(body)
        if head.oslo_message is not None:
            head = _head.decode(head.oslo_message)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return _Head()
    return head


def subjects(head: _Head) -> tuple[str | None, str | None]:
    """(entity uuid, host) a notification names: an instance's or a node's uuid, and the host."""
    p = head.payload
    if p is None:
        return None, None
    d = p.data
    if d is not None:
        return d.uuid or d.instance_id, d.host
    return p.instance_id or p.uuid, p.host


class ModelRuntime:
    """A live model behind the API: ``ingest`` one notification, ``consume`` a bus, ``audit`` a source."""

    def __init__(
        self,
        source: Source | None = None,
        *,
        cluster: ClusterModel | None = None,
        recent: int = 200,
        watch_buffer: int = 10000,
    ) -> None:
        self.source = source
        # Deferred: the handlers never call the source on the loop; a SourceWorker resolves their wishes.
        self.cluster = cluster if cluster is not None else ClusterModel(source, deferred=source is not None)
        self.consumer = Consumer(self.cluster)
        self.view = StoreView(self.cluster)
        self.state = ModelState(self.view, recent=recent, watch_buffer=watch_buffer)
        self.state.stats = lambda: self.consumer.stats
        self._audit_lock = asyncio.Lock()
        self._fetch: Callable[[], Snapshot] | None = None
        self._followed = 0
        self._relist_wanted = False
        self._relist_task: asyncio.Task[None] | None = None
        #: One source call at a time (audits, lookups, refreshes share one HTTP session).
        self.source_lock = asyncio.Lock()

    def publish_node(self, node: Any) -> None:
        """Tell watchers about a node that changed outside a notification (a lookup, a refresh)."""
        self.state.publish_node(node.uuid, self.cluster.store.node_record(node))

    def publish_instance(self, inst: Any, before_host: str | None = None) -> None:
        """Tell watchers about an instance that changed outside a notification, and the nodes it touched."""
        store = self.cluster.store
        self.state.publish_instance(inst.uuid, store.instance_record(inst))
        for host in sorted({h for h in (before_host, inst.host) if h}):
            node = store.nodes_by_host.get(host)
            if node is not None:
                self.publish_node(node)

    # --- list -------------------------------------------------------------------------------------

    def load(self, snapshot: Snapshot) -> None:
        """Bootstrap from a snapshot (already fetched), and publish every entity."""
        bootstrap(self.cluster, SnapshotSource(snapshot))
        # What bootstrap loaded lives as long as the model: keep it out of the cyclic collector's full
        # passes, which would otherwise walk every instance and stall queries for hundreds of ms.
        gc.collect()
        gc.freeze()
        store = self.cluster.store
        for node in store.nodes.values():
            self.state.publish_node(node.uuid, store.node_record(node))
        self.state.mark_bootstrapped()

    # --- watch ------------------------------------------------------------------------------------

    def ingest(
        self, body: bytes | str, event_type: str | None = None, legacy: bool | None = None
    ) -> tuple[int, str | None]:
        """Apply one notification, publish what it changed; (outcome, reason when rejected or noted).

        ``legacy`` is what the topic it came on says of its format (None when unknown).
        """
        store = self.cluster.store
        head = peek(body)
        uuid, host = subjects(head)
        before = store.instances.get(uuid) if uuid else None
        before_host = before.host if before is not None else None
        node_before = store.nodes.get(uuid) if uuid else None
        consumer = self.consumer
        noted = consumer.noted
        started = time.perf_counter()
        outcome = consumer.process(body, legacy=legacy)
        seconds = time.perf_counter() - started
        reason = None
        if outcome == REJECTED:
            letters = consumer.dead_letters
            reason = list(letters)[-1].reason if len(letters) else "rejected"
        elif consumer.noted != noted:
            reason = consumer.last_note  # applied (or ignored) with a warning: the feed says why
        label = "applied" if outcome == APPLIED else "rejected" if outcome == REJECTED else "ignored"
        instances: list[tuple[str, Any]] = []
        nodes: list[tuple[str, Any]] = []
        if outcome == APPLIED and uuid:
            after = store.instances.get(uuid)
            if after is not None:
                instances.append((uuid, store.instance_record(after)))
            elif before is not None:
                instances.append((uuid, None))
            node_after = store.nodes.get(uuid)
            if node_after is not None:
                nodes.append((uuid, store.node_record(node_after)))
            elif node_before is not None:
                nodes.append((uuid, None))
            hosts = {h for h in (host, before_host, after.host if after is not None else None) if h}
            for h in sorted(hosts):
                node = store.nodes_by_host.get(h)
                if node is not None and node.uuid != uuid:
                    nodes.append((node.uuid, store.node_record(node)))
        elif outcome == APPLIED and host:
            node = store.nodes_by_host.get(host)
            if node is not None:
                nodes.append((node.uuid, store.node_record(node)))
        note = NotificationNote(
            event_type=head.event_type or event_type or "-",
            outcome=label,
            publisher_id=head.publisher_id,
            message_id=head.message_id,
            timestamp=head.timestamp,
            instance=uuid if (before is not None or uuid in store.instances) else None,
            host=host or before_host,
            reason=reason,
        )
        self.state.record(note, nodes=nodes, instances=instances, seconds=seconds)
        return outcome, reason

    async def handle(self, delivery: Delivery) -> None:
        """Apply a delivery, then acknowledge it; what the model rejects goes to the bus's dead letters."""
        # the model decodes the notification itself: the delivery is never decoded a second time
        outcome, reason = self.ingest(delivery.document, legacy=delivery.legacy)
        if outcome == REJECTED:
            await delivery.reject(reason or "rejected by the model")
        else:
            await delivery.accept()

    async def consume(self, subscriber: Subscriber) -> None:
        """Apply every delivery until cancelled (the subscriber must already be started)."""
        try:
            async for delivery in subscriber:
                await self.handle(delivery)
            self.state.consumer_error = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.state.consumer_error = f"{type(exc).__name__}: {exc}"
            log.exception("the bus consumer stopped", extra={"error": str(exc)})
            raise
        finally:
            task = self._relist_task
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    # --- gaps in the stream: re-list, as an informer does after its watch broke ----------------------

    def follow(self, subscriber: Subscriber, fetch: Callable[[], Snapshot] | None) -> None:
        """Re-list ``fetch()`` whenever ``subscriber`` reports a gap; show its problems in the health.

        Call before ``subscriber.start()``. A subscriber that takes over from an earlier one is marked
        ``resumed``: if the bus lost the group's queue in between, that is a gap too.
        """
        subscriber.resumed = self._followed > 0
        self._followed += 1
        self._fetch = fetch
        subscriber.on_gap = self._gap
        self.state.bus_probe = lambda: subscriber.problem

    def _gap(self, reason: str) -> None:
        self.state.record_gap(reason, relist=self._fetch is not None)
        if self._fetch is None:
            log.warning("notifications may have been missed and there is no source to re-list from: %s", reason,
                        extra={"gap": reason})
            return
        self._relist_wanted = True
        if self._relist_task is None or self._relist_task.done():
            self._relist_task = asyncio.get_running_loop().create_task(self._relist(self._fetch),
                                                                       name="novawatch-model-relist")

    async def _relist(self, fetch: Callable[[], Snapshot]) -> None:
        """Audit against the source until one audit succeeds after the last gap (gaps coming meanwhile
        ask for another: the audit under way may have listed before they closed)."""
        delay, most = RELIST_RETRY
        while self._relist_wanted:
            self._relist_wanted = False
            repaired = await self.audit_once(fetch)
            error = self.state.audit_error
            self.state.record_relist(repaired, error=error)
            if error is not None:
                self._relist_wanted = True
                await asyncio.sleep(delay)
                delay = min(most, delay * 2)

    # --- audit ------------------------------------------------------------------------------------

    async def audit_once(self, fetch: Any) -> int:
        """Audit against ``fetch()`` (a snapshot of the source, fetched off the loop) and repair.

        An entity counts as drifted when it differs in two looks ``AUDIT_CONFIRM_DELAY`` apart: a change
        whose notification is still on its way is not drift. Returns the number repaired.
        """
        async with self._audit_lock:
            try:
                async with self.source_lock:
                    first = await asyncio.to_thread(fetch)
                suspects = {(d.kind, d.uuid) for d in audit(self.cluster, SnapshotSource(first))}
                confirmed: list[Drift] = []
                if suspects:
                    await asyncio.sleep(AUDIT_CONFIRM_DELAY)
                    async with self.source_lock:
                        second = SnapshotSource(await asyncio.to_thread(fetch))
                    confirmed = [d for d in audit(self.cluster, second) if (d.kind, d.uuid) in suspects]
                    self._repair(second, confirmed)
            except Exception as exc:
                self.state.record_audit(0, error=f"{type(exc).__name__}: {exc}")
                log.warning("audit failed: %s", exc, extra={"error": str(exc)})
                return 0
            self.state.record_audit(len(confirmed))
            if confirmed:
                log.info("audit repaired %d drifted entities", len(confirmed),
                         extra={"drift": [d.describe() for d in confirmed[:20]]})
            return len(confirmed)

    def _repair(self, source: SnapshotSource, drift: list[Drift]) -> None:
        store = self.cluster.store
        hosts: set[str] = set()
        for d in drift:
            if d.kind == "instance":
                old = store.instances.get(d.uuid)
                if old is not None and old.host:
                    hosts.add(old.host)
            else:
                old_node = store.nodes.get(d.uuid)
                if old_node is not None:
                    hosts.add(old_node.host)
        repair(self.cluster, source, drift)
        for d in drift:
            if d.kind == "instance":
                inst = store.instances.get(d.uuid)
                self.state.publish_instance(d.uuid, None if inst is None else store.instance_record(inst))
                if inst is not None and inst.host:
                    hosts.add(inst.host)
            else:
                node = store.nodes.get(d.uuid)
                self.state.publish_node(d.uuid, None if node is None else store.node_record(node))
        for h in sorted(hosts):
            node = store.nodes_by_host.get(h)
            if node is not None:
                self.state.publish_node(node.uuid, store.node_record(node))

    async def audit_forever(self, fetch: Any, interval: float) -> None:
        """Audit every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await self.audit_once(fetch)
