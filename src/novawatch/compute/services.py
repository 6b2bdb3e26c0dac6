"""Service actions: a host joins (service and compute node created), is enabled/disabled, forced down, leaves."""

from __future__ import annotations

from novawatch.compute import db
from novawatch.compute.core import ComputeCore, InvalidState


class ServiceActions(ComputeCore):
    """``service.*`` and ``compute_node.*`` lifecycle."""

    def create_service(
        self,
        host: str,
        *,
        vcpus: int = 32,
        memory_mb: int = 131072,
        local_gb: int = 1000,
        cpu_allocation_ratio: float = 4.0,
        ram_allocation_ratio: float = 1.0,
        disk_allocation_ratio: float = 1.0,
        host_ip: str | None = None,
        availability_zone: str = "nova",
    ) -> db.Service:
        """A nova-compute service starts on ``host``: ``service.create``, then its node's ``compute_node.create``."""
        if host in self.services:
            raise InvalidState(f"a compute service already runs on {host}")
        now = self.now()
        svc = db.Service(
            id=self.repo.next_id(db.Service), uuid=self.ids(), host=host, binary="nova-compute", topic="compute",
            report_count=0, disabled=False, disabled_reason=None, availability_zone=availability_zone,
            last_seen_up=None, forced_down=False, version=74, created_at=now, updated_at=now,
        )
        self.repo.add(svc)
        self.services[host] = svc
        self.emit.service("service.create", svc)
        # The service reports in as soon as it runs (its first heartbeat).
        svc.last_seen_up = now
        node = db.ComputeNode(
            id=self.repo.next_id(db.ComputeNode), uuid=self.ids(), service_id=svc.id, host=host,
            hypervisor_hostname=host, vcpus=vcpus, memory_mb=memory_mb, local_gb=local_gb,
            vcpus_used=0, memory_mb_used=0, local_gb_used=0, hypervisor_type="fake", hypervisor_version=1000,
            current_workload=0, running_vms=0, host_ip=host_ip or _host_ip(svc.id),
            cpu_allocation_ratio=cpu_allocation_ratio, ram_allocation_ratio=ram_allocation_ratio,
            disk_allocation_ratio=disk_allocation_ratio, created_at=now, updated_at=now,
        )
        self.repo.add(node)
        self.nodes[host] = node
        self.tracker.add_node(node, created=True)
        return svc

    def _update_service(self, svc: db.Service, **changes: object) -> None:
        # Nova's API assigns the status fields on every request and Service.save() notifies whenever
        # one was assigned, so re-enabling an enabled service still sends service.update.
        for name, value in changes.items():
            setattr(svc, name, value)
        svc.updated_at = self.now()
        self.emit.service("service.update", svc)

    def enable_service(self, host: str) -> db.Service:
        svc = self.service(host)
        self._update_service(svc, disabled=False, disabled_reason=None)
        return svc

    def disable_service(self, host: str, reason: str | None = None) -> db.Service:
        svc = self.service(host)
        self._update_service(svc, disabled=True, disabled_reason=reason)
        return svc

    def force_down_service(self, host: str, forced_down: bool = True) -> db.Service:
        """Mark the service down (or up again) without waiting for missed heartbeats."""
        svc = self.service(host)
        self._update_service(svc, forced_down=forced_down)
        if not forced_down:
            svc.last_seen_up = self.now()
        return svc

    def delete_service(self, host: str) -> None:
        """The host leaves: ``compute_node.delete`` then ``service.delete``; refused while it hosts instances."""
        svc = self.service(host)
        node = self.nodes.get(host)
        if node is not None and self.tracker.claims.get(node.uuid):
            raise InvalidState(f"cannot delete the compute service on {host}: it is hosting instances")
        if any(i.host == host for i in self.instances.values()):
            raise InvalidState(f"cannot delete the compute service on {host}: it is hosting instances")
        if node is not None:
            del self.nodes[host]
            self.tracker.remove_node(node)
            self.repo.delete(node)
        del self.services[host]
        self.emit.service("service.delete", svc)
        self.repo.delete(svc)

    def heartbeat(self, host: str) -> None:
        """The service reports in (``report_count`` and ``last_seen_up``; Nova sends nothing for it)."""
        svc = self.service(host)
        svc.report_count += 1
        svc.last_seen_up = self.now()


def _host_ip(n: int) -> str:
    return f"192.168.{(n >> 8) & 255}.{n & 255}"
