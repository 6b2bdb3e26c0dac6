"""Actions on a running instance in place: power, reboot, pause, suspend, rescue, lock, snapshot, tags, metadata."""

from __future__ import annotations

from typing import Any, NamedTuple

from novawatch.compute import db
from novawatch.compute.core import API, ComputeCore, InvalidState, NotFound, image_id
from novawatch.compute.failures import InjectedFailure


class Simple(NamedTuple):
    """An action that runs on the instance's own host: API sets ``task``, compute does it and sends start/end."""

    event: str
    allowed: tuple[str, ...]
    task: str
    final: dict[str, Any]
    function: str
    #: On failure Nova's ``_error_out_instance_on_exception`` puts the instance in error first.
    errors_out: bool = False
    #: Send ``instance.exists`` after the hypervisor call (rescue does).
    exists: bool = False


SIMPLE: dict[str, Simple] = {
    "power_off": Simple("power_off", ("active", "error", "rescued"), "powering-off",
                        {"vm_state": "stopped", "power_state": "shutdown"}, "stop_instance"),
    "power_on": Simple("power_on", ("stopped",), "powering-on",
                       {"vm_state": "active", "power_state": "running"}, "start_instance"),
    "pause": Simple("pause", ("active",), "pausing",
                    {"vm_state": "paused", "power_state": "paused"}, "pause_instance"),
    "unpause": Simple("unpause", ("paused",), "unpausing",
                      {"vm_state": "active", "power_state": "running"}, "unpause_instance"),
    "suspend": Simple("suspend", ("active",), "suspending",
                      {"vm_state": "suspended", "power_state": "suspended"}, "suspend_instance", errors_out=True),
    "resume": Simple("resume", ("suspended",), "resuming",
                     {"vm_state": "active", "power_state": "running"}, "resume_instance", errors_out=True),
    "rescue": Simple("rescue", ("active", "stopped"), "rescuing",
                     {"vm_state": "rescued", "power_state": "running"}, "rescue_instance", errors_out=True,
                     exists=True),
    "unrescue": Simple("unrescue", ("rescued",), "unrescuing",
                       {"vm_state": "active", "power_state": "running"}, "unrescue_instance", errors_out=True),
    "trigger_crash_dump": Simple("trigger_crash_dump", ("active",), "", {}, "trigger_crash_dump"),
}


class Operations(ComputeCore):
    """In-place instance actions."""

    def _simple(self, uuid: str, name: str, **values: Any) -> db.Instance:
        spec = SIMPLE[name]
        inst = self.instance(uuid)
        self.require(inst, name, spec.allowed)
        if inst.host is None:
            raise InvalidState(f"instance {inst.uuid} has no host")
        self.record_action(inst, name)
        host = inst.host
        if spec.task:
            self.save(inst, source=API, sender=self.api_host, task_state=spec.task)
        self.notify(inst, spec.event, "start", host=host, **values)
        try:
            self.check(name)
        except InjectedFailure as exc:
            if spec.errors_out:
                self.save(inst, vm_state="error")
            self.record_fault(inst, exc, host)
            self.save(inst, task_state=None)
            self.emit.exception(exc, spec.function, host)
            return inst
        if spec.exists:
            self.exists(inst, host)
        if spec.final or spec.task:
            extra: dict[str, Any] = {"launched_at": self.now()} if name == "rescue" else {}
            self.save(inst, task_state=None, **spec.final, **extra)
        self.notify(inst, spec.event, "end", host=host, **values)
        return inst

    def power_off(self, uuid: str) -> db.Instance:
        """Stop the guest (``power_off.start/end``): active, error or rescued -> stopped."""
        return self._simple(uuid, "power_off")

    def power_on(self, uuid: str) -> db.Instance:
        """Start a stopped guest (``power_on.start/end``)."""
        return self._simple(uuid, "power_on")

    def pause(self, uuid: str) -> db.Instance:
        """Pause in memory (``pause.start/end``): active -> paused."""
        return self._simple(uuid, "pause")

    def unpause(self, uuid: str) -> db.Instance:
        """Unpause (``unpause.start/end``): paused -> active."""
        return self._simple(uuid, "unpause")

    def suspend(self, uuid: str) -> db.Instance:
        """Suspend to disk (``suspend.start/end``): active -> suspended."""
        return self._simple(uuid, "suspend")

    def resume(self, uuid: str) -> db.Instance:
        """Resume (``resume.start/end``): suspended -> active."""
        return self._simple(uuid, "resume")

    def rescue(self, uuid: str, rescue_image_ref: str | None = None) -> db.Instance:
        """Boot the rescue image (``rescue.start``, ``exists``, ``rescue.end``): active or stopped -> rescued."""
        # Without a rescue image Nova uses the instance's own image and reports no rescue image ref.
        ref = image_id(rescue_image_ref) if rescue_image_ref else None
        return self._simple(uuid, "rescue", rescue_image_ref=ref)

    def unrescue(self, uuid: str) -> db.Instance:
        """Leave rescue (``unrescue.start/end``): rescued -> active."""
        return self._simple(uuid, "unrescue")

    def trigger_crash_dump(self, uuid: str) -> db.Instance:
        """Ask the guest for a crash dump (``trigger_crash_dump.start/end``); no state changes."""
        return self._simple(uuid, "trigger_crash_dump")

    def reboot(self, uuid: str, *, hard: bool = False) -> db.Instance:
        """Reboot (soft only from active; hard also from stopped, paused, suspended, error).

        A failing reboot that leaves the guest running sends ``reboot.error`` with the fault and then
        finishes like a successful one (``reboot.end``), as Nova does.
        """
        inst = self.instance(uuid)
        allowed = ("active", "stopped", "paused", "suspended", "error") if hard else ("active",)
        self.require(inst, "reboot", allowed)
        if inst.host is None:
            raise InvalidState(f"instance {inst.uuid} has no host")
        self.record_action(inst, "reboot")
        host = inst.host
        suffix = "_hard" if hard else ""
        self.save(inst, source=API, sender=self.api_host, task_state="rebooting" + suffix)
        # Nova sets reboot_pending in memory before reboot.start, and saves it just after.
        before = (inst.vm_state, inst.task_state)
        inst.task_state = "reboot_pending" + suffix
        self.notify(inst, "reboot", "start", host=host)
        self.save(inst, old_states=before)
        self.save(inst, task_state="reboot_started" + suffix)
        try:
            self.check("reboot")
        except InjectedFailure as exc:
            self.record_fault(inst, exc, host)
            self.notify(inst, "reboot", "error", host=host, fault=exc)
        self.save(inst, vm_state="rescued" if inst.vm_state == "rescued" else "active", task_state=None,
                  power_state="running")
        self.notify(inst, "reboot", "end", host=host)
        return inst

    def lock(self, uuid: str, reason: str | None = None, *, by: str = "owner") -> db.Instance:
        """Lock the instance against changes (``instance.lock`` from the API)."""
        inst = self.instance(uuid)
        self.record_action(inst, "lock")
        self.save(inst, source=API, sender=self.api_host, locked=True, locked_by=by, locked_reason=reason)
        self.notify(inst, "lock", host=self.api_host, source=API)
        return inst

    def unlock(self, uuid: str) -> db.Instance:
        inst = self.instance(uuid)
        self.record_action(inst, "unlock")
        self.save(inst, source=API, sender=self.api_host, locked=False, locked_by=None, locked_reason=None)
        self.notify(inst, "unlock", host=self.api_host, source=API)
        return inst

    def snapshot(self, uuid: str) -> str:
        """Snapshot the instance to a new image; returns the image id."""
        inst = self.instance(uuid)
        self.require(inst, "snapshot", ("active", "stopped", "paused", "suspended"))
        if inst.host is None:
            raise InvalidState(f"instance {inst.uuid} has no host")
        self.record_action(inst, "createImage")
        host = inst.host
        image = self.ids()
        self.save(inst, source=API, sender=self.api_host, task_state="image_snapshot_pending")
        self.save(inst, task_state="image_snapshot")
        self.save(inst)  # the power state refresh
        self.notify(inst, "snapshot", "start", host=host, snapshot_image_id=image)
        self.save(inst, task_state="image_pending_upload")
        self.save(inst, task_state="image_uploading")
        if self._failed(inst, "snapshot", "snapshot_instance"):
            return image
        self.save(inst, task_state=None)
        self.notify(inst, "snapshot", "end", host=host, snapshot_image_id=image)
        return image

    def set_tags(self, uuid: str, tags: list[str]) -> db.Instance:
        """Replace the tags (an ``instance.update`` from the API)."""
        inst = self.instance(uuid)
        inst.tags = sorted(set(tags))
        inst.updated_at = self.now()
        # The tags API sends the update itself, as nova-api, whatever notify_on_state_change says.
        self.emit.instance("instance.update", self.context(inst, _old_states=(inst.vm_state, inst.task_state)),
                           host=self.api_host, source=API, legacy_service="nova-api")
        return inst

    def update_metadata(self, uuid: str, metadata: dict[str, str], *, replace: bool = False) -> db.Instance:
        """Merge (or replace) the metadata (an ``instance.update`` from the API)."""
        inst = self.instance(uuid)
        merged = dict(metadata) if replace else {**inst.metadata_, **metadata}
        self.save(inst, source=API, sender=self.api_host, metadata_=merged)
        return inst

    def delete_metadata(self, uuid: str, key: str) -> db.Instance:
        """Remove one metadata item (an ``instance.update`` from the API); :class:`NotFound` when it is not there."""
        inst = self.instance(uuid)
        if key not in inst.metadata_:
            raise NotFound("Metadata item was not found")
        self.save(inst, source=API, sender=self.api_host,
                  metadata_={k: v for k, v in inst.metadata_.items() if k != key})
        return inst

    def rename(self, uuid: str, name: str | None = None, description: str | None = None, *,
               clear_description: bool = False) -> db.Instance:
        """Change the display name and/or description (an ``instance.update`` naming the old display name).

        ``clear_description`` removes the description (Nova's ``"description": null``).

        As Nova's ``Instance.save()`` in the API: the update comes from the API host, published as
        ``nova-compute``, whatever the instance's state.
        """
        inst = self.instance(uuid)
        old_name = inst.display_name
        if name is not None:
            inst.display_name = name
        if description is not None or clear_description:
            inst.display_description = description
        inst.updated_at = self.now()
        if self.state_updates:
            renamed = old_name if inst.display_name != old_name else None
            self.emit.instance("instance.update",
                               self.context(inst, _old_states=(inst.vm_state, inst.task_state),
                                            old_display_name=renamed),
                               host=self.api_host)
        return inst

    def console_output(self, uuid: str, length: int | None = None) -> str:
        """The guest's console log, its last ``length`` lines when given (the fake hypervisor's: the boot).

        :class:`InvalidState` when the instance has no host (Nova's ``InstanceNotReady``).
        """
        inst = self.instance(uuid)
        if inst.host is None:
            raise InvalidState(f"Instance {uuid} is not ready")
        name = f"instance-{inst.id:08x}"
        launched = inst.launched_at.strftime("%Y-%m-%d %H:%M:%S") if inst.launched_at else "-"
        lines = [f"novawatch fake hypervisor: {name} ({inst.display_name}) on {inst.host}",
                 f"[    0.000000] booting {inst.image_ref or 'from volume'} with {inst.vcpus} vCPU, "
                 f"{inst.memory_mb} MB RAM",
                 f"[    0.000001] launched at {launched} UTC",
                 f"{inst.hostname or name} login: "]
        if length is not None:
            lines = lines[-length:] if length > 0 else []
        return "\n".join(lines)
