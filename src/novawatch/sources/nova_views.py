"""Nova API documents -> snapshot records, as pure functions over Nova's raw JSON.

The input is what Nova 34 returns, decoded but otherwise untouched: one element of the
``hypervisors`` list of ``GET /os-hypervisors/detail``, one element of the ``servers`` list of
``GET /servers/detail``, a flavor of ``GET /flavors/detail``, the ``inventories`` of Placement's
``GET /resource_providers/{uuid}/inventories``. Nothing here does I/O, so the same conversion serves
the live source, captured API views and tests.

Facts from Nova 34's view code (``nova/api/openstack/compute/views/servers.py`` and
``compute/hypervisors.py``) that the conversion relies on:

* hypervisor ``id`` is the compute node's uuid from microversion 2.53; ``state`` is the service's
  liveness (``up``/``down``), ``status`` its ``enabled``/``disabled``; ``service`` (detail only) has
  ``host`` and ``disabled_reason``; ``vcpus``, ``memory_mb``, ``local_gb`` are there up to 2.87 only;
* a server shows ``OS-EXT-SRV-ATTR:host`` and ``OS-EXT-SRV-ATTR:hypervisor_hostname`` only to callers
  the ``os_compute_api:os-extended-server-attributes`` policy allows (admins by default);
  ``OS-EXT-STS:power_state`` is Nova's integer power state; ``image`` is ``""`` when the server was
  booted from volume; ``flavor`` is ``{id, links}`` before 2.47 and the embedded sizes from 2.47
  (``{}`` when the flavor is gone from the database); ``locked`` is shown from 2.9;
  ``os-extended-volumes:volumes_attached`` lists every volume BDM, the boot volume included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from novawatch import snapshot
from novawatch.snapshot import InstanceRecord, NodeRecord, Snapshot

#: Nova's integer power states (``nova.compute.power_state``) as the notification's strings.
POWER_STATES = {0: "pending", 1: "running", 3: "paused", 4: "shutdown", 6: "crashed", 7: "suspended"}

#: Placement resource classes that make a node's capacity, and the snapshot field each fills.
CAPACITY_CLASSES = {"VCPU": "vcpus", "MEMORY_MB": "memory_mb", "DISK_GB": "local_gb"}

#: Server keys only callers with the extended-server-attributes policy (admins) see.
ADMIN_SERVER_KEYS = ("OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:hypervisor_hostname")

#: ``flavor_lookup(flavor_id)``: a flavor of ``GET /flavors/detail`` (``vcpus, ram, disk, swap`` and
#: ``OS-FLV-EXT-DATA:ephemeral``), or None when there is no such flavor.
FlavorLookup = Callable[[str], "Mapping[str, Any] | None"]


class ViewError(ValueError):
    """A Nova API document that cannot be turned into a record; the message names the entity and field."""


class HiddenFields(ViewError):
    """The document lacks fields Nova shows to admins only: the caller's role, not the data, is wrong."""


class NoCapacity(ViewError):
    """A hypervisor without capacity (microversion 2.88 and later) and no Placement inventory for it."""


def _require(doc: Mapping[str, Any], key: str, what: str) -> Any:
    try:
        return doc[key]
    except KeyError:
        raise ViewError(f"{what} has no {key!r}") from None


def _int(value: Any, what: str) -> int:
    """Nova's integers; ``""`` (swap of 0 before 2.75) and null count as 0."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ViewError(f"{what} is {value!r}, not a number")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ViewError(f"{what} is {value!r}, not a number") from None


# --- nodes ---------------------------------------------------------------------------------------


def node_from_hypervisor(
    hyp: Mapping[str, Any], inventories: Mapping[str, Mapping[str, Any]] | None = None
) -> NodeRecord:
    """A node from one hypervisor of ``os-hypervisors/detail`` (microversion 2.53 or later for a uuid id).

    Capacity is what Watcher's collector reads: a Placement inventory's ``total`` for each of VCPU,
    MEMORY_MB and DISK_GB that ``inventories`` has, else the hypervisor's ``vcpus``, ``memory_mb`` and
    ``local_gb`` (absent from 2.88). Inventories used are kept under the record's ``inventory`` key with
    their ``reserved`` and ``allocation_ratio``. Raises :class:`NoCapacity` when neither has a figure.
    """
    ident = _require(hyp, "id", "hypervisor")
    what = f"hypervisor {ident}"
    service = hyp.get("service")
    if not isinstance(service, Mapping):
        raise ViewError(f"{what} has no 'service' (is this os-hypervisors/detail?)")
    hostname = hyp.get("hypervisor_hostname")
    host = service.get("host") or hostname
    if not host:
        raise ViewError(f"{what} names neither a service host nor a hypervisor_hostname")
    capacity: dict[str, int] = {}
    kept: dict[str, dict[str, Any]] = {}
    for resource_class, field in CAPACITY_CLASSES.items():
        inv = inventories.get(resource_class) if inventories else None
        if isinstance(inv, Mapping) and "total" in inv:
            capacity[field] = _int(inv["total"], f"{what}: {resource_class} total")
            kept[resource_class] = {
                "total": capacity[field],
                "reserved": _int(inv.get("reserved"), f"{what}: {resource_class} reserved"),
                "allocation_ratio": float(inv.get("allocation_ratio") or 1.0),
            }
        elif field in hyp:
            capacity[field] = _int(hyp[field], f"{what}: {field}")
        else:
            raise NoCapacity(f"{what} reports no {field} (microversion 2.88 or later) and Placement has no "
                             f"{resource_class} inventory for it")
    record = NodeRecord(
        uuid=str(ident), host=str(host), hypervisor_hostname=str(hostname or host),
        state="down" if _require(hyp, "state", what) == "down" else "up",
        status="disabled" if _require(hyp, "status", what) == "disabled" else "enabled",
        disabled_reason=service.get("disabled_reason"),
        vcpus=capacity["vcpus"], memory_mb=capacity["memory_mb"], local_gb=capacity["local_gb"],
    )
    if kept:
        record.inventory = kept
    return record


# --- instances -----------------------------------------------------------------------------------


def flavor_sizes(server: Mapping[str, Any], flavor_lookup: FlavorLookup | None = None) -> Mapping[str, Any]:
    """The server's flavor sizes: embedded (2.47+), or looked up by the id older microversions give."""
    what = f"server {server.get('id')}"
    flavor = server.get("flavor")
    if flavor is None:
        raise ViewError(f"{what} has no 'flavor'")
    if not isinstance(flavor, Mapping):
        raise ViewError(f"{what}: flavor is {flavor!r}, not an object")
    if "vcpus" in flavor or "original_name" in flavor or not flavor:
        # Embedded, or {} when Nova lost the flavor (it logs a warning and shows nothing either).
        return flavor
    flavor_id = flavor.get("id")
    if flavor_id is None:
        raise ViewError(f"{what}: flavor has neither sizes nor an id")
    found = flavor_lookup(str(flavor_id)) if flavor_lookup is not None else None
    if found is None:
        raise ViewError(f"{what}: flavor {flavor_id} is not embedded (microversion below 2.47) and could not "
                        "be looked up")
    # GET /flavors/detail names ephemeral disk with its old extension prefix; the embedded flavor does not.
    return {**found, "ephemeral": found.get("ephemeral", found.get("OS-FLV-EXT-DATA:ephemeral"))}


def power_state(value: Any, what: str) -> str:
    """Nova's power state (an integer in the API, a string in notifications) as the snapshot's string."""
    if isinstance(value, int) and not isinstance(value, bool) and value in POWER_STATES:
        return POWER_STATES[value]
    if isinstance(value, str) and value in POWER_STATES.values():
        return value
    if value is None:
        return POWER_STATES[0]
    raise ViewError(f"{what}: OS-EXT-STS:power_state {value!r} is not one of Nova's power states "
                    f"{sorted(POWER_STATES)}")


def instance_from_server(server: Mapping[str, Any], flavor_lookup: FlavorLookup | None = None) -> InstanceRecord:
    """An instance from one server of ``servers/detail`` (or ``GET /servers/{id}``), as an admin sees it.

    Raises :class:`HiddenFields` when the server lacks the host attributes only admins see, and
    :class:`ViewError` for anything else it cannot read.
    """
    uuid = _require(server, "id", "server")
    what = f"server {uuid}"
    missing = [key for key in ADMIN_SERVER_KEYS if key not in server]
    if missing:
        raise HiddenFields(f"{what} has no {', '.join(missing)}: Nova shows them to admins only (policy "
                           "os_compute_api:os-extended-server-attributes)")
    flavor = flavor_sizes(server, flavor_lookup)
    image = server.get("image")
    booted_from_volume = not (isinstance(image, Mapping) and image.get("id"))
    volumes = server.get("os-extended-volumes:volumes_attached") or []
    return InstanceRecord(
        uuid=str(uuid),
        host=server["OS-EXT-SRV-ATTR:host"] or None,
        node=server["OS-EXT-SRV-ATTR:hypervisor_hostname"] or None,
        project_id=str(_require(server, "tenant_id", what) or ""),
        display_name=str(server.get("name") or ""),
        state=str(_require(server, "OS-EXT-STS:vm_state", what) or ""),
        power_state=power_state(server.get("OS-EXT-STS:power_state"), what),
        task_state=server.get("OS-EXT-STS:task_state"),
        locked=bool(server.get("locked", False)),
        vcpus=_int(flavor.get("vcpus"), f"{what}: flavor vcpus"),
        memory_mb=_int(flavor.get("ram"), f"{what}: flavor ram"),
        disk_gb=snapshot.instance_disk_gb(
            _int(flavor.get("disk"), f"{what}: flavor disk"),
            _int(flavor.get("ephemeral"), f"{what}: flavor ephemeral"),
            _int(flavor.get("swap"), f"{what}: flavor swap"), booted_from_volume),
        volumes=sorted(str(v["id"]) for v in volumes if isinstance(v, Mapping) and v.get("id")),
    )


def is_deleted(server: Mapping[str, Any]) -> bool:
    """A server Nova still shows although it is deleted (``GET /servers/{id}`` as admin, ``deleted=true``)."""
    return server.get("OS-EXT-STS:vm_state") == "deleted" or server.get("status") == "DELETED"


# --- snapshots -----------------------------------------------------------------------------------


def _lookup(flavors: Mapping[str, Mapping[str, Any]] | FlavorLookup | None) -> FlavorLookup | None:
    if flavors is None or callable(flavors):
        return flavors
    table = {str(k): v for k, v in flavors.items()}
    return table.get


def snapshot_from_views(
    hypervisors: Iterable[Mapping[str, Any]],
    servers: Iterable[Mapping[str, Any]],
    flavors: Mapping[str, Mapping[str, Any]] | FlavorLookup | None = None,
    *,
    inventories: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    problems: list[str] | None = None,
) -> Snapshot:
    """A ``novawatch.model/1`` snapshot from Nova's hypervisor and server lists.

    ``flavors`` (flavor id -> flavor, or a lookup) serves servers listed below microversion 2.47;
    ``inventories`` (resource provider uuid = node uuid -> inventories) gives capacity as Placement has it.
    Deleted servers are left out; a server listed twice (pages that shifted) counts once. With
    ``problems`` a document that cannot be converted is skipped and described there; without, the
    first one raises :class:`ViewError`. :class:`HiddenFields` always raises: it concerns every server.
    """
    lookup = _lookup(flavors)
    nodes: dict[str, NodeRecord] = {}
    for hyp in hypervisors:
        try:
            node = node_from_hypervisor(hyp, (inventories or {}).get(str(hyp.get("id"))))
        except ViewError as exc:
            if problems is None:
                raise
            problems.append(str(exc))
            continue
        nodes[node.uuid] = node
    instances: dict[str, InstanceRecord] = {}
    for server in servers:
        if is_deleted(server):
            continue
        try:
            inst = instance_from_server(server, lookup)
        except HiddenFields:
            raise
        except ViewError as exc:
            if problems is None:
                raise
            problems.append(str(exc))
            continue
        instances[inst.uuid] = inst
    return snapshot.build(nodes.values(), instances.values())
