"""Server actions: ``POST /servers/{id}/action`` with one action (``{"os-stop": null}``, ``{"resize": {...}}``...)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BeforeValidator, Field

from novawatch.api.inputs import MAX_INT, Fqdn, NovaName
from novawatch.api.nova.context import PREFIX, Nova, NovaRequest
from novawatch.api.nova.faults import NovaError
from novawatch.api.nova.schemas import Body, M, Metadata, Reason, Ref, parse
from novawatch.api.nova.servers import image_arg

# --- bodies ----------------------------------------------------------------------------------------------


class LockArgs(Body):
    locked_reason: Reason | None = None


class HostArgs(Body):
    """``unshelve``, ``os-migrateLive``, ``evacuate``: an optional destination host."""

    host: Fqdn | None = None


class ResizeArgs(Body):
    flavorRef: Ref


class CreateImageArgs(Body):
    name: NovaName
    metadata: Metadata | None = None


def _length(value: Any) -> Any:
    """An integer, or a string of one (Nova's ``length``: ``^-?[0-9]+$``)."""
    if isinstance(value, str) and value.lstrip("-").isdigit() and value.isascii():
        return int(value)
    return value


ConsoleLength = Annotated[int, BeforeValidator(_length), Field(ge=-1, le=MAX_INT, strict=True)]


def action_args(model: type[M], args: Any, action: str) -> M:
    """An action's arguments checked (``null`` or absent arguments are an empty object)."""
    return parse(model, {} if args is None else args, action)


def _arg(args: Any, key: str) -> Any:
    return args.get(key) if isinstance(args, dict) else None


# --- actions -----------------------------------------------------------------------------------------------

#: Actions that only name the server: the compute service's method and the status Nova answers with.
SIMPLE: dict[str, tuple[str, int]] = {
    "os-start": ("power_on", 202), "os-stop": ("power_off", 202), "pause": ("pause", 202),
    "unpause": ("unpause", 202), "suspend": ("suspend", 202), "resume": ("resume", 202),
    "unlock": ("unlock", 202), "unrescue": ("unrescue", 202), "shelve": ("shelve", 202),
    "shelveOffload": ("shelve_offload", 202), "confirmResize": ("confirm_resize", 204),
    "revertResize": ("revert_resize", 202), "forceDelete": ("force_delete", 202),
    "restore": ("restore", 202), "trigger_crash_dump": ("trigger_crash_dump", 202),
}


def _live_migrate(service: Any, uuid: str, host: str | None) -> None:
    """Start the live migration and let it run to completion, as Nova's would on its own."""
    inst = service.live_migrate(uuid, host=host)
    if inst.task_state == "migrating":
        service.live_migration_complete(uuid)


Handler = Callable[[NovaRequest, str, Any], Awaitable[Response]]
#: Action name -> its handler, called with the request, the server's uuid and the action's arguments.
ACTIONS: dict[str, Handler] = {}


def action(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler for the actions ``names``."""

    def register(handler: Handler) -> Handler:
        for name in names:
            ACTIONS[name] = handler
        return handler

    return register


def _simple(name: str, method: str, status: int) -> Handler:
    async def run(nova: NovaRequest, uuid: str, args: Any) -> Response:
        nova.run(name, lambda: getattr(nova.service, method)(uuid))
        return Response(status_code=status)

    return run


for _name, (_method, _status) in SIMPLE.items():
    action(_name)(_simple(_name, _method, _status))


@action("reboot")
async def _reboot(nova: NovaRequest, uuid: str, args: Any) -> Response:
    kind = _arg(args, "type") or "SOFT"
    if not isinstance(kind, str):
        raise NovaError(400, f"Invalid input for field/attribute type. Value: {kind}. Not a string")
    kind = kind.upper()
    if kind not in ("SOFT", "HARD"):
        raise NovaError(400, f"Argument 'type' for reboot must be a string with value 'SOFT' or 'HARD', "
                        f"not {kind!r}")
    nova.run("reboot", lambda: nova.service.reboot(uuid, hard=kind == "HARD"))
    return Response(status_code=202)


@action("lock")
async def _lock(nova: NovaRequest, uuid: str, args: Any) -> Response:
    reason = action_args(LockArgs, args, "lock").locked_reason
    nova.run("lock", lambda: nova.service.lock(uuid, reason))
    return Response(status_code=202)


@action("rescue")
async def _rescue(nova: NovaRequest, uuid: str, args: Any) -> Response:
    ref = _arg(args, "rescue_image_ref")
    ref = image_arg(ref, "rescue_image_ref") if ref is not None else None
    nova.run("rescue", lambda: nova.service.rescue(uuid, ref))
    return JSONResponse({"adminPass": "novawatch"})


@action("unshelve")
async def _unshelve(nova: NovaRequest, uuid: str, args: Any) -> Response:
    host = action_args(HostArgs, args, "unshelve").host
    nova.run("unshelve", lambda: nova.service.unshelve(uuid, host=host))
    return Response(status_code=202)


@action("resize")
async def _resize(nova: NovaRequest, uuid: str, args: Any) -> Response:
    new = nova.flavor_ref(action_args(ResizeArgs, args, "resize").flavorRef)
    nova.run("resize", lambda: nova.service.resize(uuid, new))
    return Response(status_code=202)


@action("os-migrateLive")
async def _live_migrate_action(nova: NovaRequest, uuid: str, args: Any) -> Response:
    host = action_args(HostArgs, args, "os-migrateLive").host
    nova.run("os-migrateLive", lambda: _live_migrate(nova.service, uuid, host))
    return Response(status_code=202)


@action("evacuate")
async def _evacuate(nova: NovaRequest, uuid: str, args: Any) -> Response:
    host = action_args(HostArgs, args, "evacuate").host
    nova.run("evacuate", lambda: nova.service.evacuate(uuid, host=host))
    return JSONResponse({} if nova.at_least("2.14") else {"adminPass": "novawatch"})


@action("rebuild")
async def _rebuild(nova: NovaRequest, uuid: str, args: Any) -> Response:
    image = _arg(args, "imageRef")
    if image is None:
        raise NovaError(400, "Invalid input for field/attribute rebuild. 'imageRef' is a required property")
    ref = image_arg(image, "imageRef")
    nova.run("rebuild", lambda: nova.service.rebuild(uuid, ref))
    return JSONResponse({"server": nova.server_view(nova.instance(uuid))}, status_code=202)


@action("createImage")
async def _create_image(nova: NovaRequest, uuid: str, args: Any) -> Response:
    action_args(CreateImageArgs, args, "createImage")
    image_id = nova.run("createImage", lambda: nova.service.snapshot(uuid))
    location = {"Location": f"{nova.base}images/{image_id}"}
    if nova.at_least("2.45"):
        return JSONResponse({"image_id": image_id}, status_code=202, headers=location)
    return Response(status_code=202, headers=location)


@action("migrate")
async def _migrate(nova: NovaRequest, uuid: str, args: Any) -> Response:
    """Cold migration (``openstack server migrate``): a destination ``host`` from 2.56; confirm it after."""
    if args is not None and not nova.at_least("2.56"):
        raise NovaError(400, f"Invalid input for field/attribute migrate. Value: {args}. None is the only value "
                        "before microversion 2.56 (a host can be given from 2.56)")
    host = action_args(HostArgs, args, "migrate").host
    if host is not None and host not in nova.service.services:
        raise NovaError(400, f"Compute host {host} could not be found.")
    nova.run("migrate", lambda: nova.service.migrate(uuid, host=host))
    return Response(status_code=202)


class ConsoleArgs(Body):
    length: ConsoleLength | None = None


@action("os-getConsoleOutput")
async def _console_output(nova: NovaRequest, uuid: str, args: Any) -> Response:
    """The last ``length`` lines of the console log (all of them when absent or -1)."""
    length = parse(ConsoleArgs, args, "os-getConsoleOutput").length
    lines = None if length is None or length < 0 else length
    output = nova.service.console_output(uuid, lines)
    return JSONResponse({"output": output})


def router(shared: Nova) -> APIRouter:
    """The server actions routes, closures over the app's :class:`Nova`."""
    routes = APIRouter(prefix=PREFIX)

    @routes.post("/servers/{server_id}/action")
    async def server_action(server_id: str, request: Request) -> Response:
        nova = shared.at(request)
        body = await nova.body()
        if not isinstance(body, dict) or len(body) != 1:
            raise NovaError(400, "Server actions take a body with exactly one action, e.g. {\"os-stop\": null}")
        name, args = next(iter(body.items()))
        uuid = nova.instance(server_id).uuid
        handler = ACTIONS.get(name)
        if handler is None:
            raise NovaError(404, f"There is no such action: {name}")
        return await handler(nova, uuid, args)

    return routes
