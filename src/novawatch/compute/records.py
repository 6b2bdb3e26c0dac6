"""What the compute service recorded, read back: instance actions, migrations, usage, projects.

These read the database (deleted instances and finished migrations are not kept in memory), this
transaction's changes included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from novawatch.compute import db
from novawatch.compute.core import ComputeCore


class RecordQueries(ComputeCore):
    """Read-only queries of the records behind ``os-instance-actions``, ``os-migrations`` and usage."""

    def find_instance(self, uuid: str, *, deleted: bool = False) -> db.Instance | None:
        """A live instance, or (with ``deleted``) a deleted one too; None when there is no such instance."""
        inst = self.instances.get(uuid)
        if inst is not None or not deleted:
            return inst
        return next(iter(self.repo.query(select(db.Instance).where(db.Instance.uuid == uuid))), None)

    def deleted_instances(self) -> list[db.Instance]:
        """Every deleted instance (their rows stay in the database, as Nova's do until archived)."""
        return self.repo.query(select(db.Instance).where(db.Instance.deleted.is_(True)).order_by(db.Instance.id))

    def instance_actions(self, uuid: str) -> list[db.InstanceAction]:
        """The actions recorded on an instance, newest first (as Nova lists them)."""
        return self.repo.query(select(db.InstanceAction).where(db.InstanceAction.instance_uuid == uuid)
                               .order_by(db.InstanceAction.start_time.desc(), db.InstanceAction.id.desc()))

    def action_events(self, action_id: int) -> list[db.InstanceActionEvent]:
        """The events of an action, in the order they were recorded."""
        return self.repo.query(select(db.InstanceActionEvent).where(db.InstanceActionEvent.action_id == action_id)
                               .order_by(db.InstanceActionEvent.id))

    def migration_records(self, **where: Any) -> list[db.Migration]:
        """Every migration (in progress or done) whose columns equal ``where``, newest first."""
        query = select(db.Migration).order_by(db.Migration.created_at.desc(), db.Migration.id.desc())
        for column, value in where.items():
            query = query.where(getattr(db.Migration, column) == value)
        return self.repo.query(query)

    def instances_in_window(self, start: datetime, stop: datetime, project_id: str | None = None) -> list[db.Instance]:
        """Instances (deleted ones included) that ran at some time between ``start`` and ``stop`` (naive UTC).

        Nova's ``get_active_by_window_joined``: not terminated before ``start``, launched before ``stop`` (never
        launched: not listed).
        """
        query = (select(db.Instance)
                 .where(or_(db.Instance.terminated_at.is_(None), db.Instance.terminated_at > start))
                 .where(db.Instance.launched_at < stop)
                 .order_by(db.Instance.id))
        if project_id is not None:
            query = query.where(db.Instance.project_id == project_id)
        return self.repo.query(query)

    def project_ids(self) -> set[str]:
        """Every project that owns an instance (deleted or not), a server group or a volume."""
        found: set[str] = set()
        for column in (db.Instance.project_id, db.InstanceGroup.project_id, db.Volume.project_id):
            found.update(p for p in self.repo.query(select(column).distinct()) if p)
        return found

    def quota_usage(self, project_id: str, user_id: str) -> dict[str, int]:
        """What a project (and, for key pairs, a user) uses of each quota, as Nova counts it.

        Instances, cores and RAM of the project's servers that are not deleted (soft-deleted ones count);
        the project's server groups; the user's key pairs.
        """
        mine = [i for i in self.instances.values() if i.project_id == project_id and not i.deleted]
        groups = self.repo.count(select(func.count()).select_from(db.InstanceGroup)
                                 .where(db.InstanceGroup.project_id == project_id))
        keypairs = self.repo.count(select(func.count()).select_from(db.KeyPair).where(db.KeyPair.user_id == user_id))
        return {"instances": len(mine), "cores": sum(i.vcpus for i in mine), "ram": sum(i.memory_mb for i in mine),
                "server_groups": groups, "key_pairs": keypairs}
