"""``metrics.update``: a compute node's monitor metrics (CPU times and percentages, NUMA memory bandwidth)."""

from __future__ import annotations

from datetime import datetime

from novawatch.notifications.catalog.table import event
from novawatch.objects import NovaObject, Payload, register
from novawatch.objects.fields import Int64, IPAddress, MonitorMetricType, check_ip


@register
class MetricPayload(Payload, kw_only=True):
    """One metric reading."""

    VERSION = "1.0"
    SCHEMA = {name: ("monitor_metric", name) for name in ("name", "value", "numa_membw_values", "timestamp", "source")}

    name: MonitorMetricType
    value: Int64
    numa_membw_values: dict[str, Int64] | None
    timestamp: datetime
    source: str


class MetricsPayload(Payload, kw_only=True):
    """The readings of one compute node."""

    VERSION = "1.0"

    host: str
    # A StringField in Nova; every value it sends is the node's IP address.
    host_ip: IPAddress
    nodename: str
    metrics: list[NovaObject[MetricPayload]]

    def __post_init__(self) -> None:
        check_ip(self.host_ip)


event("metrics.update", MetricsPayload)
