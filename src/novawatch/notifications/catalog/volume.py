"""``volume.usage``: read and write counters of a volume attached to an instance."""

from __future__ import annotations

from datetime import datetime

from novawatch.notifications.catalog.table import event
from novawatch.objects import Payload
from novawatch.objects.fields import UUID, Int64


class VolumeUsagePayload(Payload, kw_only=True):
    """The I/O counters of one volume of one instance."""

    VERSION = "1.0"
    SCHEMA = {
        name: ("vol_usage", name)
        for name in (
            "volume_id", "project_id", "user_id", "availability_zone", "instance_uuid", "last_refreshed",
            "reads", "read_bytes", "writes", "write_bytes",
        )
    }

    volume_id: UUID
    project_id: str | None
    user_id: str | None
    availability_zone: str | None
    instance_uuid: UUID | None
    last_refreshed: datetime | None
    reads: Int64
    read_bytes: Int64
    writes: Int64
    write_bytes: Int64


event("volume.usage", VolumeUsagePayload)
