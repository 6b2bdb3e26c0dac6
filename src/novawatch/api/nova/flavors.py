"""Flavors: list, show, create, and their extra specs (``os-extra_specs``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StringConstraints

from novawatch.api.inputs import NovaName, storable
from novawatch.api.nova import views
from novawatch.api.nova.context import PREFIX, Nova, NovaRequest
from novawatch.api.nova.faults import NovaError
from novawatch.api.nova.schemas import Body, Bool, FlavorId, NonNegative, Positive, blank, parse


class FlavorCreate(Body):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: NovaName
    ram: Positive
    vcpus: Positive
    disk: NonNegative
    ephemeral: NonNegative | None = Field(default=None, alias="OS-FLV-EXT-DATA:ephemeral")
    swap: Annotated[NonNegative | None, BeforeValidator(blank)] = None
    id: FlavorId | None = None
    is_public: Bool | None = Field(default=None, alias="os-flavor-access:is_public")
    description: Annotated[str, StringConstraints(max_length=65535), AfterValidator(storable)] | None = None


def sorted_flavors(nova: NovaRequest) -> list[Any]:
    """Every flavor, smallest memory first (Nova's default sort is by ``flavorid``; clients sort again)."""
    return sorted(nova.service.flavors.values(), key=lambda f: (f.memory_mb, f.flavorid))


def by_id(nova: NovaRequest, flavor_id: str) -> Any:
    """The flavor with this ``flavorid``, or Nova's 404."""
    for f in nova.service.flavors.values():
        if f.flavorid == flavor_id:
            return f
    raise NovaError(404, f"Flavor {flavor_id} could not be found.")


def _specs(flavor: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (flavor.extra_specs or {}).items()}


def router(shared: Nova) -> APIRouter:
    """The flavors routes, closures over the app's :class:`Nova`."""
    routes = APIRouter(prefix=PREFIX)

    @routes.get("/flavors")
    async def list_flavors(request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"flavors": [views.flavor_brief(f, nova.base, nova.version) for f in sorted_flavors(nova)]})

    @routes.get("/flavors/detail")
    async def list_flavors_detail(request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"flavors": [views.flavor_detail(f, nova.base, nova.version)
                                         for f in sorted_flavors(nova)]})

    @routes.get("/flavors/{flavor_id}")
    async def show_flavor(flavor_id: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        return JSONResponse({"flavor": views.flavor_detail(by_id(nova, flavor_id), nova.base, nova.version)})

    @routes.post("/flavors")
    async def create_flavor(request: Request) -> JSONResponse:
        """Create a public flavor (``flavor.create``); novawatch assigns its id."""
        nova = shared.at(request)
        new = parse(FlavorCreate, await nova.body("flavor"), "flavor")
        service = nova.service
        if any(f.name == new.name for f in service.flavors.values()):
            raise NovaError(409, f"Flavor with name {new.name} already exists.")
        row = nova.run("create flavor", lambda: service.create_flavor(
            new.name, vcpus=new.vcpus, memory_mb=new.ram, root_gb=new.disk, ephemeral_gb=new.ephemeral or 0,
            swap=new.swap or 0))
        return JSONResponse({"flavor": views.flavor_detail(row, nova.base, nova.version)})

    @routes.get("/flavors/{flavor_id}/os-extra_specs")
    async def list_extra_specs(flavor_id: str, request: Request) -> JSONResponse:
        """A flavor's extra specs (``openstack flavor show`` reads them); novawatch's flavors keep theirs fixed."""
        nova = shared.at(request)
        return JSONResponse({"extra_specs": _specs(by_id(nova, flavor_id))})

    @routes.get("/flavors/{flavor_id}/os-extra_specs/{key}")
    async def show_extra_spec(flavor_id: str, key: str, request: Request) -> JSONResponse:
        nova = shared.at(request)
        specs = _specs(by_id(nova, flavor_id))
        if key not in specs:
            raise NovaError(404, f"Flavor {flavor_id} has no extra specs with key {key}.")
        return JSONResponse({key: specs[key]})

    return routes
