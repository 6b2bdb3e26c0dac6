"""A worker's catch-up with the other workers' commits: refresh only the rows they changed.

Each commit of a worker logs the rows it wrote (``compute_changes``, :mod:`novawatch.compute.shared`).
A worker behind the current generation reads the log since its own generation and refreshes those
rows in its session (``populate_existing``), then rebuilds the derived state of the instances they
feed (indexes, claims, the network's next address) with the installers the full load uses
(:meth:`ComputeCore._load`). It declines (and the caller reloads everything) when the change set is
large or names a table it does not know.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.util import identity_key

from novawatch.compute import db
from novawatch.compute.core import ACTIVE_MIGRATION, ComputeCore, migration_key
from novawatch.compute.repository import Changes

#: More changed rows than this: one full reload is cheaper than refreshing them one table at a time.
LIMIT = 2000

#: Tables held in memory only through the session's identity map: a changed row there is dropped from
#: the map, so that the next query reads it afresh.
_UNINDEXED: tuple[type[db.Base], ...] = (
    db.InstanceFault, db.InstanceAction, db.InstanceActionEvent, db.KeyPair, db.InstanceGroup,
)
#: Tables refreshed through their instance (a change names it): rows of the instance are read again.
_BY_INSTANCE: tuple[type[db.Base], ...] = (
    db.Instance, db.InstanceInfoCache, db.BlockDeviceMapping, db.Migration,
)
_BY_KEY: tuple[type[db.Base], ...] = (db.Service, db.ComputeNode, db.Flavor, db.Volume)
_MODELS: dict[str, type[db.Base]] = {m.__tablename__: m for m in (*_UNINDEXED, *_BY_INSTANCE, *_BY_KEY)}

T = TypeVar("T", bound=db.Base)

#: The changed instances with their info caches, refreshed in place (built once: a catch-up after each other
#: worker's commit would otherwise pay for building the statement and its cache key every time).
_INSTANCES = (select(db.Instance).options(joinedload(db.Instance.info_cache))
              .where(db.Instance.uuid.in_(bindparam("uuids", expanding=True))).order_by(db.Instance.id)
              .execution_options(populate_existing=True))


class CatchUp(ComputeCore):
    """:meth:`catch_up`: apply another worker's committed changes to this worker's memory."""

    def catch_up(self, changes: Changes) -> bool:
        """Refresh what ``changes`` name; False (nothing done) when a full reload is the way."""
        keys: dict[type[db.Base], list[str]] = {}
        for table, key in changes:
            model = _MODELS.get(table)
            if model is None:
                return False
            keys.setdefault(model, []).append(key)
        if len(changes) > LIMIT:
            return False
        affected: dict[str, set[str]] = {}  # instance -> the tables of its rows that changed
        for (table, _), uuid in changes.items():
            if uuid is not None:
                affected.setdefault(uuid, set()).add(table)
        touched: dict[str, db.ComputeNode] = {}
        kept = self._drop_claims(affected, touched)
        for flavor in self._fresh(db.Flavor, keys.get(db.Flavor, ())).values():
            self.flavors[flavor.id] = flavor
        self._refresh_services(keys.get(db.Service, ()))
        self._refresh_nodes(keys.get(db.ComputeNode, ()), touched)
        self._refresh_volumes(keys.get(db.Volume, ()))
        for model in _UNINDEXED:
            self._forget(model, keys.get(model, ()))
        self._refresh_instances(affected, kept, touched)
        for node in touched.values():
            if node.uuid in self.tracker.nodes:
                self.tracker.rederive(node)  # only the host's lock holder writes its row (shared.py)
        return True

    # -- rows ----------------------------------------------------------------------------------

    def _fresh(self, model: type[T], keys: Iterable[str]) -> dict[str, T]:
        """The rows of ``model`` with these keys as the database has them now (rows in the session are
        overwritten in place); a key that is gone is dropped from the session."""
        wanted = list(keys)
        if not wanted:
            return {}
        column = model.__mapper__.primary_key[0]
        cast = column.type.python_type
        values = [cast(k) for k in wanted]
        rows = self.repo.session.scalars(select(model).where(column.in_(values))
                                         .execution_options(populate_existing=True))
        attribute = model.__mapper__.get_property_by_column(column).key
        found = {str(getattr(row, attribute)): row for row in rows}
        for key, value in zip(wanted, values, strict=True):
            if key not in found:
                self._expunge(model, value)
        return found

    def _forget(self, model: type[db.Base], keys: Iterable[str]) -> None:
        """Drop changed rows from the session's identity map (the next query reads them afresh)."""
        cast = model.__mapper__.primary_key[0].type.python_type
        for key in keys:
            self._expunge(model, cast(key))

    def _expunge(self, model: type[db.Base], value: Any) -> None:
        session = self.repo.session
        row = session.identity_map.get(identity_key(model, (value,)))
        if row is not None:
            session.expunge(row)

    def _refresh_services(self, keys: Sequence[str]) -> None:
        found = self._fresh(db.Service, keys)
        gone = {int(k) for k in keys if k not in found}
        for host, svc in list(self.services.items()):
            if svc.id in gone:
                del self.services[host]
        for svc in found.values():
            self.services[svc.host] = svc

    def _refresh_nodes(self, keys: Sequence[str], touched: dict[str, db.ComputeNode]) -> None:
        found = self._fresh(db.ComputeNode, keys)
        gone = {int(k) for k in keys if k not in found}
        for host, node in list(self.nodes.items()):
            if node.id in gone:
                del self.nodes[host]
                self.tracker.forget_node(node)  # the worker that removed it sent compute_node.delete
                touched.pop(node.uuid, None)
        for node in found.values():
            self._track_node(node)  # its stored usage is what was last reported
            touched[node.uuid] = node

    def _refresh_volumes(self, keys: Sequence[str]) -> None:
        found = self._fresh(db.Volume, keys)
        for key in keys:
            if key in found:
                self.volumes.by_id[key] = found[key]
            else:
                self.volumes.by_id.pop(key, None)

    # -- instances and what they hold ------------------------------------------------------------

    def _drop_claims(self, affected: dict[str, set[str]], touched: dict[str, db.ComputeNode]) -> Kept:
        """Forget the claims and per-request memory of the instances about to be read again; what of theirs
        did not change (volumes, migration) is kept aside to be put back without a query."""
        keys = set(affected)
        kept = Kept({}, {})
        for uuid, tables in affected.items():
            mig = self.migrations.pop(uuid, None)
            if mig is not None:
                keys.add(migration_key(mig))
                if "migrations" not in tables:
                    kept.migrations[uuid] = mig
            bdms = self.bdms.pop(uuid, None)
            if bdms is not None and "block_device_mappings" not in tables:
                kept.bdms[uuid] = bdms
            self._reported_update.pop(uuid, None)
            self._block_migration.pop(uuid, None)
        if keys:
            for node_uuid, held in self.tracker.claims.items():
                dropped = [key for key in keys if held.pop(key, None) is not None]
                if dropped:
                    touched[node_uuid] = self.tracker.nodes[node_uuid]
        return kept

    def _refresh_instances(self, affected: dict[str, set[str]], kept: Kept,
                           touched: dict[str, db.ComputeNode]) -> None:
        """Read the instances (and their info caches, volumes and migrations where those changed) again and
        restore their claims."""
        if not affected:
            return
        session = self.repo.session
        uuids = sorted(affected)
        # the info cache comes with each instance, in the same query, refreshed in place too
        rows = list(session.scalars(_INSTANCES, {"uuids": uuids}))
        live = []
        for inst in rows:
            if inst.deleted:
                self.instances.pop(inst.uuid, None)
            else:
                self.instances[inst.uuid] = inst  # an existing key keeps its place: the order stays the load's
                live.append(inst)
        self.bdms.update(kept.bdms)
        changed = [uuid for uuid, tables in affected.items() if "block_device_mappings" in tables]
        if changed:
            for bdm in session.scalars(select(db.BlockDeviceMapping)
                                       .where(db.BlockDeviceMapping.instance_uuid.in_(changed))
                                       .order_by(db.BlockDeviceMapping.id).execution_options(populate_existing=True)):
                if not bdm.deleted:
                    self.bdms.setdefault(bdm.instance_uuid, []).append(bdm)
        self.migrations.update(kept.migrations)
        changed = [uuid for uuid, tables in affected.items() if "migrations" in tables]
        if changed:
            for mig in session.scalars(select(db.Migration).where(db.Migration.instance_uuid.in_(changed))
                                       .order_by(db.Migration.id).execution_options(populate_existing=True)):
                if mig.status in ACTIVE_MIGRATION:
                    self.migrations[mig.instance_uuid] = mig
        self.network.resume_after([inst.info_cache for inst in live])
        for inst in live:
            owner = self._restore_instance_claim(inst)
            if owner is not None:
                touched[owner.uuid] = owner
        for uuid in uuids:
            current = self.migrations.get(uuid)
            holder = None if current is None else self._restore_migration_claim(current)
            if holder is not None:
                touched[holder.uuid] = holder


class Kept(NamedTuple):
    """What the catch-up keeps of the instances it reads again: the rows of theirs that did not change."""

    bdms: dict[str, list[db.BlockDeviceMapping]]
    migrations: dict[str, db.Migration]
