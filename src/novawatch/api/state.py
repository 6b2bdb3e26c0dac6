"""The model service's state as the API shows it: the view, the change feed, recent notifications,
counters, health, and the Prometheus metrics derived from them.

Whatever consumes the notification stream calls :meth:`ModelState.record` once per notification
with the outcome and the entities it changed; the API and the dashboard only read.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from novawatch.api.feed import ChangeFeed
from novawatch.api.view import StoreView
from novawatch.model.apply import Stats
from novawatch.notifications.catalog import spec
from novawatch.notifications.message import parse_timestamp
from novawatch.snapshot import InstanceRecord, NodeRecord

OUTCOMES = ("applied", "ignored", "rejected")


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


log = logging.getLogger("novawatch.api.state")

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


class Metrics:
    """Prometheus metrics in a registry of their own (several services can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.notifications = Counter(
            "novawatch_notifications",
            "Notifications consumed by the model, by event type and outcome",
            ["event_type", "outcome"],
            registry=self.registry,
        )
        self.apply_seconds = Histogram(
            "novawatch_apply_seconds",
            "Time to decode and apply one notification",
            buckets=(1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.1, 1.0),
            registry=self.registry,
        )
        self.drift = Gauge("novawatch_model_drift", "Entities that differed from the source at the last audit",
                           registry=self.registry)
        self.lag = Gauge("novawatch_model_lag_seconds",
                         "Age of the newest applied notification's timestamp when it was applied",
                         registry=self.registry)
        self.nodes = Gauge("novawatch_model_nodes", "Nodes in the model", registry=self.registry)
        self.instances = Gauge("novawatch_model_instances", "Instances in the model", registry=self.registry)
        self.watch_seq = Gauge("novawatch_watch_seq", "Sequence number of the newest change", registry=self.registry)
        self.noted = Gauge(
            "novawatch_notifications_noted",
            "Notifications accepted with a note, by kind (warnings: unknown enum values; future_timestamps: "
            "ordered by arrival; reused_ids: a message id reused for other content); counts since start",
            ["kind"],
            registry=self.registry,
        )


def _label(event_type: str) -> str:
    # Unknown event types come from the wire: label them as one value so that hostile input
    # cannot create unbounded metric series.
    return event_type if spec(event_type) is not None else "unknown"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class ModelState:
    """Shared by the consumer (writer) and the API (reader)."""

    def __init__(self, view: StoreView, *, recent: int = 200, watch_buffer: int = 10000) -> None:
        self.view = view
        self.feed = ChangeFeed(watch_buffer)
        self.recent: deque[NotificationNote] = deque(maxlen=max(1, recent))
        self.metrics = Metrics()
        self.counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
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
        self.bus: str | None = None
        #: The consumer's counts (for the notes on notifications), when a consumer is attached.
        self.stats: Callable[[], Stats] | None = None

    # --- writer side --------------------------------------------------------------------------

    def record(
        self,
        note: NotificationNote,
        *,
        nodes: Sequence[tuple[str, NodeRecord | None]] = (),
        instances: Sequence[tuple[str, InstanceRecord | None]] = (),
        seconds: float | None = None,
    ) -> None:
        """One consumed notification: count it, publish the changed entities (None: deleted), keep it."""
        self.counts[note.outcome] = self.counts.get(note.outcome, 0) + 1
        self.metrics.notifications.labels(_label(note.event_type), note.outcome).inc()
        if seconds is not None:
            self.metrics.apply_seconds.observe(seconds)
        now = time.time()
        note.received_at = _now_iso()
        if note.outcome == "applied":
            self.last_applied_at = now
            moment = parse_timestamp(note.timestamp) if note.timestamp else None
            if moment is not None:
                self.lag_seconds = max(0.0, now - moment.timestamp())
                self.metrics.lag.set(self.lag_seconds)
        for uuid, inst in instances:
            self.publish_instance(uuid, inst)
        for uuid, node in nodes:
            self.publish_node(uuid, node)
        change = self.feed.publish("notification", note.outcome, note.message_id or "", msgspec.to_builtins(note))
        note.seq = change.seq
        self.recent.append(note)
        self.metrics.watch_seq.set(change.seq)

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
            self.metrics.drift.set(drift)
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

    def mark_bootstrapped(self) -> None:
        self.bootstrapped_at = time.time()
        self.feed.publish("status", "bootstrap", "bootstrap", self.health())

    # --- reader side --------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Liveness and consistency: lag behind the stream, the last audit, drift, counters."""
        nodes, instances = self.view.counts()
        self.metrics.nodes.set(nodes)
        self.metrics.instances.set(instances)
        now = time.time()
        problems: list[str] = []
        if self.consumer_error:
            problems.append(f"consumer: {self.consumer_error}")
        if self.audit_error:
            problems.append(f"audit: {self.audit_error}")
        if self.drift:
            problems.append(f"{self.drift} entities drifted at the last audit (repaired)")
        if self.source_error:
            problems.append(f"source: {self.source_error}")
        if self.source_problems:
            problems.append(f"source: {len(self.source_problems)} documents could not be read and were skipped, "
                            f"e.g. {self.source_problems[0]}")
        stats = self.stats() if self.stats is not None else Stats()
        noted = {"warnings": stats.warnings, "future_timestamps": stats.future_timestamps,
                 "reused_ids": stats.reused_ids}
        for kind, count in noted.items():
            self.metrics.noted.labels(kind).set(count)
        if self.consumer_error:
            status = "failing"
        elif self.audit_error or self.drift or self.source_error or self.source_problems:
            status = "degraded"
        else:
            status = "ok"
        return {
            "status": status,
            "problems": problems,
            "seq": self.feed.seq,
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
            "bootstrapped": self.bootstrapped_at is not None,
            "uptime_seconds": now - self.started_at,
            "source": self.source,
            "source_error": self.source_error,
            "bus": self.bus,
        }
