"""The model service's Prometheus metrics, counted on the apply path with plain integers.

Counting a notification is a dictionary increment and a bisection: the Prometheus families are built
only when ``/metrics`` is scraped (:class:`Metrics` is a collector of its own registry), so a busy
consumer pays nothing for the metric objects' locks and label look-ups. Several services can live in one
process: each has its own registry.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from novawatch.model.live.summary import EDGES, RESOURCES, Summary
from novawatch.notifications.catalog import spec

#: Upper bounds (seconds) of the apply-time histogram's buckets.
APPLY_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.1, 1.0)


def metric_label(event_type: str) -> str:
    """The ``event_type`` label: unknown event types come from the wire, so they share one label value and
    hostile input cannot create unbounded metric series."""
    return event_type if spec(event_type) is not None else "unknown"


class Metrics:
    """Counters and gauges of one model service, collected into Prometheus text on demand."""

    def __init__(self) -> None:
        #: (event_type label, outcome label) -> notifications consumed.
        self.notifications: dict[tuple[str, str], int] = {}
        self._buckets = [0] * (len(APPLY_BUCKETS) + 1)
        self._apply_sum = 0.0
        self.drift: float = 0.0
        self.lag: float = 0.0
        self.nodes = 0
        self.instances = 0
        self.watch_seq = 0
        #: kind -> count of notifications applied with a note (see docs/model.md).
        self.noted: dict[str, int] = {}
        #: The capacity totals, when the service keeps them (the view's).
        self.summary: Summary | None = None
        #: Called before each scrape to refresh the gauges (the service's health check).
        self.refresh: Callable[[], object] | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)

    def count(self, event_type: str, outcome: str) -> None:
        """One notification consumed, with its outcome label (applied, ignored, rejected)."""
        key = (metric_label(event_type), outcome)
        self.notifications[key] = self.notifications.get(key, 0) + 1

    def observe_apply(self, seconds: float) -> None:
        """How long one notification took to decode, apply and publish."""
        self._buckets[bisect_left(APPLY_BUCKETS, seconds)] += 1
        self._apply_sum += seconds

    def collect(self) -> Iterator[Metric]:
        """The Prometheus families (called by the registry when scraped)."""
        if self.refresh is not None:
            self.refresh()
        counted = CounterMetricFamily("novawatch_notifications", "Notifications consumed by the model, by event "
                                      "type and outcome", labels=["event_type", "outcome"])
        for (event_type, outcome), value in sorted(self.notifications.items()):
            counted.add_metric([event_type, outcome], value)
        yield counted
        cumulative, buckets = 0, []
        for bound, value in zip((*APPLY_BUCKETS, float("inf")), self._buckets, strict=True):
            cumulative += value
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        yield HistogramMetricFamily("novawatch_apply_seconds", "Time to decode, apply and publish one notification",
                                    buckets=buckets, sum_value=self._apply_sum)
        yield GaugeMetricFamily("novawatch_model_drift", "Entities that differed from the source at the last audit",
                                value=self.drift)
        yield GaugeMetricFamily("novawatch_model_lag_seconds",
                                "Age of the newest applied notification's timestamp when it was applied",
                                value=self.lag)
        yield GaugeMetricFamily("novawatch_model_nodes", "Nodes in the model", value=self.nodes)
        yield GaugeMetricFamily("novawatch_model_instances", "Instances in the model", value=self.instances)
        yield GaugeMetricFamily("novawatch_watch_seq", "Sequence number of the newest change", value=self.watch_seq)
        noted = GaugeMetricFamily(
            "novawatch_notifications_noted",
            "Notifications applied with a note, by kind (future_timestamps: too far ahead of the clock, ordered by "
            "arrival; reused_ids: a message id reused for other content); counts since start", labels=["kind"])
        for kind, value in sorted(self.noted.items()):
            noted.add_metric([kind], value)
        yield noted
        if self.summary is not None:
            yield from capacity_metrics(self.summary)


def capacity_metrics(summary: Summary) -> Iterator[Metric]:
    """The capacity figures of ``GET /v1/summary`` as gauges (the Grafana dashboard's, docs/grafana)."""
    labels = ["resource", "scope"]
    capacity = GaugeMetricFamily("novawatch_capacity", "Capacity of the nodes (scope all, or schedulable: up and "
                                 "enabled); resource vcpus, ram_mb or disk_gb", labels=labels)
    used = GaugeMetricFamily("novawatch_used", "Used by instances on the nodes, by resource and scope", labels=labels)
    free = GaugeMetricFamily("novawatch_free", "Capacity minus used, by resource and scope", labels=labels)
    for scope, totals in (("all", summary.all), ("schedulable", summary.schedulable)):
        for i, (name, _, _) in enumerate(RESOURCES):
            capacity.add_metric([name, scope], totals.capacity[i])
            used.add_metric([name, scope], totals.used[i])
            free.add_metric([name, scope], totals.capacity[i] - totals.used[i])
    yield capacity
    yield used
    yield free
    hosts = GaugeMetricFamily("novawatch_hosts", "Nodes by state (up, down), status (enabled, disabled), "
                              "schedulable (up and enabled) and total", labels=["group"])
    for group, value in sorted(summary.hosts.items()):
        hosts.add_metric([group], value)
    yield hosts
    spread = GaugeMetricFamily("novawatch_hosts_by_utilisation", "Nodes by utilisation of a resource, in tenths "
                               "(bucket 0-10 ... 90-100; over 100 % counts in the last)", labels=["resource", "bucket"])
    for name, counts in sorted(summary.histogram.items()):
        for i, value in enumerate(counts):
            spread.add_metric([name, f"{EDGES[i]}-{EDGES[i + 1]}"], value)
    yield spread
