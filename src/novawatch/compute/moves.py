"""Actions that move an instance or rebuild it: resize, live migration, evacuate, rebuild, shelve."""

from __future__ import annotations

from typing import Any

from novawatch.compute import db, images
from novawatch.compute.core import API, CONDUCTOR, ComputeCore, InvalidState, NotFound, image_id, migration_key
from novawatch.compute.failures import InjectedFailure
from novawatch.compute.host_guard import GUARD
from novawatch.compute.scheduler import NoValidHost

_MOVABLE = ("active", "stopped")


class MoveActions(ComputeCore):
    """Resize (prep, finish, confirm, revert), live migration (pre, post, rollback, abort, force complete),
    evacuate, rebuild and shelve/offload/unshelve."""

    # -- helpers -------------------------------------------------------------------------------

    def _new_migration(self, inst: db.Instance, kind: str, dest: db.ComputeNode,
                       new_flavor: db.Flavor | None = None) -> db.Migration:
        now = self.now()
        mig = db.Migration(
            id=self.repo.next_id(db.Migration), uuid=self.ids(), instance_uuid=inst.uuid, migration_type=kind,
            status="pre-migrating", source_compute=inst.host, dest_compute=dest.host, source_node=inst.node,
            dest_node=dest.hypervisor_hostname, old_instance_type_id=inst.instance_type_id,
            new_instance_type_id=(new_flavor or self.flavor_of(inst)).id, created_at=now, updated_at=now,
            user_id=inst.user_id, project_id=inst.project_id,
        )
        self.repo.add(mig)
        self.migrations[inst.uuid] = mig
        return mig

    def _end_migration(self, inst: db.Instance, status: str) -> db.Migration | None:
        mig = self.migrations.pop(inst.uuid, None)
        if mig is not None:
            mig.status = status
            mig.updated_at = self.now()
        return mig

    def _pick(self, inst: db.Instance, flavor: db.Flavor, host: str | None) -> db.ComputeNode:
        """Schedule a move: the instance stays in its cell, leaves its own host, goes to ``host`` if given."""
        node = None if host is None else self.nodes.get(host)
        req = self.scheduling(inst, flavor, host=host, node=None if node is None else node.hypervisor_hostname,
                              in_cell=True, ignore_hosts=[inst.host] if inst.host else None)
        return self.schedule(req)

    def _flavor_fields(self, flavor: db.Flavor) -> dict[str, Any]:
        return {"instance_type_id": flavor.id, "vcpus": flavor.vcpus, "memory_mb": flavor.memory_mb,
                "root_gb": flavor.root_gb, "ephemeral_gb": flavor.ephemeral_gb}

    def _busy(self, inst: db.Instance) -> None:
        if inst.uuid in self.migrations:
            raise InvalidState(f"instance {inst.uuid} is being migrated")

    # -- resize ----------------------------------------------------------------------------------

    def migrate(self, uuid: str, *, host: str | None = None) -> db.Instance:
        """Cold migration: a resize to the instance's own flavor on another host (Nova's ``migrate``).

        The same notifications as a resize; the instance ends in ``resized`` awaiting confirm or revert.
        """
        inst = self.instance(uuid)
        return self._resize(inst, self.flavor_of(inst), host=host, kind="migration")

    def resize(self, uuid: str, flavor: db.Flavor, *, host: str | None = None) -> db.Instance:
        """Resize to ``flavor`` on another host; the instance ends in ``resized`` awaiting confirm or revert.

        prep_resize on the destination (claim), resize_instance on the source (host moves to the
        destination), finish_resize on the destination (new flavor, ``resized``).
        """
        inst = self.instance(uuid)
        if flavor.id == inst.instance_type_id:
            self.require(inst, "resize", _MOVABLE)
            raise InvalidState("the new flavor is the instance's flavor")
        return self._resize(inst, flavor, host=host, kind="resize")

    def _resize(self, inst: db.Instance, flavor: db.Flavor, *, host: str | None, kind: str) -> db.Instance:
        self.require(inst, kind, _MOVABLE)
        self._busy(inst)
        if host is not None and host not in self.services:
            raise NotFound(f"compute host {host} not found")
        if host is not None and host == inst.host:
            raise InvalidState(f"instance {inst.uuid} is already on host {host}")
        self.guard_move(inst, flavor, host)
        self.record_action(inst, "resize" if kind == "resize" else "migrate")
        source_host = inst.host
        old_flavor = self.flavor_of(inst)
        self.save(inst, source=API, sender=self.api_host, task_state="resize_prep", progress=0)
        try:
            dest = self._pick(inst, flavor, host)
        except NoValidHost as exc:
            self.conductor_error(inst, "migrate_server", exc, task_state=None)
            return inst
        mig = self._new_migration(inst, kind, dest, flavor)
        dest_host = dest.host
        stopped = inst.vm_state == "stopped"
        new_flavor: dict[str, Any] = {"new_flavor": _flavor_payload(flavor), "_new_flavor": flavor}
        self.exists(inst, dest_host)
        self.notify(inst, "resize_prep", "start", host=dest_host, **new_flavor)
        inst.new_flavor_id = flavor.id
        inst.old_flavor_id = old_flavor.id
        self.save(inst, sender=dest_host)
        self.tracker.claim(dest, migration_key(mig), self.usage(inst, flavor, instance=False))
        self.notify(inst, "resize_prep", "end", host=dest_host, **new_flavor)
        mig.status = "migrating"
        self.save(inst, sender=source_host, task_state="resize_migrating")
        self.notify(inst, "resize", "start", host=source_host)
        try:
            self.check("resize")
        except InjectedFailure as exc:
            # resize_instance failed on the source: error state, migration in error, the fault,
            # reverts_task_state, compute.exception; the destination's claim is released.
            self.save(inst, sender=source_host, vm_state="error")
            self.tracker.drop(dest.uuid, migration_key(mig))
            self._end_migration(inst, "error")
            inst.new_flavor_id = None
            self.record_fault(inst, exc, source_host)
            self.save(inst, sender=source_host, task_state=None)
            self.emit.exception(exc, "resize_instance", source_host)
            return inst
        mig.status = "post-migrating"
        self.save(inst, sender=source_host, task_state="resize_migrated", host=dest_host,
                  node=dest.hypervisor_hostname)
        self.notify(inst, "resize", "end", host=source_host)
        # The instance now runs on the destination with the new flavor; the source keeps the old
        # flavor's resources as the migration's claim until the resize is confirmed or reverted.
        source = self.nodes[source_host] if source_host else None
        with self.tracker.batch():
            self.tracker.drop(dest.uuid, migration_key(mig))
            self.tracker.claim(dest, inst.uuid, self.usage(inst, flavor), force=True)
            if source is not None:
                self.tracker.drop(source.uuid, inst.uuid)
                self.tracker.claim(source, migration_key(mig), self.usage(inst, old_flavor, instance=False),
                                   force=True)
        self.save(inst, sender=dest_host, task_state="resize_finish", **self._flavor_fields(flavor))
        self.notify(inst, "resize_finish", "start", host=dest_host)
        self.set_network_info(inst, inst.info_cache.network_info)
        mig.status = "finished"
        self.save(inst, sender=dest_host, vm_state="resized", task_state=None,
                  power_state="shutdown" if stopped else "running", launched_at=self.now())
        self.notify(inst, "resize_finish", "end", host=dest_host)
        return inst

    def confirm_resize(self, uuid: str) -> db.Instance:
        """Keep the new flavor and host; the source's resources are released."""
        inst = self.instance(uuid)
        self.require(inst, "confirm_resize", ("resized",))
        mig = self.migrations.get(inst.uuid)
        if mig is None:
            raise InvalidState(f"instance {inst.uuid} has no resize to confirm")
        self.record_action(inst, "confirmResize")
        source_host = mig.source_compute
        self.notify(inst, "resize_confirm", "start", host=source_host)
        source = self.nodes.get(source_host or "")
        if source is not None:
            self.tracker.drop(source.uuid, migration_key(mig))
        self._end_migration(inst, "confirmed")
        self.save(inst, sender=source_host, vm_state="stopped" if inst.power_state == "shutdown" else "active",
                  task_state=None)
        self.notify(inst, "resize_confirm", "end", host=source_host)
        self.save(inst, sender=source_host, old_flavor_id=None, new_flavor_id=None)
        return inst

    def revert_resize(self, uuid: str) -> db.Instance:
        """Go back to the old flavor on the source host."""
        inst = self.instance(uuid)
        self.require(inst, "revert_resize", ("resized",))
        mig = self.migrations.get(inst.uuid)
        if mig is None or mig.old_instance_type_id is None:
            raise InvalidState(f"instance {inst.uuid} has no resize to revert")
        self.record_action(inst, "revertResize")
        dest_host, source_host = mig.dest_compute, mig.source_compute
        old_flavor = self.flavors[mig.old_instance_type_id]
        self.save(inst, source=API, sender=self.api_host, task_state="resize_reverting")
        self.exists(inst, dest_host)
        dest = self.nodes.get(dest_host or "")
        if dest is not None:
            self.tracker.drop(dest.uuid, inst.uuid)
        self.notify(inst, "resize_revert", "start", host=source_host)
        source = self.nodes.get(source_host or "")
        if source is not None:
            with self.tracker.batch():
                self.tracker.drop(source.uuid, migration_key(mig))
                self.tracker.claim(source, inst.uuid, self.usage(inst, old_flavor), force=True)
        self._end_migration(inst, "reverted")
        # finish_revert_resize: back on the source with the old flavor, then the guest is spawned again
        # (launched_at), then the state is restored: three saves.
        self.save(inst, sender=source_host, host=source_host, node=mig.source_node,
                  **self._flavor_fields(old_flavor))
        self.set_network_info(inst, inst.info_cache.network_info)
        self.save(inst, sender=source_host, launched_at=self.now())
        self.save(inst, sender=source_host, vm_state="stopped" if inst.power_state == "shutdown" else "active",
                  task_state=None)
        self.notify(inst, "resize_revert", "end", host=source_host)
        self.save(inst, sender=source_host, old_flavor_id=None, new_flavor_id=None)
        return inst

    # -- live migration ------------------------------------------------------------------------

    def live_migrate(self, uuid: str, *, host: str | None = None, block_migration: bool | None = None) -> db.Instance:
        """Start a live migration: the destination claims and prepares (``live_migration_pre``).

        The migration then runs until :meth:`live_migration_complete`, :meth:`live_migration_abort`
        or :meth:`live_migration_force_complete`; a hypervisor failure here rolls it back.
        ``block_migration`` (None: Nova's ``auto``, which is a block migration here, as the hosts share no
        storage) decides whether a failed migration has something to clean up on the destination.
        """
        inst = self.instance(uuid)
        self.require(inst, "live_migrate", ("active", "paused"))
        self._busy(inst)
        self.guard_move(inst, self.flavor_of(inst), host)
        self.record_action(inst, "live-migration")
        self.save(inst, source=API, sender=self.api_host, task_state="migrating")
        flavor = self.flavor_of(inst)
        try:
            dest = self._pick(inst, flavor, host)
        except NoValidHost as exc:
            self.conductor_error(inst, "migrate_server", exc, task_state=None)
            return inst
        mig = self._new_migration(inst, "live-migration", dest)
        self._block_migration[inst.uuid] = block_migration is not False
        self.tracker.claim(dest, migration_key(mig), self.usage(inst, flavor, instance=False))
        self.notify(inst, "live_migration_pre", "start", host=dest.host)
        self.notify(inst, "live_migration_pre", "end", host=dest.host)
        mig.status = "running"
        try:
            self.check("live_migrate")
        except InjectedFailure:
            # The hypervisor reports the migration failed: Nova rolls back (the migration runs in a
            # background task, so there is no fault and no compute.exception).
            self._rollback(inst, mig, status="failed")
        return inst

    def live_migration_complete(self, uuid: str) -> db.Instance:
        """The running live migration finishes: ``live_migration_post`` (source) and ``_post_dest`` (destination)."""
        inst = self.instance(uuid)
        mig = self._running_live_migration(inst)
        source_host, dest_host = mig.source_compute, mig.dest_compute
        # The source reports the end with its own copy of the instance, as it was before the destination
        # took it over (Nova's _post_live_migration): still on the source, still migrating.
        stale = {"host": inst.host, "node": inst.node, "task_state": inst.task_state,
                 "updated_at": self._reported_update.get(inst.uuid, inst.updated_at)}
        self.notify(inst, "live_migration_post", "start", host=source_host)
        self.notify(inst, "live_migration_post_dest", "start", host=dest_host)
        dest = self.nodes[dest_host or ""]
        source = self.nodes.get(source_host or "")
        with self.tracker.batch():
            self.tracker.drop(dest.uuid, migration_key(mig))
            self.tracker.claim(dest, inst.uuid, self.usage(inst, self.flavor_of(inst)), force=True)
            if source is not None:
                self.tracker.drop(source.uuid, inst.uuid)
        self._end_migration(inst, "completed")
        self._block_migration.pop(inst.uuid, None)
        self.save(inst, sender=dest_host, task_state=None, host=dest_host, node=mig.dest_node, progress=0)
        self.set_network_info(inst, inst.info_cache.network_info)
        self.notify(inst, "live_migration_post_dest", "end", host=dest_host)
        self.notify(inst, "live_migration_post", "end", host=source_host, overrides=stale)
        return inst

    def live_migration_force_complete(self, uuid: str) -> db.Instance:
        """Pause the guest so the migration converges, then complete it."""
        inst = self.instance(uuid)
        self._running_live_migration(inst)
        self.record_action(inst, "live_migration_force_complete")
        self.notify(inst, "live_migration_force_complete", "start", host=inst.host)
        self.notify(inst, "live_migration_force_complete", "end", host=inst.host)
        return self.live_migration_complete(uuid)

    def live_migration_abort(self, uuid: str) -> db.Instance:
        """Abort the running live migration; it is rolled back (nothing to clean up on the destination)."""
        inst = self.instance(uuid)
        mig = self._running_live_migration(inst)
        self.record_action(inst, "live_migration_cancel")
        self.notify(inst, "live_migration_abort", "start", host=inst.host)
        self.notify(inst, "live_migration_abort", "end", host=inst.host)
        self._rollback(inst, mig, status="cancelled", cleanup=False)
        return inst

    def _running_live_migration(self, inst: db.Instance) -> db.Migration:
        mig = self.migrations.get(inst.uuid)
        if mig is None or mig.migration_type != "live-migration" or mig.status != "running":
            raise InvalidState(f"instance {inst.uuid} has no live migration in progress")
        return mig

    def _rollback(self, inst: db.Instance, mig: db.Migration, status: str = "error", *,
                  cleanup: bool | None = None) -> None:
        """Nova's ``_rollback_live_migration`` on the source, then (a cast, so after it) the destination's
        ``rollback_live_migration_at_destination`` when it has something to clean up (a block migration)."""
        source_host, dest_host = mig.source_compute, mig.dest_compute
        block = self._block_migration.pop(inst.uuid, True)
        self.notify(inst, "live_migration_rollback", "start", host=source_host)
        dest = self.nodes.get(dest_host or "")
        if dest is not None:
            self.tracker.drop(dest.uuid, migration_key(mig))
        self.save(inst, sender=source_host, task_state=None, progress=0)
        self.notify(inst, "live_migration_rollback", "end", host=source_host)
        self._end_migration(inst, status)
        if block if cleanup is None else cleanup:
            self.notify(inst, "live_migration_rollback_dest", "start", host=dest_host)
            self.notify(inst, "live_migration_rollback_dest", "end", host=dest_host)

    # -- evacuate and rebuild --------------------------------------------------------------------

    def evacuate(self, uuid: str, *, host: str | None = None) -> db.Instance:
        """Rebuild the instance on another host because its own host is down.

        The instance's host changes only after ``rebuild.end`` (Nova's ``finish_evacuation``); on
        failure it stays on the (down) source in error and the destination's claim is released.
        """
        inst = self.instance(uuid)
        self.require(inst, "evacuate", ("active", "stopped", "error"), unlocked=False)
        self._busy(inst)
        source_host = inst.host
        svc = self.services.get(source_host or "")
        if source_host is None or svc is None or not svc.forced_down:
            raise InvalidState(f"compute service of instance {inst.uuid} is still up; cannot evacuate")
        self.guard_move(inst, self.flavor_of(inst), host)
        self.record_action(inst, "evacuate")
        self.save(inst, source=API, sender=self.api_host, task_state="rebuilding")
        self.notify(inst, "evacuate", host=self.api_host, source=API)
        flavor = self.flavor_of(inst)
        try:
            dest = self._pick(inst, flavor, host)
        except NoValidHost as exc:
            self.conductor_error(inst, "rebuild_server", exc, vm_state="error", task_state=None)
            return inst
        mig = self._new_migration(inst, "evacuation", dest)
        dest_host = dest.host
        self.notify(inst, "rebuild_scheduled", host=dest_host, source=CONDUCTOR)
        self.tracker.claim(dest, migration_key(mig), self.usage(inst, flavor, instance=False))
        self.save(inst, sender=dest_host)  # the destination's claim records the migration context
        if self._rebuild_on(inst, dest_host, "evacuate", image_ref=None):
            with self.tracker.batch():
                self.tracker.drop(dest.uuid, migration_key(mig))
                self.tracker.claim(dest, inst.uuid, self.usage(inst, flavor), force=True)
                source = self.nodes.get(source_host)
                if source is not None:
                    # Nova frees the source's resources when that host comes back; nothing else can use them.
                    self.tracker.drop(source.uuid, inst.uuid)
            self._end_migration(inst, "done")
            self.save(inst, sender=dest_host, host=dest_host, node=dest.hypervisor_hostname)
            self.set_network_info(inst, inst.info_cache.network_info)
        else:
            self.tracker.drop(dest.uuid, migration_key(mig))
            self._end_migration(inst, "failed")
        return inst

    def rebuild(self, uuid: str, image_ref: str | None = None) -> db.Instance:
        """Rebuild in place from ``image_ref`` (the current image when None).

        As in Nova, a new image goes through the scheduler (which may only keep the instance's host); the
        conductor announces every rebuild (``rebuild_scheduled``).
        """
        image_ref = image_id(image_ref) if image_ref is not None else None
        inst = self.instance(uuid)
        self.require(inst, "rebuild", ("active", "stopped", "error"))
        self._busy(inst)
        if inst.host is None:
            raise InvalidState(f"instance {inst.uuid} has no host")
        self.record_action(inst, "rebuild")
        host = inst.host
        new_image = image_ref is not None and image_ref != inst.image_ref
        # The usage before the rebuild is reported with the original image (Nova's orig_sys_metadata).
        original = {"image_ref": inst.image_ref, "system_metadata": dict(inst.system_metadata or {})}
        changes: dict[str, Any] = {}
        if image_ref is not None and not inst.booted_from_volume:
            image = images.lookup(image_ref)
            # The new image's properties become the instance's (Nova's _inherit_properties_from_image).
            changes = {"image_ref": image.id, "architecture": image.architecture}
        self.save(inst, source=API, sender=self.api_host, task_state="rebuilding", progress=0, **changes)
        if changes:
            # The image properties kept in the system metadata are replaced by the new image's.
            kept = {k: v for k, v in (inst.system_metadata or {}).items() if not k.startswith(images.PREFIX)}
            self.save(inst, source=API, sender=self.api_host,
                      system_metadata={**kept, **images.system_metadata(images.lookup(image_ref or ""),
                                                                        inst.root_gb)})
        if new_image:
            req = self.scheduling(inst, self.flavor_of(inst), force_host=host, force_node=inst.node, in_cell=True,
                                  hints={"_nova_check_type": ["rebuild"]})
            try:
                self.schedule(req, rebuild=True)
            except NoValidHost as exc:
                self.conductor_error(inst, "rebuild_server", exc, vm_state="error", task_state=None)
                return inst
        self.notify(inst, "rebuild_scheduled", host=host, source=CONDUCTOR)
        if self._rebuild_on(inst, host, "rebuild", image_ref=image_ref, original=original):
            # The resource tracker ends the rebuild as it ends an evacuation (finish_evacuation): a save.
            self.save(inst, sender=host)
        return inst

    def _rebuild_on(self, inst: db.Instance, host: str | None, action: str, *, image_ref: str | None,
                    original: dict[str, Any] | None = None) -> bool:
        """Nova's ``rebuild_instance`` on ``host``: True when the guest was rebuilt.

        ``original`` is what ``instance.exists`` reports instead of the new image (its ref and properties).
        """
        stopped = inst.vm_state == "stopped"
        self.notify(inst, "exists", host=host, overrides=original)
        self.notify(inst, "rebuild", "start", host=host)
        self.save(inst, sender=host)  # the power state refresh
        for bdm in self.bdms.get(inst.uuid, []):
            # Volumes are detached before the rebuild and attached again after it (only the detach notifies).
            if bdm.volume_id is not None and bdm.boot_index != 0:
                self.notify(inst, "volume_detach", "start", host=host, volume_id=bdm.volume_id)
                self.notify(inst, "volume_detach", "end", host=host, volume_id=bdm.volume_id)
        self.save(inst, sender=host, task_state="rebuild_block_device_mapping")
        self.save(inst, sender=host, task_state="rebuild_spawning")
        try:
            self.check(action)
        except InjectedFailure as exc:
            self.notify(inst, "rebuild", "error", host=host, fault=exc)
            self.save(inst, sender=host, vm_state="error")
            self.record_fault(inst, exc, host)
            self.save(inst, sender=host, task_state=None)
            self.emit.exception(exc, "rebuild_instance", host)
            return False
        self.save(inst, sender=host, vm_state="active", task_state=None, power_state="running",
                  launched_at=self.now())
        if stopped:
            # Nova sets the task state on its copy before the save notifies.
            self.save(inst, sender=host, old_states=("active", "powering-off"), task_state="powering-off")
            self.notify(inst, "power_off", "start", host=host)
            self.save(inst, sender=host, vm_state="stopped", task_state=None, power_state="shutdown")
            self.notify(inst, "power_off", "end", host=host)
        self.notify(inst, "rebuild", "end", host=host)
        return True

    # -- shelve ----------------------------------------------------------------------------------

    def shelve(self, uuid: str) -> db.Instance:
        """Snapshot and power off; the instance keeps its host (and resources) until offloaded."""
        inst = self.instance(uuid)
        self.require(inst, "shelve", ("active", "stopped", "paused", "suspended"))
        self._busy(inst)
        self.record_action(inst, "shelve")
        host = inst.host
        self.save(inst, source=API, sender=self.api_host, task_state="shelving")
        self.exists(inst, host)
        self.notify(inst, "shelve", "start", host=host)
        self.save(inst, task_state="shelving_image_uploading")
        if self._failed(inst, "shelve", "shelve_instance"):
            return inst
        self.save(inst, vm_state="shelved", task_state=None, power_state="shutdown")
        self.notify(inst, "shelve", "end", host=host)
        return inst

    def shelve_offload(self, uuid: str) -> db.Instance:
        """Remove a shelved instance from its host, releasing its resources."""
        inst = self.instance(uuid)
        self.require(inst, "shelve_offload", ("shelved",))
        self.record_action(inst, "shelveOffload")
        host = inst.host
        self.save(inst, source=API, sender=self.api_host, task_state="shelving_offloading")
        self.notify(inst, "shelve_offload", "start", host=host)
        if self._failed(inst, "shelve_offload", "shelve_offload_instance"):
            return inst
        node = self.nodes.get(host or "")
        if node is not None:
            self.tracker.drop(node.uuid, inst.uuid)
        self.save(inst, sender=host, vm_state="shelved_offloaded", task_state=None, power_state="shutdown")
        self.save(inst, sender=host, host=None, node=None, launched_on=None, availability_zone=None)
        self.notify(inst, "shelve_offload", "end", host=host)
        return inst

    def unshelve(self, uuid: str, *, host: str | None = None) -> db.Instance:
        """Bring a shelved instance back: spawned on a scheduled host when offloaded, powered on otherwise."""
        inst = self.instance(uuid)
        self.require(inst, "unshelve", ("shelved", "shelved_offloaded"))
        guard = GUARD.get()
        if guard is not None:
            # beside other workers: offloaded, it schedules like a move; still on its host, it needs that
            # host's lock only (a probe learns either before anything changes)
            if inst.host is not None:
                guard.first_pick(inst.host)
            else:
                self.guard_move(inst, self.flavor_of(inst), host)
        self.record_action(inst, "unshelve")
        self.save(inst, source=API, sender=self.api_host, task_state="unshelving")
        if inst.host is not None:
            # Still on its host: the conductor turns it into a power-on.
            own = inst.host
            self.save(inst, source=CONDUCTOR, sender=self.api_host, task_state="powering-on")
            self.notify(inst, "power_on", "start", host=own)
            if self._failed(inst, "unshelve", "start_instance"):
                return inst
            self.save(inst, sender=own, vm_state="active", task_state=None, power_state="running")
            self.notify(inst, "power_on", "end", host=own)
            return inst
        flavor = self.flavor_of(inst)
        try:
            node = self._pick(inst, flavor, host)
        except NoValidHost:
            # Nova's conductor only resets the task state here: no fault, no error notification.
            self.save(inst, source=CONDUCTOR, sender=self.api_host, task_state=None)
            return inst
        dest_host = node.host
        # The conductor sets the zone of the chosen host; the compute saves it with the next change.
        inst.availability_zone = self.services[dest_host or ""].availability_zone
        self.notify(inst, "unshelve", "start", host=dest_host)
        self.save(inst, sender=dest_host, task_state="spawning")
        self.tracker.claim(node, inst.uuid, self.usage(inst, flavor))
        self.save(inst, sender=dest_host, host=dest_host, node=node.hypervisor_hostname, launched_on=dest_host)
        self.set_network_info(inst, inst.info_cache.network_info)
        try:
            self.check("unshelve")
        except InjectedFailure as exc:
            self.tracker.drop(node.uuid, inst.uuid)
            self.save(inst, sender=dest_host, host=None, node=None)
            self.record_fault(inst, exc, dest_host)
            self.save(inst, sender=dest_host, task_state=None)
            self.emit.exception(exc, "unshelve_instance", dest_host)
            return inst
        self.save(inst, sender=dest_host, vm_state="active", task_state=None, power_state="running",
                  launched_at=self.now())
        self.notify(inst, "unshelve", "end", host=dest_host)
        return inst


def _flavor_payload(flavor: db.Flavor) -> object:
    from novawatch.compute.emitter import _flavor

    return _flavor(flavor)
