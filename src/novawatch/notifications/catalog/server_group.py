"""``server_group.*``: a server group was created, deleted or got a member."""

from __future__ import annotations

import msgspec

from novawatch.notifications.catalog.table import event
from novawatch.objects import Payload, Since
from novawatch.objects.fields import UUID


class ServerGroupPayload(Payload, kw_only=True):
    """A server group: its policy, rules, members and hosts."""

    VERSION = "1.1"
    SCHEMA = {
        name: ("group", name)
        for name in ("uuid", "name", "user_id", "project_id", "policies", "members", "hosts", "policy", "rules")
    }
    SINCE = {"policy": Since(1), "rules": Since(1, factory=dict)}

    uuid: UUID
    name: str | None
    user_id: str | None
    project_id: str | None
    # Deprecated by Nova in 1.1 in favour of ``policy``, still sent.
    policies: list[str] | None
    members: list[str] | None
    hosts: list[str] | None
    policy: str | msgspec.UnsetType | None = msgspec.UNSET
    rules: dict[str, str] | msgspec.UnsetType = msgspec.UNSET


for _action in ("create", "delete", "add_member"):
    event(f"server_group.{_action}", ServerGroupPayload, source="nova-api")
