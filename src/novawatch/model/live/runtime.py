"""The running model service: subscribe, bootstrap (list), consume (watch), audit, and publish what changed.

The data model (:mod:`novawatch.model`) applies notifications and says what each one changed (its change
events, :mod:`novawatch.model.changes`); this runtime listens to them and turns each update into events
on the watch stream, a line in the recent-notifications feed, counters and metrics. Nothing here reads
a notification again or compares the store before and after: one parse per message. Everything runs on
one asyncio loop, so the API's reads never race with the applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

from novawatch.bus.base import Delivery, Subscriber
from novawatch.model.apply import Consumer
from novawatch.model.audit import Drift, audit, repair
from novawatch.model.bootstrap import bootstrap
from novawatch.model.changes import AUDIT, INSTANCE, Consumed, Update
from novawatch.model.checkpoint import Checkpoint, restore
from novawatch.model.cluster import ClusterModel
from novawatch.model.live.state import ModelState, NotificationNote, Retention
from novawatch.model.live.view import StoreView
from novawatch.model.ordering import RecentIds, Tombstones
from novawatch.model.outcome import REJECTED
from novawatch.snapshot import Snapshot, SnapshotSource, Source

log = logging.getLogger("novawatch.model.live.runtime")

#: Seconds between the two looks of an audit: an entity counts as drifted only if it differs in both,
#: so that notifications still in flight on the bus are not mistaken for drift.
AUDIT_CONFIRM_DELAY = 1.0

#: Seconds before a failed re-list is tried again (doubling up to the second figure).
RELIST_RETRY = (1.0, 60.0)


def subject(payload: Any) -> tuple[str | None, str | None]:
    """(entity uuid, host) a decoded payload names: an instance's or a node's uuid, and the host."""
    data = getattr(payload, "data", payload)
    uuid = getattr(data, "uuid", None) or getattr(data, "instance_id", None)
    host = getattr(data, "host", None)
    return (uuid if isinstance(uuid, str) else None), (host if isinstance(host, str) else None)


class ModelRuntime:
    """A live model behind the API: ``ingest`` one notification, ``consume`` a bus, ``audit`` a source."""

    def __init__(
        self,
        source: Source | None = None,
        *,
        cluster: ClusterModel | None = None,
        recent: int = 200,
        watch_buffer: int = 10000,
        retention: Retention | None = None,
    ) -> None:
        self.source = source
        # Deferred: the handlers never call the source on the loop; a SourceWorker resolves their wishes.
        self.cluster = cluster if cluster is not None else ClusterModel(source, deferred=source is not None)
        self.consumer = Consumer(self.cluster)
        self.view = StoreView(self.cluster)
        self.state = ModelState(self.view, recent=recent, watch_buffer=watch_buffer, retention=retention)
        self.state.stats = lambda: self.consumer.stats
        self._last: Consumed | None = None
        self._event_type_hint: str | None = None
        self.cluster.changes.subscribe(self._publish)
        # after the feed's publisher: an entry's seq is the watch stream's position at its change
        self.cluster.changes.subscribe(self.state.history.update)
        self.cluster.changes.subscribe(self.state.host_series.update)
        self._audit_lock = asyncio.Lock()
        self._fetch: Callable[[], Snapshot] | None = None
        self._followed = 0
        self._relist_wanted = False
        self._relist_task: asyncio.Task[None] | None = None
        #: One source call at a time (audits, lookups, refreshes share one HTTP session).
        self.source_lock = asyncio.Lock()
        #: The bus position of the last delivery handled (everything before it was too), and what kind of
        #: bus it is: what a checkpoint covers.
        self.position: int | None = None
        self.kind: str | None = None

    def _publish(self, update: Update) -> None:
        """Listener of the model: each change to the watch stream, each notification to the feed and counters."""
        state = self.state
        if update.reset:
            store = self.cluster.store
            for node in store.nodes.values():
                state.publish_node(node.uuid, store.node_record(node))
            state.host_series.seed(store.node_record(n, reported=False) for n in store.nodes.values())
            return
        for change in update.changes:
            state.publish(change)
        consumed = update.notification
        if consumed is not None:
            self._last = consumed
            state.record(self._note(consumed, update))

    def _note(self, consumed: Consumed, update: Update) -> NotificationNote:
        """The feed's line for a notification: what it names, as the model knows it."""
        uuid, host = subject(consumed.payload) if consumed.payload is not None else (None, None)
        store = self.cluster.store
        known = None
        if uuid is not None:
            inst = store.instances.get(uuid)
            before = next((c.old for c in update.changes if c.kind == INSTANCE and c.key == uuid), None)
            if inst is not None or before is not None:
                known = uuid
                if host is None:
                    host = before.host if before is not None else inst.host if inst is not None else None
        return NotificationNote(
            event_type=consumed.event_type or self._event_type_hint or "-", outcome=consumed.outcome.label,
            publisher_id=consumed.publisher_id, message_id=consumed.message_id, timestamp=consumed.timestamp,
            instance=known, host=host, reason=consumed.reason,
        )

    def publish(self, cause: str) -> None:
        """Tell the listeners what changed outside a notification (a lookup, a refresh, a repair)."""
        self.cluster.changes.commit(cause)

    # --- list -------------------------------------------------------------------------------------

    def load(self, snapshot: Snapshot) -> None:
        """Bootstrap from a snapshot (already fetched); every node goes on the watch stream."""
        with self.cluster.changes.reloading():
            bootstrap(self.cluster, SnapshotSource(snapshot))
        # What bootstrap loaded lives as long as the model: keep it out of the cyclic collector's full
        # passes, which would otherwise walk every instance and stall queries for hundreds of ms.
        gc.collect()
        gc.freeze()
        self.state.mark_bootstrapped()

    def restore(self, checkpoint: Checkpoint) -> None:
        """Load the (empty) model from a checkpoint read back; the bus position is the checkpoint's until
        the first delivery. :class:`~novawatch.model.checkpoint.CheckpointError` when it does not fit."""
        with self.cluster.changes.reloading():
            restore(self.cluster, self.consumer.recent, checkpoint)
        # As after a bootstrap, but without a full collection first: a restore makes no cyclic garbage, and
        # what is frozen is still freed when its last reference goes (the body read, once restored).
        gc.freeze()
        self.position, self.kind = checkpoint.header.position, checkpoint.header.kind
        self.state.mark_bootstrapped(restored=True)

    def clear(self) -> None:
        """Empty the model again (a restore that failed half-way)."""
        with self.cluster.changes.reloading():
            cluster = self.cluster
            for uuid in list(cluster.store.instances):
                cluster.store.remove_instance(uuid)
            for uuid in list(cluster.store.nodes):
                cluster.store.remove_node(uuid)
            cluster.dead_instances = Tombstones(cluster.dead_instances.capacity)
            cluster.dead_nodes = Tombstones(cluster.dead_nodes.capacity)
            cluster.pending_services.clear()
            cluster.volume_journal.clear()
            cluster.wanted_hosts.clear()
            cluster.wanted_instances.clear()
            self.consumer.recent = RecentIds(self.consumer.recent.capacity)

    # --- watch ------------------------------------------------------------------------------------

    def ingest(
        self, body: bytes | str, event_type: str | None = None, legacy: bool | None = None
    ) -> tuple[int, str | None]:
        """Apply one notification (its changes are published as the model makes them); (outcome, reason when
        rejected or noted).

        ``legacy`` is what the topic it came on says of its format (None when unknown).
        """
        self._last = None
        self._event_type_hint = event_type
        started = time.perf_counter()
        outcome = self.consumer.process(body, legacy=legacy)
        self.state.metrics.observe_apply(time.perf_counter() - started)
        last = self._last
        return outcome, last.reason if last is not None else None

    async def handle(self, delivery: Delivery) -> None:
        """Apply a delivery, then acknowledge it; what the model rejects goes to the bus's dead letters."""
        # the model decodes the notification itself: the delivery is never decoded a second time
        outcome, reason = self.ingest(delivery.document, legacy=delivery.legacy)
        if outcome == REJECTED:
            await delivery.reject(reason or "rejected by the model")
        else:
            await delivery.accept()
        self.position = delivery.position

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
        self.kind = subscriber.kind
        self._fetch = fetch
        subscriber.on_gap = self._gap
        self.state.bus_probe = lambda: subscriber.problem

    def gap(self, reason: str) -> None:
        """Notifications may have been missed (``reason``): re-list the source, as after a gap in the stream."""
        log.info("%s: re-listing the source", reason, extra={"gap": reason})
        self._gap(reason)

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
        repair(self.cluster, source, drift)
        self.publish(AUDIT)

    async def sample_forever(self) -> None:
        """Sample the overview figures into the series every ``series_resolution`` seconds until cancelled."""
        interval = self.state.series.resolution
        while True:
            self.state.sample()
            await asyncio.sleep(interval)

    async def audit_forever(self, fetch: Any, interval: float) -> None:
        """Audit every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await self.audit_once(fetch)
