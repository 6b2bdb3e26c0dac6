"""Legacy notifications whose event type Nova also sends versioned, with a plain dict payload.

Nova 34 sends ``scheduler.select_destinations.*``, ``aggregate.create/delete.*``, ``keypair.*`` and
``volume.usage`` twice when ``notification_format = both``: a versioned one on ``versioned_notifications``
and a legacy one, under the same event type, on ``notifications``. The decoder tells them apart by the
topic when it knows it, else by the payload's shape (no ``nova_object`` envelope). The data model needs
neither; they are here so that what Nova sends is recognised, not rejected. Keys not listed are ignored.
"""

from __future__ import annotations

from typing import Any

import msgspec

from novawatch.notifications.catalog.table import shared_legacy_event
from novawatch.objects.fields import Int32, Int64

_UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


class LegacyRequestSpecPayload(msgspec.Struct, kw_only=True):
    """``scheduler.select_destinations.*``: the request spec as Nova's legacy request spec dict."""

    request_spec: dict[str, Any]


class LegacyAggregatePayload(msgspec.Struct, kw_only=True):
    """``aggregate.create/delete.*``: the changes Nova is making (``aggregate_id`` once it has one)."""

    aggregate_id: Int32 | Unset | None = _UNSET
    name: str | Unset | None = _UNSET
    uuid: str | Unset | None = _UNSET
    meta_data: dict[str, Any] | Unset | None = _UNSET


class LegacyKeypairPayload(msgspec.Struct, kw_only=True):
    """``keypair.create/import/delete.*``: whose keypair, by name."""

    tenant_id: str | None
    user_id: str | None
    key_name: str


class LegacyVolumeUsagePayload(msgspec.Struct, kw_only=True):
    """``volume.usage``: a volume's I/O counters since they were last refreshed."""

    volume_id: str
    tenant_id: str | None
    user_id: str | None
    availability_zone: str | None
    instance_id: str | None
    last_refreshed: str
    reads: Int64
    read_bytes: Int64
    writes: Int64
    write_bytes: Int64


for _phase in ("start", "end"):
    shared_legacy_event(f"scheduler.select_destinations.{_phase}", LegacyRequestSpecPayload, source="scheduler")
    for _action in ("create", "delete"):
        shared_legacy_event(f"aggregate.{_action}.{_phase}", LegacyAggregatePayload, source="aggregate")
    for _action in ("create", "import", "delete"):
        shared_legacy_event(f"keypair.{_action}.{_phase}", LegacyKeypairPayload, source="api")
shared_legacy_event("volume.usage", LegacyVolumeUsagePayload, source="compute")
