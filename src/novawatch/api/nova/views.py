"""Nova's JSON views of the compute service's rows, field for field, per microversion.

The rows are the compute service's (``novawatch.compute.db``); they are read by attribute only, so
this module needs nothing from ``compute`` but duck typing.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from novawatch.api.nova.faults import NovaError
from novawatch.api.nova.microversion import Version, v

#: Nova's server status from (vm_state, task_state) (``nova/api/openstack/common.py:_STATE_MAP``).
_RESIZE_TASKS = ("resize_prep", "resize_migrating", "resize_migrated", "resize_finish")
_REBUILD_TASKS = ("rebuilding", "rebuild_block_device_mapping", "rebuild_spawning")
_STATE_MAP: dict[str, dict[str | None, str]] = {
    "active": {
        None: "ACTIVE",
        "rebooting": "REBOOT", "reboot_pending": "REBOOT", "reboot_started": "REBOOT",
        "rebooting_hard": "HARD_REBOOT", "reboot_pending_hard": "HARD_REBOOT", "reboot_started_hard": "HARD_REBOOT",
        "updating_password": "PASSWORD", "migrating": "MIGRATING",
        **dict.fromkeys(_REBUILD_TASKS, "REBUILD"), **dict.fromkeys(_RESIZE_TASKS, "RESIZE"),
    },
    "building": {None: "BUILD"},
    "stopped": {None: "SHUTOFF", **dict.fromkeys(_RESIZE_TASKS, "RESIZE"), **dict.fromkeys(_REBUILD_TASKS, "REBUILD")},
    "resized": {None: "VERIFY_RESIZE", "resize_reverting": "REVERT_RESIZE"},
    "paused": {None: "PAUSED", "migrating": "MIGRATING"},
    "suspended": {None: "SUSPENDED"},
    "rescued": {None: "RESCUE"},
    "error": {None: "ERROR", **dict.fromkeys(_REBUILD_TASKS, "REBUILD")},
    "deleted": {None: "DELETED"},
    "soft-delete": {None: "SOFT_DELETED"},
    "shelved": {None: "SHELVED"},
    "shelved_offloaded": {None: "SHELVED_OFFLOADED"},
}

#: ``OS-EXT-STS:power_state`` is Nova's integer (``nova/compute/power_state.py``).
POWER_STATES = {"pending": 0, "running": 1, "paused": 3, "shutdown": 4, "crashed": 6, "suspended": 7}


def server_status(vm_state: str | None, task_state: str | None) -> str:
    """The API status Nova shows for a vm_state and task_state (``UNKNOWN`` for anything else)."""
    table = _STATE_MAP.get(vm_state or "")
    if table is None:
        return "UNKNOWN"
    return table.get(task_state, table[None])


def isotime(moment: datetime | None) -> str | None:
    """Nova's timestamp form, ``2012-10-29T13:42:11Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def links(base: str, kind: str, ident: str) -> list[dict[str, str]]:
    """``self`` (versioned) and ``bookmark`` links of a resource; ``base`` ends with ``/``."""
    return [{"rel": "self", "href": f"{base}v2.1/{kind}/{ident}"},
            {"rel": "bookmark", "href": f"{base}{kind}/{ident}"}]


def host_id(project_id: str | None, host: str | None) -> str:
    """Nova's opaque ``hostId``: the same for two servers of one project on one host."""
    if not host:
        return ""
    return hashlib.sha224(((project_id or "") + host).encode()).hexdigest()


# --- flavors ---------------------------------------------------------------------------------------


def flavor_brief(flavor: Any, base: str, version: Version) -> dict[str, Any]:
    body: dict[str, Any] = {"id": flavor.flavorid, "name": flavor.name,
                            "links": links(base, "flavors", flavor.flavorid)}
    if version >= v("2.55"):
        body["description"] = flavor.description
    return body


def flavor_detail(flavor: Any, base: str, version: Version) -> dict[str, Any]:
    body = flavor_brief(flavor, base, version)
    body.update({
        "ram": flavor.memory_mb, "disk": flavor.root_gb, "vcpus": flavor.vcpus,
        "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
        # Before 2.75 Nova shows a swap of 0 as "".
        "swap": flavor.swap if flavor.swap or version >= v("2.75") else "",
        "rxtx_factor": flavor.rxtx_factor, "os-flavor-access:is_public": bool(flavor.is_public),
        "OS-FLV-DISABLED:disabled": bool(flavor.disabled),
    })
    if version >= v("2.61"):
        body["extra_specs"] = dict(flavor.extra_specs or {})
    return body


# --- servers ---------------------------------------------------------------------------------------


def addresses(network_info: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """``addresses``: network label -> fixed IPs with their MAC, from the instance's network info."""
    out: dict[str, list[dict[str, Any]]] = {}
    for vif in network_info:
        net = vif.get("network") or {}
        for subnet in net.get("subnets", []):
            for ip in subnet.get("ips", []):
                out.setdefault(net.get("label", "private"), []).append({
                    "version": ip.get("version", 4), "addr": ip.get("address"),
                    "OS-EXT-IPS:type": ip.get("type", "fixed"), "OS-EXT-IPS-MAC:mac_addr": vif.get("address"),
                })
    return out


def server_brief(inst: Any, base: str) -> dict[str, Any]:
    return {"id": inst.uuid, "name": inst.display_name, "links": links(base, "servers", inst.uuid)}


def server_detail(inst: Any, flavor: Any, bdms: list[Any], base: str, version: Version) -> dict[str, Any]:
    """``GET /servers/{id}`` at ``version`` (as an admin sees it: the ``OS-EXT-SRV-ATTR`` fields included)."""
    status = server_status(inst.vm_state, inst.task_state)
    network_info = inst.info_cache.network_info if inst.info_cache is not None else []
    if version >= v("2.47"):
        flavor_view: dict[str, Any] = {
            "vcpus": flavor.vcpus, "ram": flavor.memory_mb, "disk": flavor.root_gb,
            "ephemeral": flavor.ephemeral_gb, "swap": flavor.swap, "original_name": flavor.name,
            "extra_specs": dict(flavor.extra_specs or {}),
        }
    else:
        flavor_view = {"id": flavor.flavorid,
                       "links": [{"rel": "bookmark", "href": f"{base}flavors/{flavor.flavorid}"}]}
    # A server booted from volume shows image "" (openstacksdk turns that into None).
    image: Any = ({"id": inst.image_ref, "links": [{"rel": "bookmark", "href": f"{base}images/{inst.image_ref}"}]}
                  if inst.image_ref else "")
    body: dict[str, Any] = {
        "id": inst.uuid, "name": inst.display_name, "status": status,
        "tenant_id": inst.project_id, "user_id": inst.user_id,
        "metadata": {str(k): str(val) for k, val in (inst.metadata_ or {}).items()},
        "hostId": host_id(inst.project_id, inst.host),
        "image": image, "flavor": flavor_view,
        "created": isotime(inst.created_at), "updated": isotime(inst.updated_at),
        "addresses": addresses(network_info), "accessIPv4": "", "accessIPv6": "",
        "links": links(base, "servers", inst.uuid), "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": inst.availability_zone or "",
        "config_drive": "", "key_name": inst.key_name,
        "OS-SRV-USG:launched_at": _usg(getattr(inst, "launched_at", None)),
        "OS-SRV-USG:terminated_at": _usg(getattr(inst, "terminated_at", None)),
        "security_groups": [{"name": "default"}] if network_info else [],
        "OS-EXT-SRV-ATTR:host": inst.host,
        "OS-EXT-SRV-ATTR:instance_name": f"instance-{inst.id:08x}",
        "OS-EXT-SRV-ATTR:hypervisor_hostname": inst.node,
        "OS-EXT-STS:task_state": inst.task_state, "OS-EXT-STS:vm_state": inst.vm_state,
        "OS-EXT-STS:power_state": POWER_STATES.get(inst.power_state or "", 0),
        "os-extended-volumes:volumes_attached": [
            {"id": b.volume_id, **({"delete_on_termination": bool(b.delete_on_termination)}
                                   if version >= v("2.3") else {})}
            for b in bdms if b.volume_id and not b.deleted
        ],
    }
    if status in ("ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"):
        body["progress"] = inst.progress or 0
    if version >= v("2.3"):
        body.update({
            "OS-EXT-SRV-ATTR:reservation_id": inst.reservation_id, "OS-EXT-SRV-ATTR:launch_index": 0,
            "OS-EXT-SRV-ATTR:hostname": inst.hostname, "OS-EXT-SRV-ATTR:kernel_id": inst.kernel_id or "",
            "OS-EXT-SRV-ATTR:ramdisk_id": inst.ramdisk_id or "", "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
            "OS-EXT-SRV-ATTR:user_data": None,
        })
    if version >= v("2.9"):
        body["locked"] = bool(inst.locked)
    if version >= v("2.16"):
        body["host_status"] = "UP" if inst.host else ""
    if version >= v("2.19"):
        body["description"] = inst.display_description
    if version >= v("2.26"):
        body["tags"] = sorted(str(t) for t in (inst.tags or []))
    if version >= v("2.63"):
        body["trusted_image_certificates"] = None
    if version >= v("2.71"):
        body["server_groups"] = []
    if version >= v("2.73"):
        body["locked_reason"] = inst.locked_reason if inst.locked else None
    return body


def _usg(moment: datetime | None) -> str | None:
    # OS-SRV-USG timestamps carry microseconds and no zone, as Nova shows them.
    return moment.isoformat() if moment is not None else None


# --- services (of hypervisors, services, availability zones) ------------------------------------------


def service_state(svc: Any) -> str:
    """``up`` unless the service is forced down (the fake hypervisor never misses a heartbeat)."""
    return "down" if svc is None or svc.forced_down else "up"


def service_status(svc: Any) -> str:
    return "disabled" if svc is not None and svc.disabled else "enabled"


def primitive_time(moment: datetime | None) -> str | None:
    """A date-time as Nova's JSON shows database times it does not format (``2014-05-07T12:06:13.681238``)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") if moment is not None else None


def paged(rows: list[Any], key: Any, marker: str | None, limit: str | None) -> list[Any]:
    """``rows`` after the one whose ``key(row)`` is ``marker``, at most ``limit`` of them (Nova's 400s otherwise)."""
    if marker:
        keys = [str(key(r)) for r in rows]
        if marker not in keys:
            raise NovaError(400, f"marker [{marker}] not found")
        rows = rows[keys.index(marker) + 1:]
    if limit is not None:
        if not limit.isdigit():
            raise NovaError(400, f"Invalid input for query parameters limit. Value: {limit}. "
                            f"'{limit}' does not match '^[0-9]*$'")
        rows = rows[: int(limit)]
    return rows


def _query_time(query: Any, name: str) -> datetime | None:
    text = query.get(name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise NovaError(400, f"Invalid input for query parameters {name}. Value: {text}. "
                        f"'{text}' is not a 'date-time'") from None
    # Database times are naive UTC.
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def changed_between(rows: list[Any], query: Any, *, before: bool = True) -> list[Any]:
    """The rows whose ``updated_at`` is at or after ``changes-since`` and (when ``before``) at or before
    ``changes-before``, as the query gives them (Nova's 400s for bad times or an empty window)."""
    since = _query_time(query, "changes-since")
    until = _query_time(query, "changes-before") if before else None
    if since is not None and until is not None and until < since:
        raise NovaError(400, "The value of changes-since must be less than or equal to changes-before.")
    if since is not None:
        rows = [r for r in rows if r.updated_at is not None and r.updated_at >= since]
    if until is not None:
        rows = [r for r in rows if r.updated_at is not None and r.updated_at <= until]
    return rows
