"""The model service's state as its readers see it: the view, the change feed, recent notifications,
counters, health, and the metrics.

The runtime (:mod:`novawatch.model.live.runtime`) hears every update of the model and calls
:meth:`ModelState.publish` for each entity changed and :meth:`ModelState.record` once per notification;
the HTTP API and the dashboard only read.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec

from novawatch.bus.base import Backlog
from novawatch.model.apply import Stats
from novawatch.model.changes import INSTANCE, Change
from novawatch.model.live.feed import ChangeFeed
from novawatch.model.live.history import HostSeries, InstanceHistory
from novawatch.model.live.metrics import Metrics
from novawatch.model.live.series import Series
from novawatch.model.live.view import StoreView
from novawatch.model.outcome import LABELS
from novawatch.notifications.message import parse_timestamp
from novawatch.redact import mask
from novawatch.snapshot import InstanceRecord, NodeRecord


class CheckpointSection(NamedTuple):
    """A named part of the model service's checkpoints: ``save()`` runs on the event loop at each write and
    returns a copy of the state (anything msgspec encodes, no reference to what changes later); ``load(value)``
    gets it back at start (decoded as builtins) when the checkpoint restored has it."""

    save: Callable[[], Any]
    load: Callable[[Any], None]


class NotificationNote(msgspec.Struct, kw_only=True):
    """One consumed notification as the feed and ``/v1/notifications`` show it."""

    seq: int = 0
    event_type: str
    outcome: str  # applied | ignored | rejected
    publisher_id: str | None = None
    message_id: str | None = None
    timestamp: str | None = None  # the notification's own time
    received_at: str = ""  # when the model handled it (ISO 8601, UTC)
    instance: str | None = None
    host: str | None = None
    reason: str | None = None


log = logging.getLogger("novawatch.model.live.state")


def node_json(node: NodeRecord) -> dict[str, Any]:
    """A node as the API returns it: the snapshot fields plus what is free."""
    out: dict[str, Any] = msgspec.to_builtins(node)
    out["free_vcpus"] = node.vcpus - node.vcpus_used
    out["free_ram_mb"] = node.memory_mb - node.memory_mb_used
    out["free_disk_gb"] = node.local_gb - node.local_gb_used
    return out


def instance_json(inst: InstanceRecord) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(inst)
    return out


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Retention(msgspec.Struct, kw_only=True, frozen=True):
    """How much history the service keeps (``[model]`` keys of the same names; docs/api.md)."""

    series_window: float = 7 * 86400.0
    series_resolution: float = 10.0
    history_per_instance: int = 50
    history_total: int = 100000
    host_series_points: int = 120
    host_series_step: float = 60.0


class ModelState:
    """Shared by the consumer (writer) and the API (reader)."""

    def __init__(self, view: StoreView, *, recent: int = 200, watch_buffer: int = 10000,
                 retention: Retention | None = None) -> None:
        self.view = view
        self.feed = ChangeFeed(watch_buffer)
        keep = retention or Retention()
        #: The overview figures over time (sampled by :meth:`sample`).
        self.series = Series(keep.series_window, keep.series_resolution)
        #: What changed each instance (the runtime subscribes it to the model's changes).
        self.history = InstanceHistory(keep.history_per_instance, keep.history_total, seq=lambda: self.feed.seq)
        #: Each node's usage over time.
        self.host_series = HostSeries(keep.host_series_points, keep.host_series_step)
        self._sampled: tuple[float, int, int] | None = None  # (time, applied, rejected) at the last sample
        self.recent: deque[NotificationNote] = deque(maxlen=max(1, recent))
        self.metrics = Metrics()
        self.metrics.summary = view.summary
        self.metrics.refresh = self.health
        self.counts: dict[str, int] = dict.fromkeys(LABELS, 0)
        self.started_at = time.time()
        self.bootstrapped_at: float | None = None
        self.last_applied_at: float | None = None
        self.lag_seconds: float | None = None
        self.last_audit_at: float | None = None
        self.drift: int | None = None
        self.audit_error: str | None = None
        self.consumer_error: str | None = None
        self.source: str | None = None
        #: The last failure of a source lookup or refresh (the audit's has its own), None once one works.
        self.source_error: str | None = None
        #: Documents the source listed but could not convert (skipped at bootstrap), each named.
        self.source_problems: list[str] = []
        #: What the source warned about at bootstrap (e.g. a user without the admin role).
        self.source_warnings: list[str] = []
        self.bus: str | None = None
        #: what keeps the bus subscriber from consuming, asked at each health check
        self.bus_probe: Callable[[], str | None] | None = None
        #: where the subscriber stands on the bus (its position, the bus's last, how far behind), asked anew
        self.bus_backlog: Callable[[], Awaitable[Backlog]] | None = None
        self.gaps = 0
        self.last_gap: str | None = None
        self.last_gap_at: float | None = None
        self.unrepaired_gap = False  # a gap with no source to re-list from
        self.relists = 0
        self.relist_pending = False
        self.last_relist_at: float | None = None
        self.last_relist_repaired: int | None = None
        self.relist_error: str | None = None
        #: The consumer's counts (for the notes on notifications), when a consumer is attached.
        self.stats: Callable[[], Stats] | None = None
        #: The checkpoints' status (:meth:`novawatch.model.live.checkpoints.Checkpoints.status`), when kept.
        self.checkpoint_status: Callable[[], dict[str, Any]] | None = None
        self.restored = False  # the model came from a checkpoint, not from listing the source
        #: Named parts other parts of the service keep in its checkpoints (:meth:`checkpoint_section`).
        self.checkpoint_sections: dict[str, CheckpointSection] = {}

    def checkpoint_section(self, name: str, save: Callable[[], Any], load: Callable[[Any], None]) -> None:
        """Keep ``name`` in the service's checkpoints (when it keeps any): register before the service starts,
        e.g. where a router is made; see :class:`CheckpointSection` and docs/model.md "Checkpoints"."""
        self.checkpoint_sections[name] = CheckpointSection(save, load)

    # --- writer side --------------------------------------------------------------------------

    def record(self, note: NotificationNote, *, seconds: float | None = None) -> None:
        """One consumed notification (after the changes it made were published): count it, keep it."""
        self.counts[note.outcome] = self.counts.get(note.outcome, 0) + 1
        self.metrics.count(note.event_type, note.outcome)
        if seconds is not None:
            self.metrics.observe_apply(seconds)
        now = time.time()
        note.received_at = _now_iso()
        if note.outcome == "applied":
            self.last_applied_at = now
            moment = parse_timestamp(note.timestamp) if note.timestamp else None
            if moment is not None:
                self.lag_seconds = max(0.0, now - moment.timestamp())
                self.metrics.lag = self.lag_seconds
        change = self.feed.publish("notification", note.outcome, note.message_id or "", msgspec.to_builtins(note))
        note.seq = change.seq
        self.recent.append(note)
        self.metrics.watch_seq = change.seq

    def publish(self, change: Change) -> None:
        """One entity changed: an upsert (its record as the API shows it) or a delete, on the watch stream."""
        if change.kind == INSTANCE:
            self.publish_instance(change.key, change.new)
        else:
            self.publish_node(change.key, change.new)

    def publish_node(self, uuid: str, node: NodeRecord | None) -> None:
        if node is None:
            self.feed.publish("node", "delete", uuid)
        else:
            self.feed.publish("node", "upsert", uuid, node_json(node))

    def publish_instance(self, uuid: str, inst: InstanceRecord | None) -> None:
        if inst is None:
            self.feed.publish("instance", "delete", uuid)
        else:
            self.feed.publish("instance", "upsert", uuid, instance_json(inst))

    def record_audit(self, drift: int, *, error: str | None = None) -> None:
        """The result of an audit (drift: entities that differed and were repaired)."""
        self.last_audit_at = time.time()
        self.audit_error = error
        if error is None:
            self.drift = drift
            self.metrics.drift = drift
        self.feed.publish("status", "audit", "audit", self.health())

    def note_source_error(self, message: str) -> None:
        """A lookup or refresh failed; logged once per distinct message (a failing source repeats itself)."""
        if message != self.source_error:
            log.warning("source: %s", message)
        self.source_error = message

    def note_source_ok(self) -> None:
        if self.source_error is not None:
            log.info("source answers again")
        self.source_error = None

    def record_gap(self, reason: str, *, relist: bool) -> None:
        """The stream had a gap (``reason``); ``relist``: a re-list against the source follows."""
        self.gaps += 1
        self.last_gap, self.last_gap_at = reason, time.time()
        self.relist_pending = relist
        self.unrepaired_gap = self.unrepaired_gap or not relist
        self.feed.publish("status", "gap", "gap", self.health())

    def record_relist(self, repaired: int, *, error: str | None = None) -> None:
        """A re-list after a gap finished: ``repaired`` entities differed from the source (or it failed)."""
        self.relist_error = error
        if error is None:
            self.relists += 1
            self.relist_pending = False
            self.last_relist_at = time.time()
            self.last_relist_repaired = repaired

    def mark_bootstrapped(self, *, restored: bool = False) -> None:
        """The model is loaded: from the source, or (``restored``) from a checkpoint."""
        self.restored = restored
        self.bootstrapped_at = time.time()
        self.feed.publish("status", "bootstrap", "bootstrap", self.health())

    def sample(self, now: float | None = None) -> dict[str, float | None]:
        """Take one sample of the overview figures into ``series`` (rates over the time since the last)."""
        now = time.time() if now is None else now
        summary = self.view.summary
        values: dict[str, float | None] = {}
        for i, name in enumerate(("vcpus", "ram_mb", "disk_gb")):
            capacity, used = summary.schedulable.capacity[i], summary.schedulable.used[i]
            values[f"{name}_used"] = used
            values[f"{name}_free"] = capacity - used
            values[f"{name}_capacity"] = capacity
        values["hosts_down"] = summary.hosts.get("down", 0)
        values["hosts_disabled"] = summary.hosts.get("disabled", 0)
        values["instances"] = self.view.counts()[1]
        applied, rejected = self.counts.get("applied", 0), self.counts.get("rejected", 0)
        last = self._sampled
        if last is not None and now > last[0]:
            values["applied_rate"] = (applied - last[1]) / (now - last[0])
            values["rejected_rate"] = (rejected - last[2]) / (now - last[0])
        self._sampled = (now, applied, rejected)
        values["lag_seconds"] = self.lag_seconds
        values["drift"] = self.drift
        self.series.add(now, values)
        return values

    def keep_in_checkpoints(self) -> None:
        """Keep the series, the instances' history and the hosts' series in the service's checkpoints."""
        self.checkpoint_section("dashboard.series", self.series.save, lambda v: self.series.load(v, time.time()))
        self.checkpoint_section("dashboard.history", self.history.save, self.history.load)
        self.checkpoint_section("dashboard.host_series", self.host_series.save, self.host_series.load)

    # --- reader side --------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """``GET /v1/summary`` and the watch stream's summary ticks."""
        health = self.health()
        latest = self.series.latest(1)
        rate = None
        if latest:
            rate = latest[0][1][self.series.names.index("applied_rate")]
        return {
            "seq": self.feed.seq,
            "at": time.time(),
            **self.view.summary.json(),
            "instances": health["instances"],
            "model": {"status": health["status"], "applied": health["applied"], "ignored": health["ignored"],
                      "rejected": health["rejected"], "rate": rate, "lag_seconds": health["lag_seconds"],
                      "drift": health["drift"], "gaps": health["gaps"]},
        }


    async def bus_status(self) -> dict[str, Any]:
        """Where the consumer stands on the bus: ``GET /v1/bus`` and ``novawatch model status``."""
        backlog: Backlog | None = None
        note: str | None = None
        if self.bus_backlog is None:
            note = "no bus subscriber yet"
        else:
            try:
                backlog = await self.bus_backlog()
            except Exception as exc:  # the broker went away while asked: say so, the next ask may work
                note = mask(f"could not ask the bus: {type(exc).__name__}: {exc}")
        problem = self.bus_probe() if self.bus_probe is not None else None
        out: dict[str, Any] = {
            "bus": mask(self.bus) if self.bus else None,
            "queue": None, "kind": None, "position": None, "last": None, "behind": None, "broker": None,
            "note": note, "problem": mask(problem) if problem else None,
            "applied": self.counts.get("applied", 0), "gaps": self.gaps,
        }
        if backlog is not None:
            out.update(queue=backlog.queue, kind=backlog.kind, position=backlog.position, last=backlog.last,
                       behind=backlog.behind, broker=mask(backlog.broker) if backlog.broker else None,
                       note=backlog.note)
        out["checkpoint"] = self.checkpoint_status() if self.checkpoint_status is not None else None
        return out

    def health(self) -> dict[str, Any]:
        """Liveness and consistency: lag behind the stream, the last audit, drift, counters."""
        nodes, instances = self.view.counts()
        self.metrics.nodes = nodes
        self.metrics.instances = instances
        now = time.time()
        problems: list[str] = []
        # Health answers without a token: whatever put an error or a URL here, no secret leaves with it.
        if self.consumer_error:
            problems.append(mask(f"consumer: {self.consumer_error}"))
        if self.audit_error:
            problems.append(mask(f"audit: {self.audit_error}"))
        if self.drift:
            problems.append(f"{self.drift} entities drifted at the last audit (repaired)")
        if self.source_error:
            problems.append(mask(f"source: {self.source_error}"))
        problems.extend(mask(f"source: {w}") for w in self.source_warnings)
        if self.source_problems:
            problems.append(mask(f"source: {len(self.source_problems)} documents could not be read and were "
                                 f"skipped, e.g. {self.source_problems[0]}"))
        bus_problem = self.bus_probe() if self.bus_probe is not None else None
        if bus_problem:
            problems.append(f"bus: {bus_problem}")
        if self.relist_pending:
            problems.append(f"re-listing the source after a gap in the stream: {self.last_gap}"
                            + (f" (last attempt: {self.relist_error})" if self.relist_error else ""))
        if self.unrepaired_gap:
            problems.append("notifications may have been missed and there is no source to re-list from "
                            f"(give the model service --compute-url, or use durable queues): {self.last_gap}")
        checkpoint = self.checkpoint_status() if self.checkpoint_status is not None else None
        if checkpoint is not None and checkpoint["error"]:
            problems.append(mask(f"checkpoint: {checkpoint['error']}"))
        stats = self.stats() if self.stats is not None else Stats()
        noted = {"future_timestamps": stats.future_timestamps, "reused_ids": stats.reused_ids}
        self.metrics.noted.update(noted)
        if self.consumer_error or bus_problem:
            status = "failing"
        elif (self.audit_error or self.drift or self.relist_pending or self.unrepaired_gap or self.source_error
              or self.source_problems or self.source_warnings or (checkpoint is not None and checkpoint["error"])):
            status = "degraded"
        else:
            status = "ok"
        return {
            "status": status,
            "problems": problems,
            "seq": self.feed.seq,
            # the watch stream's positions are SEQ.INCARNATION: this run's, new at each start of the service
            "incarnation": self.feed.incarnation,
            "nodes": nodes,
            "instances": instances,
            "applied": self.counts.get("applied", 0),
            "ignored": self.counts.get("ignored", 0),
            "rejected": self.counts.get("rejected", 0),
            **noted,
            "lag_seconds": self.lag_seconds,
            "last_applied_age_seconds": None if self.last_applied_at is None else now - self.last_applied_at,
            "last_audit_age_seconds": None if self.last_audit_at is None else now - self.last_audit_at,
            "drift": self.drift,
            "gaps": self.gaps,
            "last_gap": None if self.last_gap_at is None else {
                "reason": self.last_gap, "age_seconds": now - self.last_gap_at},
            "relists": self.relists,
            "last_relist": None if self.last_relist_at is None else {
                "age_seconds": now - self.last_relist_at, "repaired": self.last_relist_repaired},
            "bootstrapped": self.bootstrapped_at is not None,
            "restored": self.restored,
            "checkpoint": checkpoint,
            "uptime_seconds": now - self.started_at,
            "source": mask(self.source) if self.source else None,
            "source_error": mask(self.source_error) if self.source_error else None,
            "bus": mask(self.bus) if self.bus else self.bus,
        }
