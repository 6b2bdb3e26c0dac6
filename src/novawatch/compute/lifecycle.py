"""Instance lifecycle: flavors, boot, delete, soft delete, restore and force delete."""

from __future__ import annotations

from novawatch.compute import db, images
from novawatch.compute.core import API, COMPUTE, CONDUCTOR, ComputeCore, InvalidState, NotFound, image_id
from novawatch.compute.failures import InjectedFailure
from novawatch.compute.host_guard import GUARD
from novawatch.compute.images import DEFAULT_IMAGE
from novawatch.compute.scheduler import NoValidHost


class MaxRetriesExceeded(NoValidHost):
    """Every host the scheduler offered failed to build the instance (Nova's ``MaxRetriesExceeded``)."""

    def __init__(self, instance_uuid: str) -> None:
        Exception.__init__(self, f"Exceeded maximum number of retries. Exhausted all hosts available for "
                                 f"retrying build failures for instance {instance_uuid}.")


class LifecycleActions(ComputeCore):
    """Flavors, then an instance's birth and death."""

    # -- flavors -------------------------------------------------------------------------------

    def create_flavor(self, name: str, *, vcpus: int, memory_mb: int, root_gb: int, ephemeral_gb: int = 0,
                      swap: int = 0, extra_specs: dict[str, str] | None = None) -> db.Flavor:
        """A public flavor (``flavor.create``)."""
        from novawatch.compute.emitter import FlavorView

        flavor = db.Flavor(
            id=self.repo.next_id(db.Flavor), flavorid=self.ids(), name=name, memory_mb=memory_mb, vcpus=vcpus,
            root_gb=root_gb, ephemeral_gb=ephemeral_gb, swap=swap, rxtx_factor=1.0, vcpu_weight=0,
            is_public=True, disabled=False, description=None, extra_specs=dict(extra_specs or {}),
        )
        self.repo.add(flavor)
        self.flavors[flavor.id] = flavor
        if self.emit.notifier.format.versioned:
            from novawatch.notifications.catalog.flavor import FlavorPayload

            self.emit.notifier.emit("flavor.create", FlavorPayload.populate({"flavor": FlavorView(flavor)}),
                                    publisher_id=f"nova-api:{self.api_host}")
        return flavor

    def flavor_by_name(self, name: str) -> db.Flavor:
        """The flavor called ``name``, or :class:`NotFound`."""
        for flavor in self.flavors.values():
            if flavor.name == name:
                return flavor
        raise NotFound(f"flavor {name} not found")

    # -- boot ----------------------------------------------------------------------------------

    def boot(
        self,
        name: str,
        flavor: db.Flavor,
        *,
        image_ref: str = DEFAULT_IMAGE,
        project_id: str = "6f70656e737461636b20342065766572",
        user_id: str = "fake",
        boot_volume_gb: int | None = None,
        ports: int = 1,
        metadata: dict[str, str] | None = None,
        tags: list[str] | None = None,
        host: str | None = None,
        force_host: bool = False,
        description: str | None = None,
    ) -> db.Instance:
        """Create an instance and build it on a scheduled host.

        ``host`` asks the scheduler for that host (Nova's ``host`` since microversion 2.74); with
        ``force_host`` the host is forced past the filters (Nova's ``availability_zone: "nova:HOST"``), and
        a failed build is not rescheduled. Otherwise a build that fails on a host is retried on the
        scheduler's alternates, up to ``max_attempts`` hosts, as Nova does.

        Returns the instance; it is ``active`` on success and ``error`` (with a fault) when no host has
        room or every attempt to spawn it failed.
        """
        image = None if boot_volume_gb else images.lookup(image_id(image_ref))
        guard = GUARD.get()
        if guard is not None:
            # beside other workers: refused here, before anything changed, unless the request holds the host
            guard.first_pick(self.would_pick(flavor, from_volume=boot_volume_gb is not None, host=host))
        self.new_request()
        now = self.now()
        inst = db.Instance(
            id=self.repo.next_id(db.Instance), uuid=self.ids(), user_id=user_id, project_id=project_id,
            reservation_id="r-" + self.ids()[:8], display_name=name, display_description=description,
            hostname=name, host=None, node=None, os_type=None,
            architecture=None if image is None else image.architecture, availability_zone=None,
            instance_type_id=flavor.id, vcpus=flavor.vcpus, memory_mb=flavor.memory_mb, root_gb=flavor.root_gb,
            ephemeral_gb=flavor.ephemeral_gb, image_ref="" if image is None else image.id, key_name=None,
            kernel_id="", ramdisk_id="", created_at=now, updated_at=None, vm_state="building",
            power_state="pending", task_state="scheduling", progress=0, metadata_=dict(metadata or {}),
            system_metadata=images.system_metadata(image, flavor.root_gb), tags=list(tags or []), locked=False,
            auto_disk_config=False, booted_from_volume=boot_volume_gb is not None, deleted=False,
        )
        inst.info_cache = db.InstanceInfoCache(instance_uuid=inst.uuid, network_info=[], updated_at=now)
        self.repo.add(inst)
        self.instances[inst.uuid] = inst
        self.bdms[inst.uuid] = []
        self.record_action(inst, "create", new_request=False)
        if boot_volume_gb is not None:
            vol = self.volumes.create(boot_volume_gb)
            self.volumes.reserve(vol)
            # The device name is the compute host's to choose, when it builds the block devices.
            self._add_bdm(inst, vol, None, boot_index=0, delete_on_termination=True)
        req = self.scheduling(inst, flavor, host=None if force_host else host, node=None if force_host else host,
                              force_host=host if force_host else None)
        try:
            node = self.schedule(req)
        except NoValidHost as exc:
            self._release_boot_volumes(inst)
            self.conductor_error(inst, "build_instances", exc, vm_state="error", task_state=None)
            return inst
        # Alternates for a reschedule: the other hosts that passed, best first (none for a forced host).
        hosts = [] if force_host or host is not None else self.alternates(req, node)
        retry = not force_host and self.max_attempts > 1
        # The conductor announces the instance (no save of its own: updated_at stays unset).
        inst.availability_zone = self.services[node.host or ""].availability_zone
        self.save(inst, source=CONDUCTOR, sender=self.api_host, touch=False)
        while True:
            failure = self._build(inst, flavor, node, ports, retry=retry)
            if failure is None or not retry:
                return inst  # built, or left in error by the compute host (no retry)
            if not hosts:
                break
            # The conductor takes the next alternate and saves the instance's new zone.
            node = hosts.pop(0)
            if guard is not None:
                guard.claim(node.host)  # another host: the request runs again, alone (rolled back meanwhile)
            inst.availability_zone = self.services[node.host or ""].availability_zone
            self.save(inst, sender=self.api_host)
        # Every host failed: Nova's conductor gives up (MaxRetriesExceeded).
        self._release_boot_volumes(inst)
        self.conductor_error(inst, "build_instances", MaxRetriesExceeded(inst.uuid), vm_state="error",
                             task_state=None)
        return inst

    def _build(self, inst: db.Instance, flavor: db.Flavor, node: db.ComputeNode, ports: int, *,
               retry: bool) -> BaseException | None:
        """Nova's ``_do_build_and_run_instance`` on ``node``: None when the instance runs, else the failure
        (the instance is then back in ``scheduling`` for a reschedule, or in ``error`` without retry)."""
        host = node.host
        self.save(inst, sender=host, task_state=None)
        self.notify(inst, "create", "start", host=host)
        self.tracker.claim(node, inst.uuid, self.usage(inst, flavor))
        self.save(inst, sender=host, host=host, node=node.hypervisor_hostname, launched_on=host)
        # Nova's network allocation sets the task state on its copy before the save notifies.
        self.save(inst, old_states=("building", "networking"), task_state="networking")
        self.set_network_info(inst, [self.network.allocate_port() for _ in range(ports)])
        for bdm in self.bdms[inst.uuid]:
            if bdm.volume_id is not None and bdm.device_name is None:
                bdm.device_name = self._device_name(inst)
        self.save(inst, task_state="block_device_mapping")
        for bdm in self.bdms[inst.uuid]:
            if bdm.volume_id is not None:
                self.volumes.attach(self.volumes.get(bdm.volume_id), inst.uuid)
        self.save(inst, task_state="spawning")
        try:
            self.check("boot")
        except InjectedFailure as exc:
            self._abort_build(inst, node, exc, retry=retry)
            return exc
        self.save(inst, vm_state="active", task_state=None, power_state="running", launched_at=self.now())
        self.notify(inst, "create", "end", host=host)
        return None

    def _abort_build(self, inst: db.Instance, node: db.ComputeNode, exc: BaseException, *, retry: bool) -> None:
        # Nova tears the half-built guest down (shutdown.*), aborts the claim (a save: no host), reports
        # create.error with the fault, frees the network (a save), and either hands the instance back to the
        # conductor for another host (task state scheduling, no host nor zone) or, without retry, records the
        # fault and leaves it in error.
        host = node.host
        self.notify(inst, "shutdown", "start", host=host)
        self.notify(inst, "shutdown", "end", host=host)
        self.tracker.drop(node.uuid, inst.uuid)
        self.save(inst, sender=host, host=None, node=None)
        self.notify(inst, "create", "error", host=host, fault=exc)
        self.set_network_info(inst, [])
        self.save(inst, sender=host)
        for bdm in self.bdms.get(inst.uuid, []):
            if bdm.volume_id is not None:
                self.volumes.get(bdm.volume_id).status = "reserved"
        if retry:
            self.save(inst, sender=host, launched_on=None, availability_zone=None, task_state="scheduling")
            return
        self.record_fault(inst, exc, host)
        self._release_boot_volumes(inst)
        self.save(inst, sender=host, launched_on=None, availability_zone=None, vm_state="error", task_state=None)

    def _release_boot_volumes(self, inst: db.Instance) -> None:
        for bdm in self.bdms.get(inst.uuid, []):
            if bdm.volume_id is not None:
                self.volumes.detach(self.volumes.get(bdm.volume_id))

    # -- delete --------------------------------------------------------------------------------

    def delete(self, uuid: str) -> None:
        """Delete an instance: ``delete.start``, ``shutdown.start/end``, ``delete.end``.

        An instance without a host is deleted by the API itself (its ``delete.*`` come from nova-api).
        """
        inst = self.instance(uuid)
        if inst.locked:
            raise InvalidState(f"instance {inst.uuid} is locked")
        if inst.vm_state == "resized" and inst.task_state is None:
            # Nova confirms a pending resize before deleting (``_confirm_resize_on_deleting``).
            self.confirm_resize(uuid)
        if inst.task_state in ("deleting", "migrating") or inst.uuid in self.migrations:
            raise InvalidState(f"instance {inst.uuid} is busy ({inst.task_state})")
        self.record_action(inst, "delete")
        self._terminate(inst, "delete")

    def force_delete(self, uuid: str) -> None:
        """Delete a soft-deleted instance now."""
        inst = self.instance(uuid)
        self.require(inst, "force_delete", ("soft-delete",))
        self.record_action(inst, "forceDelete")
        self._terminate(inst, "force_delete")

    def _terminate(self, inst: db.Instance, action: str) -> None:
        host = inst.host
        self.save(inst, source=API, sender=self.api_host, task_state="deleting")
        svc = self.services.get(host or "")
        if host is None or (svc is not None and svc.forced_down):
            # Nothing runs anywhere, or its compute service is down: the API deletes the record itself
            # ("local delete"); Nova's compute cleans the guest up when it comes back.
            self.notify(inst, "delete", "start", host=self.api_host, source=API)
            self._destroy(inst, host=self.api_host, source=API)
            self.notify(inst, "delete", "end", host=self.api_host, source=API)
            return
        self.notify(inst, "delete", "start", host=host)
        self.notify(inst, "shutdown", "start", host=host)
        try:
            self.check(action)
        except InjectedFailure as exc:
            # terminate_instance: error state first (task still deleting), then the fault, then
            # reverts_task_state, then wrap_exception; no delete.end.
            self.save(inst, sender=host, vm_state="error")
            self.record_fault(inst, exc, host)
            self.save(inst, sender=host, task_state=None)
            self.emit.exception(exc, "terminate_instance", host)
            return
        self.set_network_info(inst, [])
        self.notify(inst, "shutdown", "end", host=host)
        self._destroy(inst, host=host, source=COMPUTE)
        self.notify(inst, "delete", "end", host=host)

    def _destroy(self, inst: db.Instance, *, host: str, source: str) -> None:
        now = self.now()
        for bdm in self.bdms.pop(inst.uuid, []):
            bdm.deleted = True
            if bdm.volume_id is not None:
                vol = self.volumes.get(bdm.volume_id)
                self.volumes.detach(vol)
                if bdm.delete_on_termination:
                    self.volumes.delete(vol)
        self.save(inst, source=source, sender=host, old_states=(inst.vm_state, inst.task_state), vm_state="deleted",
                  task_state=None, power_state="pending", terminated_at=now)
        # The record is destroyed after that save: delete.end is the first to show deleted_at.
        inst.deleted_at = now
        inst.deleted = True
        del self.instances[inst.uuid]
        node = self.nodes.get(inst.host) if inst.host else None
        if node is not None:
            self.tracker.drop(node.uuid, inst.uuid)

    # -- soft delete and restore ---------------------------------------------------------------

    def soft_delete(self, uuid: str) -> None:
        """Power the instance off and keep it (and its resources) until restored or reclaimed."""
        inst = self.instance(uuid)
        self.require(inst, "soft_delete", ("active", "stopped", "paused", "suspended", "error"))
        if inst.host is None:
            raise InvalidState(f"instance {inst.uuid} has no host")
        self.record_action(inst, "delete")
        host = inst.host
        self.save(inst, source=API, sender=self.api_host, task_state="soft-deleting", deleted_at=self.now())
        self.notify(inst, "soft_delete", "start", host=host)
        try:
            self.check("soft_delete")
        except InjectedFailure as exc:
            # Nova sends soft_delete.end from a ``finally``: also when the driver failed.
            self.notify(inst, "soft_delete", "end", host=host)
            self.record_fault(inst, exc, host)
            self.save(inst, task_state=None, deleted_at=None)
            self.emit.exception(exc, "soft_delete_instance", host)
            return
        self.save(inst, vm_state="soft-delete", task_state=None, power_state="shutdown")
        self.notify(inst, "soft_delete", "end", host=host)

    def restore(self, uuid: str) -> None:
        """Bring a soft-deleted instance back."""
        inst = self.instance(uuid)
        self.require(inst, "restore", ("soft-delete",))
        self.record_action(inst, "restore")
        host = inst.host
        self.save(inst, source=API, sender=self.api_host, task_state="restoring", deleted_at=None)
        self.notify(inst, "restore", "start", host=host)
        if self._failed(inst, "restore", "restore_instance"):
            return
        self.save(inst, vm_state="active", task_state=None, power_state="running")
        self.notify(inst, "restore", "end", host=host)
