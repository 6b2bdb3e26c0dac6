"""``compute_task.*.error``: the conductor failed to build, migrate or rebuild an instance."""

from __future__ import annotations

from novawatch.notifications.catalog.common import ExceptionPayload
from novawatch.notifications.catalog.request_spec import RequestSpecPayload
from novawatch.notifications.catalog.table import event
from novawatch.objects import NovaObject, Payload
from novawatch.objects.fields import UUID, InstanceState


class ComputeTaskPayload(Payload, kw_only=True):
    """The instance, its request spec (None for old instances without one), its state and the error."""

    VERSION = "1.0"

    instance_uuid: UUID
    request_spec: NovaObject[RequestSpecPayload] | None
    state: InstanceState | None
    reason: NovaObject[ExceptionPayload]


for _task in ("build_instances", "migrate_server", "rebuild_server"):
    event(f"compute_task.{_task}.error", ComputeTaskPayload, priority="ERROR", source="nova-conductor")
