"""A fake Cinder: volumes that can be created, reserved, attached, detached and swapped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from novawatch.compute import db
from novawatch.compute.errors import ComputeError, InvalidState, NotFound
from novawatch.compute.repository import Repository


class VolumeError(ComputeError):
    """A volume operation that the volume service refuses."""


class VolumeNotFound(VolumeError, NotFound):
    """No such volume (404)."""


class VolumeUnavailable(VolumeError, InvalidState):
    """The volume is attached or busy, not ``available`` (409)."""


class Volumes:
    """Volume records in the compute database, indexed by id in memory."""

    def __init__(self, repo: Repository, ids: Callable[[], str], now: Callable[[], datetime]) -> None:
        self.repo = repo
        self._ids = ids
        self._now = now
        self.by_id: dict[str, db.Volume] = {v.id: v for v in repo.all(db.Volume)}

    def create(self, size: int, *, name: str | None = None, project_id: str | None = None) -> db.Volume:
        """A new, available volume of ``size`` GB."""
        vol = db.Volume(id=self._ids(), size=size, status="available", instance_uuid=None, created_at=self._now(),
                        name=name, project_id=project_id)
        self.repo.add(vol)
        self.by_id[vol.id] = vol
        return vol

    def get(self, volume_id: str) -> db.Volume:
        try:
            return self.by_id[volume_id]
        except KeyError:
            raise VolumeNotFound(f"volume {volume_id} not found") from None

    def reserve(self, vol: db.Volume) -> None:
        if vol.status != "available":
            raise VolumeUnavailable(f"volume {vol.id} is {vol.status}, not available")
        vol.status = "attaching"

    def attach(self, vol: db.Volume, instance_uuid: str) -> None:
        vol.status = "in-use"
        vol.instance_uuid = instance_uuid
        vol.updated_at = self._now()

    def unreserve(self, vol: db.Volume) -> None:
        vol.status = "available"
        vol.instance_uuid = None

    def detach(self, vol: db.Volume) -> None:
        vol.status = "available"
        vol.instance_uuid = None
        vol.updated_at = self._now()

    def remove(self, vol: db.Volume) -> None:
        """Delete a volume at a user's request: only an ``available`` or ``error`` one (Cinder's rule)."""
        if vol.status not in ("available", "error"):
            raise VolumeError(f"Invalid volume: Volume status must be available or error and must not be "
                              f"attached (volume {vol.id} is {vol.status}).")
        self.delete(vol)

    def delete(self, vol: db.Volume) -> None:
        self.by_id.pop(vol.id, None)
        self.repo.delete(vol)
