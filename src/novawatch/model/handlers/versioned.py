"""Handlers of versioned notifications (``nova_object`` payloads).

Every instance payload Nova sends carries the whole instance (state, host, flavor, block devices), so
one handler applies them all: the newest notification about an instance wins. Only deletion differs.
"""

from __future__ import annotations

import sys
from typing import Any

from novawatch.model.cluster import ClusterModel, ServiceState
from novawatch.model.outcome import APPLIED, IGNORED, STALE
from novawatch.model.store import Instance, Node
from novawatch.notifications.catalog import events
from novawatch.notifications.catalog.instance import InstancePayload
from novawatch.snapshot import instance_disk_gb


def instance_changed(m: ClusterModel, payload: Any, ts: str | None) -> int:
    """Any instance action or update: the payload is the instance as it now is."""
    p = payload.data
    uuid = p.uuid
    store = m.store
    inst = store.edit_instance(uuid)
    if inst is None:
        if uuid in m.dead_instances:
            return STALE
        inst = m.fetch_instance(uuid)
        if inst is None:
            inst = Instance(uuid, p.tenant_id or "", p.display_name or "")
            store.add_instance(inst)
    elif ts is not None and ts < inst.ts:
        return STALE
    flavor = p.flavor.data
    bdms = p.block_devices
    if bdms is None:
        # Not reported (Nova's bdms_in_notifications=False): keep the volumes the model knows.
        bfv = inst.bfv if inst.bfv is not None else not p.image_uuid
    else:
        if bdms:
            volumes = []
            bfv = False
            for bdm in bdms:
                data = bdm.data
                volumes.append(data.volume_id)
                if data.boot_index == 0:
                    bfv = True
            if volumes != list(inst.volumes):
                inst.volumes = tuple(volumes)
        else:
            bfv = False
            inst.volumes = ()
        if ts is not None:
            inst.vol_ts = ts
        if m.volume_journal:
            m.replay_volume_journal(inst, ts)
    inst.bfv = bfv
    swap_mb = flavor.swap or 0
    inst.swap_gb = -(-swap_mb // 1024)  # MB rounded up to GB, as instance_disk_gb counts it
    host = p.host
    vcpus = flavor.vcpus or 0
    memory_mb = flavor.memory_mb or 0
    disk_gb = instance_disk_gb(flavor.root_gb or 0, flavor.ephemeral_gb or 0, swap_mb, bfv)
    if host == inst.host and vcpus == inst.vcpus and memory_mb == inst.memory_mb and disk_gb == inst.disk_gb:
        # Most notifications neither move nor resize the instance: skip the usage bookkeeping.
        node = p.node
        if node != inst.node:
            inst.node = sys.intern(node) if node is not None else None
    else:
        store.place(inst, host, p.node, vcpus, memory_mb, disk_gb)
        if host is not None and host not in store.nodes_by_host:
            m.want_host(host)  # a host the model has no node for: the source may know it
    # Fields Nova sends as null keep what the model knows (the snapshot contract has no nulls there).
    state = p.state
    if state == "deleted":
        return _delete(m, uuid, ts)
    if state is not None and state != inst.state:
        store.set_state(inst, state)
    if p.power_state is not None:
        inst.power_state = p.power_state
    inst.task_state = p.task_state
    inst.locked = p.locked
    name = p.display_name
    if name is not None and name != inst.display_name:
        inst.display_name = name
    if ts is not None:
        inst.ts = ts
    return APPLIED


def instance_deleted(m: ClusterModel, payload: Any, ts: str | None) -> int:
    """``instance.delete.end``: the instance is gone; remember it so late updates stay dead."""
    return _delete(m, payload.data.uuid, ts)


def _delete(m: ClusterModel, uuid: str, ts: str | None) -> int:
    # Deletion is final in Nova (a uuid never comes back), so even a delete older than the state the
    # model holds wins: that can only mean clocks disagree between hosts.
    m.store.remove_instance(uuid)
    m.dead_instances.bury(uuid, ts)
    m.volume_journal.pop(uuid, None)
    return APPLIED


def service_changed(m: ClusterModel, payload: Any, ts: str | None) -> int:
    """``service.create/update``: a compute service's liveness (forced down) and status (disabled)."""
    p = payload.data
    if p.binary != "nova-compute":
        return IGNORED
    state = "down" if p.forced_down else "up"
    status = "disabled" if p.disabled else "enabled"
    node = m.node_for_host(p.host)
    if node is None:
        pending = m.pending_services.get(p.host)
        if pending is not None and ts is not None and ts < pending.ts:
            return STALE
        last = ts if ts is not None else (pending.ts if pending is not None else "")
        m.pending_services[p.host] = ServiceState(state, status, p.disabled_reason, last)
        return APPLIED
    if ts is not None and ts < node.svc_ts:
        return STALE
    node.state = state
    node.status = status
    node.disabled_reason = p.disabled_reason
    if ts is not None:
        node.svc_ts = ts
    return APPLIED


def service_deleted(m: ClusterModel, payload: Any, ts: str | None) -> int:
    """``service.delete``: Nova deletes the compute nodes of a deleted compute service."""
    p = payload.data
    if p.binary != "nova-compute":
        return IGNORED
    m.pending_services.pop(p.host, None)
    node = m.store.nodes_by_host.get(p.host)
    if node is None:
        return APPLIED
    if ts is not None and ts < node.svc_ts and ts < node.cn_ts:
        return STALE
    m.store.remove_node(node.uuid)
    m.dead_nodes.bury(node.uuid, ts)
    return APPLIED


def compute_node_changed(m: ClusterModel, payload: Any, ts: str | None) -> int:
    """``compute_node.create/update``: capacity, names and the usage the node reports."""
    p = payload.data
    store = m.store
    node = store.edit_node(p.uuid)
    if node is None:
        if p.uuid in m.dead_nodes:
            return STALE
        hypervisor_hostname = p.hypervisor_hostname or p.host or p.uuid
        node = Node(p.uuid, p.host or hypervisor_hostname, hypervisor_hostname)
        _set_capacity(node, p, ts)
        m.add_node(node)
        return APPLIED
    if ts is not None and ts < node.cn_ts:
        return STALE
    store.rename_node(node, p.host or node.host, p.hypervisor_hostname or node.hypervisor_hostname)
    _set_capacity(node, p, ts)
    return APPLIED


def _set_capacity(node: Node, p: Any, ts: str | None) -> None:
    node.vcpus = p.vcpus
    node.memory_mb = p.memory_mb
    node.local_gb = p.local_gb
    node.reported = (p.vcpus_used, p.memory_mb_used, p.local_gb_used, p.running_vms)
    node.inventory = None  # the node's own figures now, not Placement's
    if ts is not None:
        node.cn_ts = ts


def compute_node_deleted(m: ClusterModel, payload: Any, ts: str | None) -> int:
    """``compute_node.delete``: the node is gone (its instances, if any, stay mapped to the host)."""
    uuid = payload.data.uuid
    m.store.remove_node(uuid)
    m.dead_nodes.bury(uuid, ts)
    return APPLIED


#: Instance events whose payload is the instance as it now is: every event of the catalog that carries an
#: instance payload but ``instance.delete.end``. ``.start`` phases are applied too: they carry task states
#: the model holds, and ordering by timestamp makes the ``.end`` win.
INSTANCE_EVENTS = tuple(
    e.event_type for e in events()
    if e.versioned and issubclass(e.payload, InstancePayload) and e.event_type != "instance.delete.end"
)

HANDLERS: dict[str, Any] = {
    **dict.fromkeys(INSTANCE_EVENTS, instance_changed),
    "instance.delete.end": instance_deleted,
    "service.create": service_changed,
    "service.update": service_changed,
    "service.delete": service_deleted,
    "compute_node.create": compute_node_changed,
    "compute_node.update": compute_node_changed,
    "compute_node.delete": compute_node_deleted,
}
