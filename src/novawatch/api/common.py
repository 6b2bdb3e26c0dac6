"""What both services' HTTP apps share: the bind policy, bearer tokens on writes, body limits, errors.

A service bound to loopback trusts its callers. Bound anywhere else, every write (POST, PUT, PATCH,
DELETE) must carry ``Authorization: Bearer <token>``, and the service refuses to start without a
token configured. Request bodies above the limit are refused with 413 before they are read whole.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from novawatch import __version__

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BindError(ValueError):
    """A bind address that needs a token but has none."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def required_token(host: str, token: str, service: str) -> str | None:
    """The token write endpoints need on ``host`` (None on loopback); raises when one is needed and unset."""
    if is_loopback(host):
        return token or None
    if not token:
        raise BindError(
            f"{service} is bound to {host}, which is not loopback: set a token for write endpoints "
            f"({service}.token in the config file, or NOVAWATCH_{service.upper()}_TOKEN), or bind to 127.0.0.1"
        )
    return token


async def _send_error(send: Send, status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": message}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Plain ASGI in front of an app: passes all but HTTP through, and HTTP requests to :meth:`guard`."""

    def __init__(self, app: ASGIApp, *, token: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.guard(scope, receive, send)

    async def guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class GuardMiddleware(Guard):
    """Bearer token on writes (when a token is set) and a request body size limit, as plain ASGI."""

    async def guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if self.token is not None and scope.get("method", "GET") in WRITE_METHODS:
            auth = headers.get(b"authorization", b"")
            scheme, _, given = auth.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self.token):
                await _send_error(send, 401, "this endpoint needs 'Authorization: Bearer <token>' "
                                  "with the service's configured token", [(b"www-authenticate", b"Bearer")])
                return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body_bytes
            except ValueError:
                await _send_error(send, 400, "Content-Length is not a number")
                return
            if too_big:
                await _send_error(send, 413, f"request body over the limit of {self.max_body_bytes} bytes")
                return
        limit = self.max_body_bytes
        seen = 0

        async def limited_receive() -> Message:
            # A chunked body has no Content-Length: count as it arrives.
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await _send_error(send, 413, f"request body over the limit of {limit} bytes")


class _BodyTooLarge(Exception):
    pass


def new_app(title: str, description: str, lifespan: Any = None) -> FastAPI:
    """A FastAPI app at novawatch's version, with :func:`install_error_handlers`."""
    app = FastAPI(title=title, version=__version__, description=description, lifespan=lifespan)
    install_error_handlers(app)
    return app


def install_error_handlers(app: FastAPI) -> None:
    """Errors as ``{"error": "...", "detail": ...}`` with a message a person can act on."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return JSONResponse(
            status_code=422,
            content={"error": "invalid request: " + "; ".join(parts), "detail": json.loads(json.dumps(
                exc.errors(), default=str))},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"error": str(exc.detail)},
                            headers=getattr(exc, "headers", None))
