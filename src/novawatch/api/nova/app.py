"""A Nova-compatible subset of the Compute API v2.1 over the compute service.

What openstacksdk and the ``openstack`` CLI call for the compute service's actions: version
discovery, servers and their actions, volume attachments (swap by ``PUT``), interfaces, flavors,
hypervisors and services. Errors use Nova's fault bodies (``{"itemNotFound": {"code": 404,
"message": ...}}``). Like novawatch's own compute app, every endpoint runs on the event loop and
calls the compute service synchronously: that serialises the two APIs' actions on one service.

Authentication: none when no token is configured (local use); otherwise every request except version
discovery needs ``X-Auth-Token: <token>`` (or ``Authorization: Bearer <token>``).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from novawatch.api.common import Guard, Message, Receive, Scope, Send
from novawatch.api.compute_app import ComputeAPI
from novawatch.api.nova import views
from novawatch.api.nova.microversion import MAX_VERSION, MIN_VERSION, Version, VersionError, requested, v
from novawatch.api.nova.microversion import response_headers as version_headers
from novawatch.api.nova.stubs import IDENTITY_PREFIX, IMAGE_PREFIX, add_stub_routes

PREFIX = "/v2.1"
FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
               409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
               501: "notImplemented", 503: "serviceUnavailable"}
DEFAULT_PROJECT = "6f70656e737461636b20342065766572"
_DISCOVERY_PATHS = frozenset({"/", PREFIX, PREFIX + "/", IMAGE_PREFIX, IMAGE_PREFIX + "/", IDENTITY_PREFIX,
                              IDENTITY_PREFIX + "/", IDENTITY_PREFIX + "/v3", IDENTITY_PREFIX + "/v3/"})
#: Path prefixes the Nova app serves when mounted beside novawatch's own API.
SERVED_PREFIXES = (PREFIX, IMAGE_PREFIX, IDENTITY_PREFIX)


def image_arg(value: Any, field: str) -> str:
    """An image id from a request body (Nova's schema: ``format: uuid``) in canonical form, or Nova's 400."""
    from novawatch.compute.core import ComputeError, image_id

    try:
        return image_id(value)
    except ComputeError:
        raise NovaError(400, f"Invalid input for field/attribute {field}. Value: {value}. "
                        f"{value!r} is not a 'uuid'") from None


class NovaError(Exception):
    """An error answered with Nova's fault body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def fault(status: int, message: str) -> dict[str, Any]:
    """Nova's error body: ``{"<faultName>": {"code": status, "message": message}}``."""
    return {FAULT_NAMES.get(status, "computeFault"): {"code": status, "message": message}}


def _fault_bytes(status: int, message: str) -> bytes:
    return json.dumps(fault(status, message)).encode()


async def _send_fault(send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = _fault_bytes(status, message)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *extra]})
    await send({"type": "http.response.body", "body": body})


ASGIApp = Callable[[Scope, Receive, Send], Any]


class NovaGuard(Guard):
    """Token check, body size limit and microversion negotiation, as plain ASGI in front of the Nova routes."""

    async def guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): val.decode("latin-1") for k, val in scope.get("headers", [])}
        try:
            version = requested(headers)
        except VersionError as exc:
            await _send_fault(send, exc.status, str(exc), _encoded(version_headers(v(MIN_VERSION))))
            return
        extra = _encoded(version_headers(version))
        path = scope.get("path", "")
        if self.token is not None and path not in _DISCOVERY_PATHS and not self._authorised(headers):
            await _send_fault(send, 401, "The request you have made requires authentication.",
                              [*extra, (b"www-authenticate", b'Keystone uri="local"')])
            return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await _send_fault(send, 413, f"Request is too large (limit {self.max_body_bytes} bytes).", extra)
            return
        scope.setdefault("state", {})["nova_version"] = version
        if length is None and scope.get("method") in ("POST", "PUT", "PATCH"):
            # A chunked body has no Content-Length: read it here, within the limit, and replay it.
            body = bytearray()
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return
                body += message.get("body", b"")
                more = bool(message.get("more_body", False))
                if len(body) > self.max_body_bytes:
                    await _send_fault(send, 413, f"Request is too large (limit {self.max_body_bytes} bytes).",
                                      extra)
                    return
            replayed = False
            original = receive

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    return await original()  # after the body: disconnects
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}

            receive = replay

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_version)

    def _authorised(self, headers: dict[str, str]) -> bool:
        assert self.token is not None
        given = headers.get("x-auth-token", "")
        if not given:
            scheme, _, rest = headers.get("authorization", "").partition(" ")
            given = rest.strip() if scheme.lower() == "bearer" else ""
        return bool(given) and hmac.compare_digest(given.encode(), self.token)


def _encoded(pairs: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode(), val.encode()) for k, val in pairs]


class NovaDispatch:
    """Sends ``/``, ``/v2.1/...`` (and the ``/image``, ``/identity`` stubs) to the Nova app, the rest to ``app``."""

    def __init__(self, app: ASGIApp, *, nova: ASGIApp) -> None:
        self.app = app
        self.nova = nova

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            if path == "/" or any(path == p or path.startswith(p + "/") for p in SERVED_PREFIXES):
                await self.nova(scope, receive, send)
                return
        await self.app(scope, receive, send)


def mount_nova(app: FastAPI, service: Any, *, token: str | None = None, max_body_bytes: int = 1024 * 1024) -> FastAPI:
    """Serve the Nova API beside ``app`` (novawatch's compute app) on the same port; returns ``app``.

    Call before the app starts serving. The Nova paths get their own authentication (``X-Auth-Token``),
    so novawatch's bearer-token guard does not stand in front of them.
    """
    app.add_middleware(NovaDispatch, nova=create_nova_app(service, token=token, max_body_bytes=max_body_bytes))
    return app


def version_document(base: str) -> dict[str, Any]:
    """The v2.1 version entry of version discovery (``GET /`` and ``GET /v2.1``)."""
    return {"id": "v2.1", "status": "CURRENT", "version": MAX_VERSION, "min_version": MIN_VERSION,
            "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{base}v2.1/"},
                      {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}


def create_nova_app(service: Any, *, token: str | None = None, max_body_bytes: int = 1024 * 1024) -> Any:
    """The Nova-compatible API (an ASGI app) over a running compute service."""
    api = ComputeAPI(service)
    app = FastAPI(title="novawatch Nova-compatible compute API", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(NovaError)
    async def _nova_error(request: Request, exc: NovaError) -> JSONResponse:
        return JSONResponse(fault(exc.status, exc.message), status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(fault(exc.status_code, str(exc.detail)), status_code=exc.status_code)

    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def _starlette_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = "The resource could not be found." if exc.status_code == 404 else str(exc.detail)
        return JSONResponse(fault(exc.status_code, message), status_code=exc.status_code)

    # --- helpers -------------------------------------------------------------------------------------

    def ver(request: Request) -> Version:
        version: Version = request.scope.get("state", {}).get("nova_version") or v(MIN_VERSION)
        return version

    def base(request: Request) -> str:
        return str(request.base_url)

    def run(what: str, fn: Callable[[], Any]) -> Any:
        return api.run(what, fn)

    def instance(uuid: str) -> Any:
        inst = service.instances.get(uuid)
        if inst is None or inst.deleted:
            raise NovaError(404, f"Instance {uuid} could not be found.")
        return inst

    def flavor(ref: Any) -> Any:
        key = str(ref).rstrip("/").rsplit("/", 1)[-1]
        for f in service.flavors.values():
            if f.flavorid == key:
                return f
        for f in service.flavors.values():
            if f.name == key:
                return f
        raise NovaError(400, f"Flavor {key} could not be found.")

    def server_view(inst: Any, request: Request) -> dict[str, Any]:
        return views.server_detail(inst, service.flavors[inst.instance_type_id], service.bdms.get(inst.uuid, []),
                                   base(request), ver(request))

    async def body_of(request: Request, key: str | None = None) -> Any:
        raw = await request.body()
        if not raw:
            data: Any = {}
        else:
            try:
                data = json.loads(raw)
            except ValueError:
                raise NovaError(400, "Malformed request body") from None
        if key is None:
            return data
        if not isinstance(data, dict) or not isinstance(data.get(key), dict):
            raise NovaError(400, f"Invalid input for field/attribute {key}: the body must be "
                            f'{{"{key}": {{...}}}}')
        return data[key]

    def no_content(status: int = 202) -> Response:
        return Response(status_code=status)

    # --- version discovery -----------------------------------------------------------------------------

    @app.get("/")
    async def versions(request: Request) -> JSONResponse:
        """Version discovery: the one version novawatch serves, v2.1, and its microversion range."""
        return JSONResponse({"versions": [version_document(base(request))]}, status_code=200)

    @app.get(PREFIX)
    @app.get(PREFIX + "/")
    async def version_v21(request: Request) -> JSONResponse:
        return JSONResponse({"version": version_document(base(request))})

    # --- servers -----------------------------------------------------------------------------------------

    def filtered_servers(request: Request) -> list[Any]:
        q = request.query_params
        rows = [i for i in service.instances.values() if not i.deleted]
        if q.get("host"):
            rows = [i for i in rows if i.host == q["host"]]
        if q.get("node"):
            rows = [i for i in rows if i.node == q["node"]]
        project = q.get("project_id") or q.get("tenant_id")
        if project:
            rows = [i for i in rows if i.project_id == project]
        if q.get("name"):
            try:
                pattern = re.compile(q["name"])
            except re.error:
                raise NovaError(400, f"Invalid name filter {q['name']!r}") from None
            rows = [i for i in rows if pattern.search(i.display_name or "")]
        if q.get("status"):
            wanted = {s.upper() for s in q.getlist("status")}
            rows = [i for i in rows if views.server_status(i.vm_state, i.task_state) in wanted]
        elif not q.get("soft_deleted"):
            # Like Nova, soft-deleted servers are listed only when asked for by status, or (an admin's
            # filter) with soft_deleted, which Nova takes as true for any non-empty value.
            rows = [i for i in rows if i.vm_state != "soft-delete"]
        # Nova lists newest first; uuid breaks ties so that pages are stable.
        rows.sort(key=lambda i: (i.created_at, i.uuid), reverse=True)
        marker = q.get("marker")
        if marker:
            ids = [i.uuid for i in rows]
            if marker not in ids:
                raise NovaError(400, f"marker [{marker}] not found")
            rows = rows[ids.index(marker) + 1:]
        limit = q.get("limit")
        if limit is not None:
            if not limit.isdigit():
                raise NovaError(400, f"Invalid input for query parameters limit. Value: {limit}.")
            rows = rows[: int(limit)]
        return rows

    @app.get(PREFIX + "/servers")
    async def list_servers(request: Request) -> JSONResponse:
        return JSONResponse({"servers": [views.server_brief(i, base(request)) for i in filtered_servers(request)]})

    @app.get(PREFIX + "/servers/detail")
    async def list_servers_detail(request: Request) -> JSONResponse:
        return JSONResponse({"servers": [server_view(i, request) for i in filtered_servers(request)]})

    @app.get(PREFIX + "/servers/{server_id}")
    async def show_server(server_id: str, request: Request) -> JSONResponse:
        return JSONResponse({"server": server_view(instance(server_id), request)})

    @app.post(PREFIX + "/servers")
    async def create_server(request: Request) -> JSONResponse:
        """Boot. Synchronous underneath: the server is ACTIVE (or ERROR) by the time this answers."""
        body = await body_of(request, "server")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise NovaError(400, "Invalid input for field/attribute name.")
        if "flavorRef" not in body:
            raise NovaError(400, "Missing flavorRef attribute.")
        chosen = flavor(body["flavorRef"])
        boot_volume_gb: int | None = None
        for bdm in body.get("block_device_mapping_v2") or []:
            if isinstance(bdm, dict) and str(bdm.get("boot_index", "")) == "0" \
                    and bdm.get("destination_type") == "volume":
                boot_volume_gb = int(bdm.get("volume_size") or chosen.root_gb or 1)
        image_ref = image_arg(body["imageRef"], "imageRef") if body.get("imageRef") else ""
        if not image_ref and boot_volume_gb is None:
            raise NovaError(400, "Block Device Mapping is Invalid: You specified more local devices than the "
                            "limit allows (give imageRef or a boot volume in block_device_mapping_v2)")
        networks = body.get("networks", "auto")
        ports = 0 if networks == "none" else len(networks) if isinstance(networks, list) else 1
        host = body.get("host")
        zone = body.get("availability_zone")
        if host is None and isinstance(zone, str) and ":" in zone:
            # "zone:host" or "zone:host:node" forces the host (an admin feature of Nova's).
            host = zone.split(":")[1] or None
        if host is not None and host not in service.services:
            raise NovaError(400, f"Compute host {host} could not be found.")
        metadata = body.get("metadata") or {}
        tags = body.get("tags") or []
        project = request.headers.get("x-project-id") or DEFAULT_PROJECT
        kwargs: dict[str, Any] = {"project_id": project, "boot_volume_gb": boot_volume_gb, "ports": ports,
                                  "metadata": {str(k): str(val) for k, val in metadata.items()},
                                  "tags": [str(t) for t in tags], "host": host}
        if image_ref:
            kwargs["image_ref"] = image_ref
        inst = run("boot", lambda: service.boot(name, chosen, **kwargs))
        out = {"server": {"id": inst.uuid, "links": views.links(base(request), "servers", inst.uuid),
                          "OS-DCF:diskConfig": "MANUAL", "security_groups": [{"name": "default"}],
                          "adminPass": "novawatch"}}
        return JSONResponse(out, status_code=202,
                            headers={"Location": f"{base(request)}v2.1/servers/{inst.uuid}"})

    @app.delete(PREFIX + "/servers/{server_id}")
    async def delete_server(server_id: str) -> Response:
        instance(server_id)
        run("delete", lambda: service.delete(server_id))
        return no_content(204)

    # --- server actions ----------------------------------------------------------------------------------------

    simple: dict[str, tuple[str, int]] = {
        "os-start": ("power_on", 202), "os-stop": ("power_off", 202), "pause": ("pause", 202),
        "unpause": ("unpause", 202), "suspend": ("suspend", 202), "resume": ("resume", 202),
        "unlock": ("unlock", 202), "unrescue": ("unrescue", 202), "shelve": ("shelve", 202),
        "shelveOffload": ("shelve_offload", 202), "confirmResize": ("confirm_resize", 204),
        "revertResize": ("revert_resize", 202), "forceDelete": ("force_delete", 202),
        "restore": ("restore", 202), "trigger_crash_dump": ("trigger_crash_dump", 202),
    }

    def arg(args: Any, key: str) -> Any:
        return args.get(key) if isinstance(args, dict) else None

    @app.post(PREFIX + "/servers/{server_id}/action")
    async def server_action(server_id: str, request: Request) -> Response:
        body = await body_of(request)
        if not isinstance(body, dict) or len(body) != 1:
            raise NovaError(400, "Server actions take a body with exactly one action, e.g. {\"os-stop\": null}")
        action, args = next(iter(body.items()))
        inst = instance(server_id)
        uuid = inst.uuid
        if action in simple:
            method, status = simple[action]
            run(action, lambda: getattr(service, method)(uuid))
            return no_content(status)
        if action == "reboot":
            kind = str(arg(args, "type") or "SOFT").upper()
            if kind not in ("SOFT", "HARD"):
                raise NovaError(400, f"Argument 'type' for reboot must be a string with value 'SOFT' or 'HARD', "
                                f"not {kind!r}")
            run(action, lambda: service.reboot(uuid, hard=kind == "HARD"))
            return no_content()
        if action == "lock":
            reason = arg(args, "locked_reason")
            run(action, lambda: service.lock(uuid, reason))
            return no_content()
        if action == "rescue":
            ref = arg(args, "rescue_image_ref")
            ref = image_arg(ref, "rescue_image_ref") if ref is not None else None
            run(action, lambda: service.rescue(uuid, ref))
            return JSONResponse({"adminPass": "novawatch"})
        if action == "unshelve":
            host = arg(args, "host")
            run(action, lambda: service.unshelve(uuid, host=host))
            return no_content()
        if action == "resize":
            new = flavor(arg(args, "flavorRef"))
            run(action, lambda: service.resize(uuid, new))
            return no_content()
        if action == "os-migrateLive":
            host = arg(args, "host")
            run(action, lambda: _live_migrate(service, uuid, host))
            return no_content()
        if action == "evacuate":
            host = arg(args, "host")
            run(action, lambda: service.evacuate(uuid, host=host))
            return JSONResponse({} if ver(request) >= v("2.14") else {"adminPass": "novawatch"})
        if action == "rebuild":
            image = arg(args, "imageRef")
            if image is None:
                raise NovaError(400, "Invalid input for field/attribute rebuild. 'imageRef' is a required property")
            ref = image_arg(image, "imageRef")
            run(action, lambda: service.rebuild(uuid, ref))
            return JSONResponse({"server": server_view(instance(uuid), request)}, status_code=202)
        if action == "createImage":
            image_id = run(action, lambda: service.snapshot(uuid))
            location = {"Location": f"{base(request)}images/{image_id}"}
            if ver(request) >= v("2.45"):
                return JSONResponse({"image_id": image_id}, status_code=202, headers=location)
            return Response(status_code=202, headers=location)
        raise NovaError(400 if action == "migrate" else 404,
                        "Cold migration without a new flavor is not supported by novawatch; use resize"
                        if action == "migrate" else f"There is no such action: {action}")

    # --- volume attachments ---------------------------------------------------------------------------------

    def attachments(uuid: str) -> list[Any]:
        return [b for b in service.bdms.get(uuid, []) if b.volume_id and not b.deleted]

    @app.get(PREFIX + "/servers/{server_id}/os-volume_attachments")
    async def list_volume_attachments(server_id: str, request: Request) -> JSONResponse:
        instance(server_id)
        return JSONResponse({"volumeAttachments": [views.volume_attachment(b, server_id, ver(request))
                                                   for b in attachments(server_id)]})

    def attachment(server_id: str, volume_id: str) -> Any:
        instance(server_id)
        for b in attachments(server_id):
            if b.volume_id == volume_id:
                return b
        raise NovaError(404, f"Volume {volume_id} is not attached to the instance {server_id}.")

    @app.get(PREFIX + "/servers/{server_id}/os-volume_attachments/{volume_id}")
    async def show_volume_attachment(server_id: str, volume_id: str, request: Request) -> JSONResponse:
        bdm = attachment(server_id, volume_id)
        return JSONResponse({"volumeAttachment": views.volume_attachment(bdm, server_id, ver(request))})

    @app.post(PREFIX + "/servers/{server_id}/os-volume_attachments")
    async def attach_volume(server_id: str, request: Request) -> JSONResponse:
        args = await body_of(request, "volumeAttachment")
        volume_id = args.get("volumeId")
        if not isinstance(volume_id, str) or not volume_id:
            raise NovaError(400, "Invalid input for field/attribute volumeId.")
        instance(server_id)
        _volume(service, volume_id)
        bdm = run("attach volume", lambda: service.attach_volume(server_id, volume_id))
        if bdm is None:
            # The hypervisor failed the attach (volume_attach.error was sent): Nova's attach is
            # asynchronous too, so the request itself still succeeds; the attachment is gone.
            return JSONResponse({"volumeAttachment": {"id": volume_id, "serverId": server_id,
                                                      "volumeId": volume_id, "device": None}})
        return JSONResponse({"volumeAttachment": views.volume_attachment(bdm, server_id, ver(request))})

    @app.put(PREFIX + "/servers/{server_id}/os-volume_attachments/{volume_id}")
    async def swap_volume(server_id: str, volume_id: str, request: Request) -> Response:
        """Swap the attached ``volume_id`` for ``volumeAttachment.volumeId`` (the swap-volume spec)."""
        args = await body_of(request, "volumeAttachment")
        new = args.get("volumeId")
        if not isinstance(new, str) or not new:
            raise NovaError(400, "Invalid input for field/attribute volumeId.")
        attachment(server_id, volume_id)
        _volume(service, new)
        if new != volume_id:
            run("swap volume", lambda: service.swap_volume(server_id, volume_id, new))
        return no_content()

    @app.delete(PREFIX + "/servers/{server_id}/os-volume_attachments/{volume_id}")
    async def detach_volume(server_id: str, volume_id: str) -> Response:
        attachment(server_id, volume_id)
        run("detach volume", lambda: service.detach_volume(server_id, volume_id))
        return no_content()

    # --- interfaces -----------------------------------------------------------------------------------------

    def vifs(server_id: str) -> list[dict[str, Any]]:
        inst = instance(server_id)
        return list(inst.info_cache.network_info) if inst.info_cache is not None else []

    @app.get(PREFIX + "/servers/{server_id}/os-interface")
    async def list_interfaces(server_id: str, request: Request) -> JSONResponse:
        return JSONResponse({"interfaceAttachments": [views.interface_attachment(vif, ver(request))
                                                      for vif in vifs(server_id)]})

    def vif(server_id: str, port_id: str) -> dict[str, Any]:
        for item in vifs(server_id):
            if item.get("id") == port_id:
                return item
        raise NovaError(404, f"Port {port_id} is not attached")

    @app.get(PREFIX + "/servers/{server_id}/os-interface/{port_id}")
    async def show_interface(server_id: str, port_id: str, request: Request) -> JSONResponse:
        return JSONResponse({"interfaceAttachment": views.interface_attachment(vif(server_id, port_id), ver(request))})

    @app.post(PREFIX + "/servers/{server_id}/os-interface")
    async def attach_interface(server_id: str, request: Request) -> JSONResponse:
        """Attach a new port on novawatch's one network (``port_id``/``net_id`` in the body are not honoured)."""
        await body_of(request)
        instance(server_id)
        port = run("attach interface", lambda: service.attach_interface(server_id))
        if port is None:
            raise NovaError(500, "Failed to attach network adapter device (the hypervisor failed the attach)")
        return JSONResponse({"interfaceAttachment": views.interface_attachment(vif(server_id, port), ver(request))})

    @app.delete(PREFIX + "/servers/{server_id}/os-interface/{port_id}")
    async def detach_interface(server_id: str, port_id: str) -> Response:
        vif(server_id, port_id)
        run("detach interface", lambda: service.detach_interface(server_id, port_id))
        return no_content()

    # --- flavors ----------------------------------------------------------------------------------------------

    def sorted_flavors() -> list[Any]:
        return sorted(service.flavors.values(), key=lambda f: (f.memory_mb, f.flavorid))

    @app.get(PREFIX + "/flavors")
    async def list_flavors(request: Request) -> JSONResponse:
        return JSONResponse({"flavors": [views.flavor_brief(f, base(request), ver(request)) for f in sorted_flavors()]})

    @app.get(PREFIX + "/flavors/detail")
    async def list_flavors_detail(request: Request) -> JSONResponse:
        return JSONResponse({"flavors": [views.flavor_detail(f, base(request), ver(request))
                                         for f in sorted_flavors()]})

    @app.get(PREFIX + "/flavors/{flavor_id}")
    async def show_flavor(flavor_id: str, request: Request) -> JSONResponse:
        for f in service.flavors.values():
            if f.flavorid == flavor_id:
                return JSONResponse({"flavor": views.flavor_detail(f, base(request), ver(request))})
        raise NovaError(404, f"Flavor {flavor_id} could not be found.")

    @app.post(PREFIX + "/flavors")
    async def create_flavor(request: Request) -> JSONResponse:
        """Create a public flavor (``flavor.create``); novawatch assigns its id."""
        args = await body_of(request, "flavor")
        try:
            name = str(args["name"])
            ram, vcpus, disk = int(args["ram"]), int(args["vcpus"]), int(args["disk"])
            ephemeral = int(args.get("OS-FLV-EXT-DATA:ephemeral") or 0)
            swap = int(args.get("swap") or 0)
        except (KeyError, TypeError, ValueError) as exc:
            raise NovaError(400, f"Invalid input for flavor: {exc}") from None
        if any(f.name == name for f in service.flavors.values()):
            raise NovaError(409, f"Flavor with name {name} already exists.")
        row = run("create flavor", lambda: service.create_flavor(name, vcpus=vcpus, memory_mb=ram, root_gb=disk,
                                                                  ephemeral_gb=ephemeral, swap=swap))
        return JSONResponse({"flavor": views.flavor_detail(row, base(request), ver(request))})

    # --- hypervisors --------------------------------------------------------------------------------------------

    def node_by_id(ident: str, version: Version) -> Any:
        for node in service.nodes.values():
            if (node.uuid if version >= v("2.53") else str(node.id)) == ident:
                return node
        raise NovaError(404, f"Hypervisor {ident} could not be found.")

    def servers_on(node: Any) -> list[Any]:
        return sorted((i for i in service.instances.values() if not i.deleted and i.node == node.hypervisor_hostname
                       and i.host == node.host), key=lambda i: i.uuid)

    def hypervisor_list(request: Request, *, detail: bool, pattern: str | None = None,
                        with_servers: bool = False) -> list[dict[str, Any]]:
        version = ver(request)
        q = request.query_params
        pattern = pattern if pattern is not None else q.get("hypervisor_hostname_pattern")
        with_servers = with_servers or q.get("with_servers", "").lower() in ("1", "true", "yes", "on")
        nodes = sorted(service.nodes.values(), key=lambda n: n.id)
        if pattern:
            nodes = [n for n in nodes if pattern in (n.hypervisor_hostname or "")]
            if not nodes:
                raise NovaError(404, f"No hypervisor matching '{pattern}' could be found.")
        marker = q.get("marker")
        if marker:
            idents = [n.uuid if version >= v("2.53") else str(n.id) for n in nodes]
            if marker not in idents:
                raise NovaError(400, f"marker [{marker}] not found")
            nodes = nodes[idents.index(marker) + 1:]
        if q.get("limit", "").isdigit():
            nodes = nodes[: int(q["limit"])]
        return [views.hypervisor(n, service.services.get(n.host), version, detail=detail,
                                 servers=servers_on(n) if with_servers else None) for n in nodes]

    @app.get(PREFIX + "/os-hypervisors")
    async def list_hypervisors(request: Request) -> JSONResponse:
        return JSONResponse({"hypervisors": hypervisor_list(request, detail=False)})

    @app.get(PREFIX + "/os-hypervisors/detail")
    async def list_hypervisors_detail(request: Request) -> JSONResponse:
        """What Watcher's collector reads: capacity, usage, state, status and the service's host."""
        return JSONResponse({"hypervisors": hypervisor_list(request, detail=True)})

    @app.get(PREFIX + "/os-hypervisors/{hypervisor_id}")
    async def show_hypervisor(hypervisor_id: str, request: Request) -> JSONResponse:
        version = ver(request)
        node = node_by_id(hypervisor_id, version)
        with_servers = request.query_params.get("with_servers", "").lower() in ("1", "true", "yes", "on")
        return JSONResponse({"hypervisor": views.hypervisor(node, service.services.get(node.host), version,
                                                            detail=True,
                                                            servers=servers_on(node) if with_servers else None)})

    @app.get(PREFIX + "/os-hypervisors/{hypervisor_id}/uptime")
    async def hypervisor_uptime(hypervisor_id: str, request: Request) -> JSONResponse:
        version = ver(request)
        node = node_by_id(hypervisor_id, version)
        body = views.hypervisor(node, service.services.get(node.host), version, detail=False)
        body["uptime"] = " 00:00:00 up 0 min,  0 users,  load average: 0.00, 0.00, 0.00"
        return JSONResponse({"hypervisor": body})

    @app.get(PREFIX + "/os-hypervisors/{pattern}/search")
    async def search_hypervisors(pattern: str, request: Request) -> JSONResponse:
        """Before 2.53: hypervisors whose hostname contains ``pattern``."""
        return JSONResponse({"hypervisors": hypervisor_list(request, detail=False, pattern=pattern)})

    @app.get(PREFIX + "/os-hypervisors/{pattern}/servers")
    async def hypervisor_servers(pattern: str, request: Request) -> JSONResponse:
        return JSONResponse({"hypervisors": hypervisor_list(request, detail=False, pattern=pattern,
                                                            with_servers=True)})

    @app.get(PREFIX + "/os-aggregates")
    async def list_aggregates() -> JSONResponse:
        """novawatch has no host aggregates (``openstack hypervisor show`` asks)."""
        return JSONResponse({"aggregates": []})

    # --- services -------------------------------------------------------------------------------------------

    def service_rows(request: Request) -> list[Any]:
        q = request.query_params
        rows = sorted(service.services.values(), key=lambda s: s.id)
        if q.get("host"):
            rows = [s for s in rows if s.host == q["host"]]
        if q.get("binary"):
            rows = [s for s in rows if s.binary == q["binary"]]
        return rows

    def service_by_id(ident: str, version: Version) -> Any:
        for svc in service.services.values():
            if (svc.uuid if version >= v("2.53") else str(svc.id)) == ident:
                return svc
        raise NovaError(404, f"Service {ident} could not be found.")

    @app.get(PREFIX + "/os-services")
    async def list_services(request: Request) -> JSONResponse:
        return JSONResponse({"services": [views.service(s, ver(request)) for s in service_rows(request)]})

    @app.put(PREFIX + "/os-services/{ident}")
    async def update_service(ident: str, request: Request) -> JSONResponse:
        """From 2.53 ``PUT /os-services/{uuid}``; before, ``PUT /os-services/enable|disable|...`` by host."""
        version = ver(request)
        args = await body_of(request)
        if not isinstance(args, dict):
            raise NovaError(400, "The body must be a JSON object")
        if version >= v("2.53"):
            svc = service_by_id(ident, version)
            return JSONResponse({"service": views.service(_update_service(run, service, svc, args), version)})
        return JSONResponse({"service": _legacy_service_action(run, service, ident, args, version)})

    @app.delete(PREFIX + "/os-services/{ident}")
    async def delete_service(ident: str, request: Request) -> Response:
        svc = service_by_id(ident, ver(request))
        host = svc.host
        run("delete service", lambda: service.delete_service(host))
        return no_content(204)

    add_stub_routes(app)
    return NovaGuard(app, token=token, max_body_bytes=max_body_bytes)


def _volume(service: Any, volume_id: str) -> None:
    """404 in Nova's words when the (fake Cinder's) volume does not exist."""
    from novawatch.compute.volumes import VolumeError

    try:
        service.volumes.get(volume_id)
    except VolumeError:
        raise NovaError(404, f"Volume {volume_id} could not be found.") from None


def _live_migrate(service: Any, uuid: str, host: str | None) -> None:
    """Start the live migration and let it run to completion, as Nova's would on its own."""
    inst = service.live_migrate(uuid, host=host)
    if inst.task_state == "migrating":
        service.live_migration_complete(uuid)


def _update_service(run: Callable[[str, Callable[[], Any]], Any], service: Any, svc: Any,
                    args: dict[str, Any]) -> Any:
    status = args.get("status")
    forced = args.get("forced_down")
    if status is None and forced is None:
        raise NovaError(400, "No updates were requested. Fields 'status' or 'forced_down' should be specified.")
    if status not in (None, "enabled", "disabled"):
        raise NovaError(400, f"Invalid input for field/attribute status. Value: {status}.")
    if args.get("disabled_reason") and status != "disabled":
        raise NovaError(400, "Specifying 'disabled_reason' with status 'enabled' is invalid.")
    host = svc.host
    if status == "enabled":
        run("enable service", lambda: service.enable_service(host))
    elif status == "disabled":
        run("disable service", lambda: service.disable_service(host, args.get("disabled_reason")))
    if forced is not None:
        if not isinstance(forced, bool):
            raise NovaError(400, f"Invalid input for field/attribute forced_down. Value: {forced}.")
        run("force down", lambda: service.force_down_service(host, forced))
    return service.services[host]


def _legacy_service_action(run: Callable[[str, Callable[[], Any]], Any], service: Any, action: str,
                           args: dict[str, Any], version: Version) -> dict[str, Any]:
    host, binary = args.get("host"), args.get("binary", "nova-compute")
    svc = service.services.get(host) if isinstance(host, str) else None
    if svc is None or svc.binary != binary:
        raise NovaError(404, f"Service {binary} on host {host} could not be found.")
    if action == "enable":
        run("enable service", lambda: service.enable_service(host))
        return {"host": host, "binary": binary, "status": "enabled"}
    if action in ("disable", "disable-log-reason"):
        reason = args.get("disabled_reason") if action == "disable-log-reason" else None
        run("disable service", lambda: service.disable_service(host, reason))
        out = {"host": host, "binary": binary, "status": "disabled"}
        return {**out, "disabled_reason": reason} if action == "disable-log-reason" else out
    if action == "force-down" and version >= v("2.11"):
        forced = bool(args.get("forced_down", True))
        run("force down", lambda: service.force_down_service(host, forced))
        return {"host": host, "binary": binary, "forced_down": forced}
    raise NovaError(404, f"Unknown action {action}")
