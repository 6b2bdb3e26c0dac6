"""What every route of the Nova API shares: the compute service, the request's microversion, and lookups.

Each router module's ``router(shared: Nova) -> APIRouter`` closes over the app's :class:`Nova`; a route
takes the ``Request`` and reads ``nova = shared.at(request)`` (a :class:`NovaRequest`): ``nova.service``,
``nova.version``, ``nova.base``.
Lookups that fail raise :class:`NovaError` with Nova's own words.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request

from novawatch.api.compute_app import ComputeAPI
from novawatch.api.nova.faults import NovaError
from novawatch.api.nova.microversion import MIN_VERSION, Version, v
from novawatch.api.nova.schemas import PROJECT_ID

PREFIX = "/v2.1"
#: The project of a request that names none (``X-Project-Id``): Nova's functional tests' project.
DEFAULT_PROJECT = "6f70656e737461636b20342065766572"
#: The user of a request that names none (``X-User-Id``), as in Nova's notification samples.
DEFAULT_USER = "fake"

T = TypeVar("T")


class Nova:
    """The Nova API's hold on the compute service: one per app, given to every router module."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.api = ComputeAPI(service)

    def at(self, request: Request) -> NovaRequest:
        """``request`` as a route sees it."""
        return NovaRequest(self, request)


class NovaRequest:
    """One request as a route sees it: the service, the microversion, the base URL and the caller."""

    def __init__(self, nova: Nova, request: Request) -> None:
        self.nova = nova
        self.request = request
        self.service = nova.service
        state = request.scope.get("state", {})
        self.version: Version = state.get("nova_version") or v(MIN_VERSION)
        self.request_id: str | None = state.get("request_id")
        #: The service's base URL, ending with ``/``.
        self.base = str(request.base_url)

    def at_least(self, version: str) -> bool:
        """Whether the request's microversion is ``version`` or newer."""
        return self.version >= v(version)

    @property
    def query(self) -> Any:
        """The query parameters (``getlist`` for repeated ones)."""
        return self.request.query_params

    # --- the caller ----------------------------------------------------------------------------------

    @property
    def project_id(self) -> str:
        """The caller's project: ``X-Project-Id`` (what Keystone's middleware would set), or the default."""
        project = self.request.headers.get("x-project-id") or DEFAULT_PROJECT
        if not PROJECT_ID.fullmatch(project):
            raise NovaError(400, "Invalid X-Project-Id header: a project id is 1-255 letters, digits and '-'")
        return project

    @property
    def user_id(self) -> str:
        """The caller's user: ``X-User-Id``, or the default."""
        user = self.request.headers.get("x-user-id") or DEFAULT_USER
        if not PROJECT_ID.fullmatch(user):
            raise NovaError(400, "Invalid X-User-Id header: a user id is 1-255 letters, digits and '-'")
        return user

    # --- running actions -------------------------------------------------------------------------------

    def run(self, what: str, fn: Callable[[], T]) -> T:
        """Run one compute action and commit it (see :meth:`ComputeAPI.run`), recorded under this request's id."""
        service = self.service
        service.api_request_id = self.request_id
        try:
            result: T = self.nova.api.run(what, fn)
        finally:
            service.api_request_id = None
        return result

    # --- bodies -------------------------------------------------------------------------------------------

    async def body(self, key: str | None = None) -> Any:
        """The JSON body (the guard checked it is strict JSON), or its member ``key``, which must be an object."""
        raw = await self.request.body()
        if not raw:
            data: Any = {}
        else:
            try:
                data = json.loads(raw)
            except (ValueError, RecursionError):
                raise NovaError(400, "Malformed request body") from None
        if key is None:
            return data
        if not isinstance(data, dict) or not isinstance(data.get(key), dict):
            raise NovaError(400, f"Invalid input for field/attribute {key}: the body must be "
                            f'{{"{key}": {{...}}}}')
        return data[key]

    # --- lookups ------------------------------------------------------------------------------------------

    def instance(self, uuid: str) -> Any:
        """A live (not deleted) instance, or Nova's 404."""
        inst = self.service.instances.get(uuid)
        if inst is None or inst.deleted:
            raise NovaError(404, f"Instance {uuid} could not be found.")
        return inst

    def flavor_ref(self, ref: Any) -> Any:
        """The flavor a ``flavorRef`` names (an id, a link ending with one, or a name), or Nova's 400."""
        key = str(ref).rstrip("/").rsplit("/", 1)[-1]
        flavors = self.service.flavors.values()
        found = next((f for f in flavors if f.flavorid == key), None) or next(
            (f for f in flavors if f.name == key), None)
        if found is None:
            raise NovaError(400, f"Flavor {key} could not be found.")
        return found

    def server_view(self, inst: Any) -> dict[str, Any]:
        """``GET /servers/{id}``'s body of ``inst`` at this request's version."""
        from novawatch.api.nova import views

        service = self.service
        return views.server_detail(inst, service.flavors[inst.instance_type_id], service.bdms.get(inst.uuid, []),
                                   self.base, self.version)

