"""Attachments: volume attach, detach and swap; network interface attach and detach."""

from __future__ import annotations

from typing import Any

from novawatch.compute import db
from novawatch.compute.core import ComputeCore, InvalidState
from novawatch.compute.failures import InjectedFailure

_ATTACHABLE = ("active", "paused", "stopped", "suspended", "resized", "shelved", "shelved_offloaded")


class AttachActions(ComputeCore):
    """Volumes (through the fake Cinder) and ports (through the fake Neutron)."""

    def _on_host(self, inst: db.Instance, action: str) -> str:
        self.require(inst, action, _ATTACHABLE[:5])
        if inst.host is None:
            raise InvalidState(f"instance {inst.uuid} has no host")
        return inst.host

    # -- volumes ---------------------------------------------------------------------------------

    def create_volume(self, size: int, *, name: str | None = None, project_id: str | None = None) -> db.Volume:
        """A new available volume of ``size`` GB (the fake Cinder's; it sends nothing)."""
        return self.volumes.create(size, name=name, project_id=project_id)

    def delete_volume(self, volume_id: str) -> None:
        """Delete an available volume (the fake Cinder's; it sends nothing)."""
        self.volumes.remove(self.volumes.get(volume_id))

    def attach_volume(self, uuid: str, volume_id: str) -> db.BlockDeviceMapping | None:
        """Attach a volume: ``volume_attach.start`` then ``.end``, or ``.error`` (mapping removed) on failure."""
        inst = self.instance(uuid)
        host = self._on_host(inst, "attach_volume")
        vol = self.volumes.get(volume_id)
        self.volumes.reserve(vol)
        self.record_action(inst, "attach_volume")
        bdm = self._add_bdm(inst, vol, self._device_name(inst))
        self.notify(inst, "volume_attach", "start", host=host, volume_id=vol.id)
        try:
            self.check("attach_volume")
        except InjectedFailure as exc:
            self.record_fault(inst, exc, host)
            self._remove_bdm(inst, bdm)
            self.volumes.unreserve(vol)
            self.notify(inst, "volume_attach", "error", host=host, fault=exc, volume_id=vol.id)
            self.emit.exception(exc, "attach_volume", host)
            return None
        self.volumes.attach(vol, inst.uuid)
        self.notify(inst, "volume_attach", "end", host=host, volume_id=vol.id)
        return bdm

    def _remove_bdm(self, inst: db.Instance, bdm: db.BlockDeviceMapping) -> None:
        bdm.deleted = True
        self.bdms[inst.uuid].remove(bdm)

    def _bdm(self, inst: db.Instance, volume_id: str) -> db.BlockDeviceMapping:
        for bdm in self.bdms.get(inst.uuid, []):
            if bdm.volume_id == volume_id:
                return bdm
        raise InvalidState(f"volume {volume_id} is not attached to instance {inst.uuid}")

    def detach_volume(self, uuid: str, volume_id: str) -> None:
        """Detach a (non-root) volume: ``volume_detach.start/end``."""
        inst = self.instance(uuid)
        host = self._on_host(inst, "detach_volume")
        bdm = self._bdm(inst, volume_id)
        if bdm.boot_index == 0:
            raise InvalidState("cannot detach the root volume")
        vol = self.volumes.get(volume_id)
        self.record_action(inst, "detach_volume")
        vol.status = "detaching"
        self.notify(inst, "volume_detach", "start", host=host, volume_id=vol.id)
        try:
            self.check("detach_volume")
        except InjectedFailure as exc:
            self.record_fault(inst, exc, host)
            vol.status = "in-use"
            self.emit.exception(exc, "detach_volume", host)
            return
        self._remove_bdm(inst, bdm)
        self.volumes.detach(vol)
        self.notify(inst, "volume_detach", "end", host=host, volume_id=vol.id)

    def swap_volume(self, uuid: str, old_volume_id: str, new_volume_id: str) -> None:
        """Move an attachment to another volume (the swap-volume spec).

        ``volume_swap.start``, then ``.end``; on failure ``.error`` with the fault, and the mapping stays
        on the old volume.
        """
        inst = self.instance(uuid)
        host = self._on_host(inst, "swap_volume")
        bdm = self._bdm(inst, old_volume_id)
        old, new = self.volumes.get(old_volume_id), self.volumes.get(new_volume_id)
        self.volumes.reserve(new)
        old.status = "detaching"
        self.record_action(inst, "swap_volume")
        ids: dict[str, Any] = {"old_volume_id": old.id, "new_volume_id": new.id}
        self.notify(inst, "volume_swap", "start", host=host, **ids)
        try:
            self.check("swap_volume")
        except InjectedFailure as exc:
            self.record_fault(inst, exc, host)
            old.status = "in-use"
            self.volumes.unreserve(new)
            self.notify(inst, "volume_swap", "error", host=host, fault=exc, **ids)
            self.emit.exception(exc, "swap_volume", host)
            return
        bdm.volume_id = new.id
        bdm.volume_size = new.size
        bdm.attachment_id = self.ids()
        self.volumes.detach(old)
        self.volumes.attach(new, inst.uuid)
        self.notify(inst, "volume_swap", "end", host=host, **ids)

    # -- interfaces ------------------------------------------------------------------------------

    def attach_interface(self, uuid: str) -> str | None:
        """Attach a new port; returns its id (None when the attach failed with ``interface_attach.error``)."""
        inst = self.instance(uuid)
        host = self._on_host(inst, "attach_interface")
        self.record_action(inst, "attach_interface")
        self.notify(inst, "interface_attach", "start", host=host)
        vif = self.network.allocate_port()
        try:
            self.check("attach_interface")
        except InjectedFailure as exc:
            self.record_fault(inst, exc, host)
            self.notify(inst, "interface_attach", "error", host=host, fault=exc)
            self.emit.exception(exc, "attach_interface", host)
            return None
        self.set_network_info(inst, [*inst.info_cache.network_info, vif])
        self.notify(inst, "interface_attach", "end", host=host)
        return str(vif["id"])

    def detach_interface(self, uuid: str, port_id: str) -> None:
        """Detach a port: ``interface_detach.start/end``."""
        inst = self.instance(uuid)
        host = self._on_host(inst, "detach_interface")
        remaining = [vif for vif in inst.info_cache.network_info if vif["id"] != port_id]
        if len(remaining) == len(inst.info_cache.network_info):
            raise InvalidState(f"port {port_id} is not attached to instance {inst.uuid}")
        self.record_action(inst, "detach_interface")
        self.notify(inst, "interface_detach", "start", host=host)
        if self._failed(inst, "detach_interface", "detach_interface"):
            return
        self.set_network_info(inst, remaining)
        self.notify(inst, "interface_detach", "end", host=host)
