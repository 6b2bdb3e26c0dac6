"""``compute_task.*.error``: the conductor failed to build, migrate or rebuild an instance.

Nova's conductor also sends a legacy twin under another name, ``compute_task.<task>`` (no phase), from
``set_vm_state_and_notify``: the legacy request spec dict, the instance's properties, its state, the
conductor method and the exception as text.
"""

from __future__ import annotations

from typing import Any

import msgspec

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


class LegacyComputeTaskPayload(msgspec.Struct, kw_only=True):
    """``compute_task.<task>``: what the conductor failed, in Nova's legacy dict form. Keys not listed are ignored."""

    request_spec: dict[str, Any] | None
    instance_properties: dict[str, Any] | None
    instance_id: str
    state: str | None
    method: str
    #: The exception, as Nova's serializer renders it (text).
    reason: Any = None


for _task in ("build_instances", "migrate_server", "rebuild_server"):
    event(f"compute_task.{_task}.error", ComputeTaskPayload, priority="ERROR", source="nova-conductor")
    event(f"compute_task.{_task}", LegacyComputeTaskPayload, priority="ERROR", source="compute_task")
