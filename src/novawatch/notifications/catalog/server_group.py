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


class LegacyServerGroupPayload(msgspec.Struct, kw_only=True):
    """``servergroup.create/delete/addmember``: what changed (the fields set on create), by group uuid.

    Nova sends these from the ``servergroup`` notifier (publisher ``servergroup.<host>``) just before the
    versioned ``server_group.*``. Keys not listed are ignored.
    """

    server_group_id: str
    name: str | msgspec.UnsetType | None = msgspec.UNSET
    user_id: str | msgspec.UnsetType | None = msgspec.UNSET
    project_id: str | msgspec.UnsetType | None = msgspec.UNSET
    policy: str | msgspec.UnsetType | None = msgspec.UNSET
    rules: dict[str, str] | msgspec.UnsetType = msgspec.field(default=msgspec.UNSET, name="_rules")
    instance_uuids: list[str] | msgspec.UnsetType = msgspec.UNSET


for _action in ("create", "delete", "addmember"):
    event(f"servergroup.{_action}", LegacyServerGroupPayload, source="servergroup")
