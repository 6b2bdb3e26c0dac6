"""``service.*``: a Nova service (nova-compute, nova-scheduler, ...) was created, changed or deleted."""

from __future__ import annotations

from datetime import datetime

import msgspec

from novawatch.notifications.catalog.table import event
from novawatch.objects import Payload, Since
from novawatch.objects.fields import UUID, Int32


class ServiceStatusPayload(Payload, kw_only=True):
    VERSION = "1.1"
    SCHEMA = {
        "host": ("service", "host"),
        "binary": ("service", "binary"),
        "topic": ("service", "topic"),
        "report_count": ("service", "report_count"),
        "disabled": ("service", "disabled"),
        "disabled_reason": ("service", "disabled_reason"),
        "availability_zone": ("service", "availability_zone"),
        "last_seen_up": ("service", "last_seen_up"),
        "forced_down": ("service", "forced_down"),
        "version": ("service", "version"),
        "uuid": ("service", "uuid"),
    }
    SINCE = {"uuid": Since(1, default=None)}

    availability_zone: str | None
    binary: str
    disabled: bool
    disabled_reason: str | None
    forced_down: bool
    host: str
    last_seen_up: datetime | None
    report_count: Int32
    topic: str | None
    uuid: UUID | msgspec.UnsetType | None = msgspec.UNSET
    version: Int32


event("service.create", ServiceStatusPayload, source="nova-compute")
event("service.update", ServiceStatusPayload, source="nova-compute")
event("service.delete", ServiceStatusPayload, source="nova-compute")
