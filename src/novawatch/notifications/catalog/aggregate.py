"""``aggregate.*``: host aggregates created, changed, deleted, and their image pre-caching."""

from __future__ import annotations

from novawatch.notifications.catalog.table import event
from novawatch.objects import Payload
from novawatch.objects.fields import UUID, Count32, Int32


class AggregatePayload(Payload, kw_only=True):
    """A host aggregate: its hosts and metadata."""

    VERSION = "1.1"
    SCHEMA = {name: ("aggregate", name) for name in ("id", "uuid", "name", "hosts", "metadata")}

    # Null in aggregate.create.start: the database has not given it one yet (nullable since 1.1).
    id: Int32 | None
    uuid: UUID
    name: str
    hosts: list[str] | None
    metadata: dict[str, str] | None


class AggregateCachePayload(Payload, kw_only=True):
    """Progress of pre-caching images on the hosts of an aggregate: one host done, ``index`` of ``total``."""

    VERSION = "1.0"
    SCHEMA = {"id": ("aggregate", "id"), "uuid": ("aggregate", "uuid"), "name": ("aggregate", "name")}

    id: Int32
    uuid: UUID
    name: str
    host: str
    images_cached: list[str]
    images_failed: list[str]
    index: Count32
    total: Count32


for _action in ("create", "delete", "add_host", "remove_host", "update_metadata", "update_prop", "cache_images"):
    for _phase in ("start", "end"):
        event(f"aggregate.{_action}.{_phase}", AggregatePayload, source="nova-api")
event("aggregate.cache_images.progress", AggregateCachePayload, source="nova-conductor")
