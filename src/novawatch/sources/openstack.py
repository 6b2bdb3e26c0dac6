"""A :class:`novawatch.snapshot.Source` over any Nova endpoint, through openstacksdk.

Nodes come from ``os-hypervisors/detail`` (capacity, and the service's state, status and disabled
reason); instances from ``servers/detail`` for all projects, soft-deleted ones included, with the
flavor embedded in the server (microversion 2.47 and later) or looked up by id before it, and the
attached volumes. With it the data model bootstraps and audits against a real cloud or against
``novawatch compute serve``.

openstacksdk is an optional dependency (``pip install openstacksdk``): it is imported when a source
is created, not when this module is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from novawatch import snapshot
from novawatch.snapshot import InstanceRecord, NodeRecord

if TYPE_CHECKING:
    from openstack.connection import Connection

#: Nova's integer power states (``OS-EXT-STS:power_state``) as the snapshot's strings.
POWER_STATES = {0: "pending", 1: "running", 3: "paused", 4: "shutdown", 6: "crashed", 7: "suspended"}


def connect(endpoint: str, *, token: str | None = None, **options: Any) -> Connection:
    """An openstacksdk connection to one compute endpoint (``http://host:8774/v2.1``), without Keystone.

    With ``token`` requests carry ``X-Auth-Token: token``; without, none (``auth_type: none``).
    ``options`` go to :class:`openstack.connection.Connection` (e.g. ``compute_api_version``).
    """
    from openstack.connection import Connection

    if token:
        return Connection(auth_type="admin_token", auth={"token": token, "endpoint": endpoint},
                          compute_endpoint_override=endpoint, **options)
    return Connection(auth_type="none", compute_endpoint_override=endpoint, **options)


class OpenStackSource:
    """Lists nodes and instances from Nova's API; implements :class:`novawatch.snapshot.Source`."""

    def __init__(self, connection: Connection) -> None:
        self.conn = connection
        self._flavors: dict[str, dict[str, Any]] = {}

    @classmethod
    def from_endpoint(cls, endpoint: str, *, token: str | None = None, **options: Any) -> OpenStackSource:
        """A source over one compute endpoint (see :func:`connect`)."""
        return cls(connect(endpoint, token=token, **options))

    # --- nodes -------------------------------------------------------------------------------------

    def list_nodes(self) -> Iterator[NodeRecord]:
        records = [self._node(h) for h in self.conn.compute.hypervisors(details=True)]
        return iter(sorted(records, key=lambda n: n.uuid))

    def get_node(self, uuid: str) -> NodeRecord | None:
        from openstack import exceptions

        try:
            return self._node(self.conn.compute.get_hypervisor(uuid))
        except exceptions.NotFoundException:
            return None

    def _node(self, hyp: Any) -> NodeRecord:
        service = hyp.service_details if isinstance(hyp.service_details, dict) else {}
        host = service.get("host") or hyp.name
        vcpus, memory_mb, local_gb = hyp.vcpus, hyp.memory_size, hyp.local_disk_size
        if vcpus is None or memory_mb is None or local_gb is None:
            # Microversion 2.88 and later no longer report capacity: Placement has it.
            vcpus, memory_mb, local_gb = self._placement_capacity(str(hyp.id))
        return NodeRecord(
            uuid=str(hyp.id), host=host, hypervisor_hostname=hyp.name or host,
            state="down" if hyp.state == "down" else "up",
            status="disabled" if hyp.status == "disabled" else "enabled",
            disabled_reason=service.get("disabled_reason"),
            vcpus=int(vcpus or 0), memory_mb=int(memory_mb or 0), local_gb=int(local_gb or 0),
        )

    def _placement_capacity(self, uuid: str) -> tuple[int, int, int]:
        """VCPU, MEMORY_MB and DISK_GB totals of the node's resource provider (zeros when unavailable)."""
        totals = {"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0}
        try:
            for inv in self.conn.placement.resource_provider_inventories(uuid):
                if inv.resource_class in totals:
                    totals[inv.resource_class] = int(inv.total or 0)
        except Exception:  # no Placement endpoint: the capacity stays unknown (0)
            pass
        return totals["VCPU"], totals["MEMORY_MB"], totals["DISK_GB"]

    # --- instances -----------------------------------------------------------------------------------

    def list_instances(self) -> Iterator[InstanceRecord]:
        seen: dict[str, InstanceRecord] = {}
        # Nova hides soft-deleted servers unless asked for them by status; the model keeps them.
        for query in ({}, {"status": "SOFT_DELETED"}):
            for server in self.conn.compute.servers(details=True, all_projects=True, **query):
                seen[str(server.id)] = self._instance(server)
        return iter(sorted(seen.values(), key=lambda i: i.uuid))

    def get_instance(self, uuid: str) -> InstanceRecord | None:
        from openstack import exceptions

        try:
            server = self.conn.compute.get_server(uuid)
        except exceptions.NotFoundException:
            return None
        if server.vm_state == "deleted":
            return None
        return self._instance(server)

    def _instance(self, server: Any) -> InstanceRecord:
        flavor = self._flavor_of(server)
        booted_from_volume = not (server.image and server.image.id)
        swap = flavor.get("swap") or 0
        volumes = sorted(str(v["id"]) for v in (server.attached_volumes or []) if v.get("id"))
        return InstanceRecord(
            uuid=str(server.id), host=server.compute_host or None, node=server.hypervisor_hostname or None,
            project_id=server.project_id or "", display_name=server.name or "", state=server.vm_state or "",
            power_state=POWER_STATES.get(server.power_state if isinstance(server.power_state, int) else -1,
                                         "pending"),
            task_state=server.task_state, locked=bool(server.is_locked),
            vcpus=int(flavor.get("vcpus") or 0), memory_mb=int(flavor.get("ram") or 0),
            disk_gb=snapshot.instance_disk_gb(int(flavor.get("disk") or 0), int(flavor.get("ephemeral") or 0),
                                              int(swap), booted_from_volume),
            volumes=volumes,
        )

    def _flavor_of(self, server: Any) -> dict[str, Any]:
        """The server's flavor sizes: embedded from 2.47, else looked up (and cached) by id."""
        flavor = server.flavor
        raw: dict[str, Any] = dict(flavor.to_dict()) if hasattr(flavor, "to_dict") else dict(flavor or {})
        flavor_id = raw.get("id")
        # The embedded form (2.47+) has original_name and no id; openstacksdk fills absent sizes with 0.
        if raw.get("original_name") or not flavor_id:
            return raw
        cached = self._flavors.get(str(flavor_id))
        if cached is None:
            found = self.conn.compute.get_flavor(flavor_id)
            cached = {"vcpus": found.vcpus, "ram": found.ram, "disk": found.disk, "ephemeral": found.ephemeral,
                      "swap": found.swap or 0}
            self._flavors[str(flavor_id)] = cached
        return cached

    def snapshot(self) -> snapshot.Snapshot:
        """Everything the endpoint lists, as a ``novawatch.model/1`` snapshot."""
        return snapshot.build(self.list_nodes(), self.list_instances())
