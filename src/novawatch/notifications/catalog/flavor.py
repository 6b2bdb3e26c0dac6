"""``flavor.*``: a flavor was created, updated or deleted; ``FlavorPayload`` is also nested in instance payloads."""

from __future__ import annotations

import msgspec

from novawatch.notifications.catalog.table import event
from novawatch.objects import Payload, Since
from novawatch.objects.fields import Count32, Int32


class FlavorPayload(Payload, kw_only=True):
    """A flavor: its sizes, extra specs and access."""

    VERSION = "1.4"
    SCHEMA = {
        name: ("flavor", name)
        for name in (
            "flavorid", "memory_mb", "vcpus", "root_gb", "ephemeral_gb", "name", "swap", "rxtx_factor",
            "vcpu_weight", "disabled", "is_public", "extra_specs", "projects", "description",
        )
    }
    SINCE = {
        "name": Since(1, default=""),
        "swap": Since(1, default=0),
        "rxtx_factor": Since(1, default=None),
        "vcpu_weight": Since(1, default=None),
        "disabled": Since(1, default=False),
        "is_public": Since(1, default=True),
        "extra_specs": Since(2, default=None),
        "projects": Since(2, default=None),
        "description": Since(4, default=None),
    }

    description: str | msgspec.UnsetType | None = msgspec.UNSET
    disabled: bool | msgspec.UnsetType = msgspec.UNSET
    ephemeral_gb: Count32 | None
    extra_specs: dict[str, str] | msgspec.UnsetType | None = msgspec.UNSET
    flavorid: str | None
    is_public: bool | msgspec.UnsetType = msgspec.UNSET
    memory_mb: Count32 | None
    name: str | msgspec.UnsetType = msgspec.UNSET
    projects: list[str] | msgspec.UnsetType | None = msgspec.UNSET
    root_gb: Count32 | None
    rxtx_factor: float | msgspec.UnsetType | None = msgspec.UNSET
    swap: Count32 | msgspec.UnsetType = msgspec.UNSET
    vcpu_weight: Int32 | msgspec.UnsetType | None = msgspec.UNSET
    vcpus: Count32 | None


for _action in ("create", "update", "delete"):
    event(f"flavor.{_action}", FlavorPayload, source="nova-api")
