"""Quotas (``os-quota-sets``) and limits (``limits``): the limits novawatch applies and what is used of them.

The limits are fixed (``novawatch.compute.quotas``: Nova's defaults for what novawatch enforces, -1 for
instances, cores and RAM); ``PUT`` is refused. Microversions leave out the network quotas from 2.36
and the injected-file quotas from 2.57, and ``maxImageMeta`` from 2.39, as Nova does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from novawatch.api.nova.context import PREFIX, Nova, NovaRequest
from novawatch.api.nova.faults import NovaError
from novawatch.compute.quotas import LIMITS

_NETWORK = ("fixed_ips", "floating_ips", "security_group_rules", "security_groups")
_FILES = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
#: Quota name -> the ``limits`` names it is shown as (``nova/api/openstack/compute/views/limits.py``).
_LIMIT_NAMES = {"ram": ["maxTotalRAMSize"], "instances": ["maxTotalInstances"], "cores": ["maxTotalCores"],
                "key_pairs": ["maxTotalKeypairs"], "floating_ips": ["maxTotalFloatingIps"],
                "metadata_items": ["maxServerMeta", "maxImageMeta"], "injected_files": ["maxPersonality"],
                "injected_file_content_bytes": ["maxPersonalitySize"], "security_groups": ["maxSecurityGroups"],
                "security_group_rules": ["maxSecurityGroupRules"], "server_groups": ["maxServerGroups"],
                "server_group_members": ["maxServerGroupMembers"]}
_USED_NAMES = {"totalRAMUsed": "ram", "totalCoresUsed": "cores", "totalInstancesUsed": "instances",
               "totalFloatingIpsUsed": "floating_ips", "totalSecurityGroupsUsed": "security_groups",
               "totalServerGroupsUsed": "server_groups"}


def shown(nova: NovaRequest) -> list[str]:
    """The quotas this microversion shows."""
    hidden = (_NETWORK + _FILES) if nova.at_least("2.57") else _NETWORK if nova.at_least("2.36") else ()
    return [name for name in LIMITS if name not in hidden]


def used(nova: NovaRequest, project_id: str) -> dict[str, int]:
    """Usage of every quota shown (0 for those nobody counts)."""
    usage = nova.service.quota_usage(project_id, nova.query.get("user_id") or nova.user_id)
    return {name: usage.get(name, 0) for name in LIMITS}


def _project(project_id: str) -> str:
    from novawatch.api.nova.schemas import PROJECT_ID

    if not PROJECT_ID.fullmatch(project_id):
        raise NovaError(400, f"Invalid project id {project_id!r}: 1-255 letters, digits and '-'")
    return project_id


def router(shared: Nova) -> APIRouter:
    """The quotas routes, closures over the app's :class:`Nova`."""
    routes = APIRouter(prefix=PREFIX)

    @routes.get("/os-quota-sets/{project_id}")
    async def show_quotas(project_id: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"quota_set": {"id": _project(project_id), **{k: LIMITS[k] for k in shown(nova)}}})

    @routes.get("/os-quota-sets/{project_id}/detail")
    async def show_quota_usage(project_id: str, request: Request) -> JSONResponse:
        """Limits with ``in_use`` and ``reserved`` (``openstack quota show --usage``)."""
        nova = shared.at(request)
        in_use = used(nova, _project(project_id))
        return JSONResponse({"quota_set": {"id": project_id, **{
            k: {"limit": LIMITS[k], "in_use": in_use[k], "reserved": 0} for k in shown(nova)}}})

    @routes.get("/os-quota-sets/{project_id}/defaults")
    async def show_default_quotas(project_id: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"quota_set": {"id": _project(project_id), **{k: LIMITS[k] for k in shown(nova)}}})

    @routes.put("/os-quota-sets/{project_id}")
    async def update_quotas(project_id: str) -> JSONResponse:
        raise NovaError(403, "novawatch's quotas are fixed (docs/openstack.md, \"Quotas and limits\"); they cannot "
                        "be changed")

    @routes.get("/limits")
    async def show_limits(request: Request) -> JSONResponse:
        """Absolute limits and usage of the caller's project, or of ``tenant_id`` (``openstack limits show``)."""
        nova = shared.at(request)
        project = _project(nova.query.get("tenant_id") or nova.project_id)
        names = shown(nova)
        absolute: dict[str, Any] = {}
        for name in names:
            for limit_name in _LIMIT_NAMES.get(name, []):
                if limit_name == "maxImageMeta" and nova.at_least("2.39"):
                    continue
                absolute[limit_name] = LIMITS[name]
        in_use = used(nova, project)
        absolute.update({label: in_use[name] for label, name in _USED_NAMES.items() if name in names})
        return JSONResponse({"limits": {"rate": [], "absolute": absolute}})

    return routes
