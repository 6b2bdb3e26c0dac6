"""Hypervisors (``os-hypervisors``): list, detail, show, uptime, statistics, and the pre-2.53 search forms.

Ids are integers before 2.53 and uuids from 2.53. The capacity fields (``vcpus``, ``memory_mb``,
``local_gb`` and their ``*_used``), which Watcher's collector reads, are served: the maximum
microversion stays below 2.88, which removed them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from novawatch.api.nova.context import PREFIX, Nova, NovaRequest
from novawatch.api.nova.faults import NovaError
from novawatch.api.nova.views import service_state, service_status

_TRUE = ("1", "true", "yes", "on")


def view(node: Any, svc: Any, nova: NovaRequest, *, detail: bool, servers: list[Any] | None = None) -> dict[str, Any]:
    """An ``os-hypervisors`` entry (``servers`` listed when given)."""
    uuids = nova.at_least("2.53")
    body: dict[str, Any] = {
        "id": node.uuid if uuids else node.id, "hypervisor_hostname": node.hypervisor_hostname,
        "state": service_state(svc), "status": service_status(svc),
    }
    if detail:
        free_ram = node.memory_mb - node.memory_mb_used
        free_disk = node.local_gb - node.local_gb_used
        body.update({
            "hypervisor_type": node.hypervisor_type, "hypervisor_version": node.hypervisor_version,
            "host_ip": node.host_ip,
            "service": {"host": node.host, "id": (svc.uuid if uuids else svc.id) if svc is not None else None,
                        "disabled_reason": svc.disabled_reason if svc is not None else None},
            "vcpus": node.vcpus, "vcpus_used": node.vcpus_used, "memory_mb": node.memory_mb,
            "memory_mb_used": node.memory_mb_used, "local_gb": node.local_gb, "local_gb_used": node.local_gb_used,
            "free_ram_mb": free_ram, "free_disk_gb": free_disk, "current_workload": node.current_workload or 0,
            "running_vms": node.running_vms or 0,
            "disk_available_least": node.disk_available_least if node.disk_available_least is not None
            else free_disk,
            "cpu_info": "{}" if not nova.at_least("2.28") else {},
        })
    if servers is not None:
        body["servers"] = [{"name": f"instance-{i.id:08x}", "uuid": i.uuid} for i in servers]
    return body


def node_by_id(nova: NovaRequest, ident: str) -> Any:
    uuids = nova.at_least("2.53")
    for node in nova.service.nodes.values():
        if (node.uuid if uuids else str(node.id)) == ident:
            return node
    raise NovaError(404, f"Hypervisor {ident} could not be found.")


def servers_on(nova: NovaRequest, node: Any) -> list[Any]:
    return sorted((i for i in nova.service.instances.values() if not i.deleted
                   and i.node == node.hypervisor_hostname and i.host == node.host), key=lambda i: i.uuid)


def hypervisor_list(nova: NovaRequest, *, detail: bool, pattern: str | None = None,
                    with_servers: bool = False) -> list[dict[str, Any]]:
    q = nova.query
    service = nova.service
    pattern = pattern if pattern is not None else q.get("hypervisor_hostname_pattern")
    with_servers = with_servers or q.get("with_servers", "").lower() in _TRUE
    nodes = sorted(service.nodes.values(), key=lambda n: n.id)
    if pattern:
        nodes = [n for n in nodes if pattern in (n.hypervisor_hostname or "")]
        if not nodes:
            raise NovaError(404, f"No hypervisor matching '{pattern}' could be found.")
    marker = q.get("marker")
    if marker:
        idents = [n.uuid if nova.at_least("2.53") else str(n.id) for n in nodes]
        if marker not in idents:
            raise NovaError(400, f"marker [{marker}] not found")
        nodes = nodes[idents.index(marker) + 1:]
    if q.get("limit", "").isdigit():
        nodes = nodes[: int(q["limit"])]
    return [view(n, service.services.get(n.host), nova, detail=detail,
                 servers=servers_on(nova, n) if with_servers else None) for n in nodes]


def router(shared: Nova) -> APIRouter:
    """The hypervisors routes, closures over the app's :class:`Nova`."""
    routes = APIRouter(prefix=PREFIX)

    @routes.get("/os-hypervisors")
    async def list_hypervisors(request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"hypervisors": hypervisor_list(nova, detail=False)})

    @routes.get("/os-hypervisors/detail")
    async def list_hypervisors_detail(request: Request) -> JSONResponse:
        """What Watcher's collector reads: capacity, usage, state, status and the service's host."""
        nova = shared.at(request)
        return JSONResponse({"hypervisors": hypervisor_list(nova, detail=True)})

    @routes.get("/os-hypervisors/statistics")
    async def hypervisor_statistics(request: Request) -> JSONResponse:
        """Sums over the nodes of enabled compute services (``openstack hypervisor stats show``; gone in 2.88)."""
        nova = shared.at(request)
        service = nova.service
        nodes = [n for n in service.nodes.values()
                 if (svc := service.services.get(n.host)) is not None and not svc.disabled]
        stats = {"count": len(nodes)}
        for key in ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb", "local_gb_used", "free_ram_mb",
                    "free_disk_gb", "current_workload", "running_vms", "disk_available_least"):
            stats[key] = sum(view(n, service.services.get(n.host), nova, detail=True)[key] for n in nodes)
        return JSONResponse({"hypervisor_statistics": stats})

    @routes.get("/os-hypervisors/{hypervisor_id}")
    async def show_hypervisor(hypervisor_id: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        node = node_by_id(nova, hypervisor_id)
        with_servers = nova.query.get("with_servers", "").lower() in _TRUE
        return JSONResponse({"hypervisor": view(node, nova.service.services.get(node.host), nova, detail=True,
                                                servers=servers_on(nova, node) if with_servers else None)})

    @routes.get("/os-hypervisors/{hypervisor_id}/uptime")
    async def hypervisor_uptime(hypervisor_id: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        node = node_by_id(nova, hypervisor_id)
        body = view(node, nova.service.services.get(node.host), nova, detail=False)
        body["uptime"] = " 00:00:00 up 0 min,  0 users,  load average: 0.00, 0.00, 0.00"
        return JSONResponse({"hypervisor": body})

    @routes.get("/os-hypervisors/{pattern}/search")
    async def search_hypervisors(pattern: str, request: Request) -> JSONResponse:
        """Before 2.53: hypervisors whose hostname contains ``pattern``."""
        nova = shared.at(request)
        return JSONResponse({"hypervisors": hypervisor_list(nova, detail=False, pattern=pattern)})

    @routes.get("/os-hypervisors/{pattern}/servers")
    async def hypervisor_servers(pattern: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"hypervisors": hypervisor_list(nova, detail=False, pattern=pattern, with_servers=True)})

    @routes.get("/os-aggregates")
    async def list_aggregates() -> JSONResponse:
        """novawatch has no host aggregates (``openstack hypervisor show`` asks)."""
        return JSONResponse({"aggregates": []})

    return routes
