"""One table from the compute service's errors to HTTP status codes, shared by both HTTP apps.

Each app registers :func:`install` with its own body format (``{"error": ...}``, or Nova's fault
body); the first row whose class matches the error answers, so specific classes come first.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import exc as sa_exc

from novawatch.compute.errors import (
    ComputeError,
    Conflict,
    InvalidState,
    NotFound,
    OverQuota,
    StorageError,
    StorageRefused,
    StorageUnavailable,
)
from novawatch.compute.resource_tracker import ClaimError
from novawatch.compute.scheduler import NoValidHost
from novawatch.compute.volumes import VolumeNotFound, VolumeUnavailable
from novawatch.logs import Throttle

log = logging.getLogger("novawatch.api.errors")
_throttle = Throttle()


class Mapping(NamedTuple):
    """An error class, the status it answers with, and what the caller can do about it."""

    error: type[Exception]
    status: int
    hint: str


#: Most specific first: the first row whose class matches the error answers.
STATUS: tuple[Mapping, ...] = (
    Mapping(VolumeNotFound, 404, "create one with POST /v1/volumes (Nova API: Cinder) or pick an existing one"),
    Mapping(NotFound, 404, ""),
    Mapping(VolumeUnavailable, 409, "detach it first, or use another volume"),
    Mapping(InvalidState, 409, "wait for the current task to end or change the state first"),
    Mapping(Conflict, 409, ""),
    Mapping(OverQuota, 403, "delete some first (GET /v2.1/limits shows the quotas)"),
    Mapping(NoValidHost, 409, "choose another host or free capacity"),
    Mapping(ClaimError, 409, "choose another host or free capacity"),
    Mapping(ComputeError, 400, ""),
    Mapping(StorageRefused, 400, "check the values against the limits in docs/api.md"),
    Mapping(StorageUnavailable, 503, "retry when the database is back (GET /v1/health tells)"),
    Mapping(StorageError, 500, "the service reloaded its state from the database"),
    Mapping(sa_exc.OperationalError, 503, "the database is unavailable: retry when it is back"),
    Mapping(sa_exc.SQLAlchemyError, 500, "a database error; nothing was changed"),
)


#: How the apps note which action an error interrupted (``exc.add_note``), for the message's prefix.
ACTION_NOTE = "novawatch action: "


def status_of(exc: BaseException) -> tuple[int, str]:
    """(HTTP status, message) for an error of the table; (500, ...) for anything else."""
    action = next((n.removeprefix(ACTION_NOTE) for n in getattr(exc, "__notes__", ()) if n.startswith(ACTION_NOTE)),
                  None)
    prefix = f"{action}: " if action else ""
    for row in STATUS:
        if isinstance(exc, row.error):
            text = str(exc) if not isinstance(exc, sa_exc.SQLAlchemyError) else type(exc).__name__
            return row.status, prefix + (f"{text}; {row.hint}" if row.hint and row.hint not in text else text)
    return 500, f"{prefix}internal error ({type(exc).__name__}); it was logged, and nothing the request did was kept"


Render = Callable[[int, str], Response]


def install(app: FastAPI, render: Render) -> None:
    """Answer every error of :data:`STATUS` (and any other exception, as 500) with ``render(status, message)``."""

    async def handle(request: Request, exc: Exception) -> Response:
        status, message = status_of(exc)
        if status >= 500 and any(isinstance(exc, row.error) for row in STATUS):
            # (errors outside the table reach the server, which logs them with their traceback)
            _throttle.log(log, logging.WARNING, (status, type(exc)), "%s %s answered %d: %s", request.method,
                          request.url.path, status, message,
                          extra={"method": request.method, "path": request.url.path, "status": status})
        return render(status, message)

    handler: Callable[[Request, Exception], Awaitable[Response]] = handle
    for row in STATUS:
        app.add_exception_handler(row.error, handler)
    app.add_exception_handler(Exception, handler)
