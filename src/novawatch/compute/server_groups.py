"""Server groups: create and delete, with Nova's ``servergroup.*`` and ``server_group.*`` notifications.

A group's policy (``affinity``, ``anti-affinity`` and their ``soft-`` forms) is a record only: servers
do not join groups (a boot's ``group`` scheduler hint is not honoured). A project has at most
:data:`quotas.SERVER_GROUPS` groups (Nova's default).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from novawatch.compute import db, quotas
from novawatch.compute.core import ComputeCore
from novawatch.compute.errors import ComputeError, NotFound, OverQuota

POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


class GroupView:
    """A group row as ``ServerGroupPayload`` reads it (``policies`` and ``hosts`` as Nova's object has them)."""

    __slots__ = ("_row",)

    def __init__(self, row: db.InstanceGroup) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)

    @property
    def policies(self) -> list[str]:
        return [self._row.policy]

    @property
    def members(self) -> list[str]:
        return [str(m) for m in self._row.members]

    @property
    def rules(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._row.rules.items()}

    @property
    def hosts(self) -> None:
        # Nova's object computes hosts only when asked (get_hosts); notifications carry null.
        return None


class ServerGroupActions(ComputeCore):
    """Server groups (read from the database: they are not on any action's path)."""

    def server_groups(self, project_id: str | None = None) -> list[db.InstanceGroup]:
        """The groups of ``project_id`` (every group when None), oldest first."""
        query = select(db.InstanceGroup).order_by(db.InstanceGroup.id)
        if project_id is not None:
            query = query.where(db.InstanceGroup.project_id == project_id)
        return self.repo.query(query)

    def server_group(self, uuid: str) -> db.InstanceGroup:
        """A group by uuid, or :class:`NotFound` in Nova's words."""
        row: db.InstanceGroup | None = next(iter(self.repo.query(
            select(db.InstanceGroup).where(db.InstanceGroup.uuid == uuid))), None)
        if row is None:
            raise NotFound(f"Instance group {uuid} could not be found.")
        return row

    def create_server_group(self, name: str, policy: str, *, rules: dict[str, str] | None = None,
                            user_id: str, project_id: str) -> db.InstanceGroup:
        """A new group (``servergroup.create``, then ``server_group.create``)."""
        if policy not in POLICIES:
            raise ComputeError(f"Invalid policy {policy!r}: one of {', '.join(POLICIES)}")
        if rules and policy != "anti-affinity":
            raise ComputeError("Only anti-affinity policy supports rules.")
        count = self.repo.count(select(func.count()).select_from(db.InstanceGroup)
                                .where(db.InstanceGroup.project_id == project_id))
        if count >= quotas.SERVER_GROUPS:
            raise OverQuota("Quota exceeded, too many server groups.")
        now = self.now()
        row = db.InstanceGroup(id=self.repo.next_id(db.InstanceGroup), uuid=self.ids(), name=name, user_id=user_id,
                               project_id=project_id, policy=policy, rules=dict(rules or {}), members=[],
                               created_at=now, updated_at=None)
        self.repo.add(row)
        changes: dict[str, Any] = {"name": name, "user_id": user_id, "project_id": project_id, "policy": policy}
        if rules is not None:
            changes["rules"] = dict(rules)
        self._group_legacy("create", row.uuid, **changes)
        self._group_event("server_group.create", row)
        return row

    def delete_server_group(self, uuid: str) -> None:
        """Delete a group (``servergroup.delete``, then ``server_group.delete``); its members stay."""
        row = self.server_group(uuid)
        self.repo.delete(row)
        self._group_legacy("delete", uuid)
        self._group_event("server_group.delete", row)

    def _group_event(self, event_type: str, row: db.InstanceGroup) -> None:
        if self.emit.notifier.format.versioned:
            from novawatch.notifications.catalog.server_group import ServerGroupPayload

            self.emit.notifier.emit(event_type, ServerGroupPayload.populate({"group": GroupView(row)}),
                                    publisher_id=f"nova-api:{self.api_host}")

    def _group_legacy(self, action: str, uuid: str, **changes: Any) -> None:
        if self.emit.notifier.format.unversioned:
            from novawatch.notifications.catalog.server_group import LegacyServerGroupPayload

            self.emit.notifier.emit(f"servergroup.{action}", LegacyServerGroupPayload(server_group_id=uuid, **changes),
                                    publisher_id=f"servergroup.{self.api_host}")
