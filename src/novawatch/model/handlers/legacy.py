"""Handlers of legacy (unversioned) ``compute.instance.*`` notifications.

Nova builds every legacy payload from the instance (``info_from_instance``), so as with versioned ones
the newest notification about an instance wins. What legacy payloads lack is kept from what the model
knows: power state, lock, swap, whether the instance booted from volume, and its volumes (only
``volume.attach``/``volume.detach`` name one). Where the model knows nothing (an instance first seen in
a legacy notification, no source), the power state follows from the vm state as Nova's actions leave it.
"""

from __future__ import annotations

import sys
from typing import Any

from novawatch.model.cluster import ClusterModel
from novawatch.model.handlers.versioned import _delete
from novawatch.model.outcome import APPLIED, STALE
from novawatch.model.store import Instance
from novawatch.notifications.catalog import events
from novawatch.notifications.catalog.legacy import LegacyInstancePayload
from novawatch.snapshot import instance_disk_gb

#: The power state Nova's actions leave an instance in with each vm state (legacy payloads have none).
#: ``resized`` and ``error`` are absent: Nova keeps a stopped instance stopped through a resize, and an
#: error can happen anywhere, so the power state the model knows is kept.
POWER_STATE_OF = {
    "active": "running",
    "building": "pending",
    "paused": "paused",
    "suspended": "suspended",
    "stopped": "shutdown",
    "rescued": "running",
    "soft-delete": "shutdown",
    "shelved": "shutdown",
    "shelved_offloaded": "shutdown",
}


def _instance(m: ClusterModel, p: Any, ts: str | None) -> Instance | None:
    """The instance a legacy payload is about (fetched or created if unknown), or None if it is stale."""
    uuid = p.instance_id
    inst = m.store.edit_instance(uuid)
    if inst is None:
        if uuid in m.dead_instances:
            return None
        inst = m.fetch_instance(uuid)
        if inst is None:
            inst = Instance(uuid, p.tenant_id or "", p.display_name or "")
            m.store.add_instance(inst)
    elif ts is not None and ts < inst.ts:
        return None
    return inst


def instance_changed(m: ClusterModel, p: Any, ts: str | None) -> int:
    """Any ``compute.instance.*`` event: the payload is the instance as it now is (minus what legacy lacks)."""
    inst = _instance(m, p, ts)
    if inst is None:
        return STALE
    state = p.state
    if state == "deleted":
        return _delete(m, inst.uuid, ts)
    store = m.store
    root, ephemeral = p.root_gb, p.ephemeral_gb
    bfv, swap_gb = inst.bfv, inst.swap_gb
    if bfv is None or swap_gb is None:
        if inst.ts == "" and inst.vcpus | inst.memory_mb | inst.disk_gb:
            # From a snapshot (which has only the total): split it, assuming the flavor is unchanged.
            rest = inst.disk_gb - root - ephemeral
            bfv, swap_gb = (False, rest) if rest >= 0 else (True, max(inst.disk_gb - ephemeral, 0))
        else:
            if bfv is None:
                # Nova's image is empty when an instance boots from a volume; the legacy URL then ends
                # in ``/images/`` (or is empty when no image service URL could be made).
                url = p.image_ref_url
                bfv = not url or url.endswith("/")
            swap_gb = swap_gb or 0
        inst.bfv, inst.swap_gb = bfv, swap_gb
    host = p.host
    store.place(inst, host, p.node, p.vcpus, p.memory_mb, instance_disk_gb(root, ephemeral, 0, bfv) + swap_gb)
    if host is not None and host not in store.nodes_by_host:
        m.want_host(host)
    if state is not None and state != inst.state:
        store.set_state(inst, state)
        power_state = POWER_STATE_OF.get(state)
        if power_state is not None:
            inst.power_state = power_state
    task_state = p.state_description
    inst.task_state = sys.intern(task_state) if task_state else None
    name = p.display_name
    if name is not None and name != inst.display_name:
        inst.display_name = name
    if ts is not None:
        inst.ts = ts
    return APPLIED


def instance_deleted(m: ClusterModel, p: Any, ts: str | None) -> int:
    """``compute.instance.delete.end``: the instance is gone for good."""
    return _delete(m, p.instance_id, ts)


def volume_attached(m: ClusterModel, p: Any, ts: str | None) -> int:
    """``compute.instance.volume.attach``: one more volume."""
    return _volume(m, p, ts, True)


def volume_detached(m: ClusterModel, p: Any, ts: str | None) -> int:
    """``compute.instance.volume.detach``: one volume fewer."""
    return _volume(m, p, ts, False)


def _volume(m: ClusterModel, p: Any, ts: str | None, attached: bool) -> int:
    uuid, volume_id = p.instance_id, p.volume_id
    inst = m.store.edit_instance(uuid)
    if inst is None:
        # Unknown: the payload describes the instance as well as the volume event.
        if uuid in m.dead_instances or instance_changed(m, p, ts) != APPLIED:
            return STALE
        inst = m.store.edit_instance(uuid)
        if inst is None:
            return APPLIED
    # Ordered per volume, not per instance: a volume event says nothing about the instance's other fields;
    # but a complete (versioned) volume list newer than the event already accounts for it.
    if ts is not None and ts < inst.vol_ts:
        return STALE
    journal = m.volume_journal.setdefault(uuid, {})
    last = journal.get(volume_id)
    if last is not None and ts is not None and ts < last[0]:
        return STALE
    journal[volume_id] = (ts or (last[0] if last is not None else ""), attached)
    volumes = set(inst.volumes)
    if attached:
        volumes.add(volume_id)
    else:
        volumes.discard(volume_id)
    inst.volumes = tuple(sorted(volumes))
    return APPLIED


#: The events with their own handler; every other legacy event of the catalog carries the instance as it now is.
_OWN = ("compute.instance.delete.end", "compute.instance.volume.attach", "compute.instance.volume.detach")
#: Every ``compute.instance.*`` event that carries the instance as it now is.
INSTANCE_EVENTS = tuple(
    e.event_type for e in events()
    if not e.versioned and issubclass(e.payload, LegacyInstancePayload) and e.event_type not in _OWN
)

HANDLERS: dict[str, Any] = {
    **dict.fromkeys(INSTANCE_EVENTS, instance_changed),
    "compute.instance.delete.end": instance_deleted,
    "compute.instance.volume.attach": volume_attached,
    "compute.instance.volume.detach": volume_detached,
}
