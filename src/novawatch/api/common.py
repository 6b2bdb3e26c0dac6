"""What both services' HTTP apps share: the bind policy, bearer tokens on writes, body limits, errors.

A service bound to loopback trusts its callers. Bound anywhere else, every write (POST, PUT, PATCH,
DELETE) must carry ``Authorization: Bearer <token>``, and the service refuses to start without a
token configured. Request bodies above the limit are refused with 413 before they are read whole, and
a JSON body that is not strict JSON (:func:`~novawatch.api.inputs.body_problem`) is refused before the
app parses it. Error bodies are always encodable: what they quote from a request is made safe first.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import math
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from novawatch import __version__
from novawatch.api.inputs import body_problem

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


def clean(text: str, limit: int | None = None) -> str:
    """``text`` safe to encode as UTF-8 (lone surrogates spelled ``\\udXXX``), cut at ``limit`` characters."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def jsonable(value: Any, *, quoted: bool = True, depth: int = 0) -> Any:
    """``value`` safe to send as JSON: finite numbers and encodable text.

    ``quoted`` (something a request sent, echoed back) also bounds its size: strings of 200
    characters, 50 items per container, 6 levels.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return clean(value, 200 if quoted else None)
    if isinstance(value, int):
        return value if not quoted or abs(value) < 2**63 else clean(str(value), 40)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if quoted and depth >= 6:
        return "..."
    if isinstance(value, dict):
        items = list(value.items())[:50] if quoted else value.items()
        return {clean(str(k), 200 if quoted else None): jsonable(v, quoted=quoted, depth=depth + 1) for k, v in items}
    if isinstance(value, list | tuple):
        return [jsonable(v, quoted=quoted, depth=depth + 1) for v in (value[:50] if quoted else value)]
    return clean(str(value), 200 if quoted else None)


def json_bytes(body: Any) -> bytes:
    """``body`` (the service's own answer) as JSON bytes; never fails on what it quotes from a request."""
    return json.dumps(jsonable(body, quoted=False), ensure_ascii=False, allow_nan=False).encode()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response that cannot fail to encode (see :func:`json_bytes`)."""
    return Response(json_bytes(body), status_code=status, media_type="application/json", headers=headers)


async def send_error(send: Send, status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer ``{"error": message}`` from plain ASGI middleware, before any app has started a response."""
    body = json_bytes({"error": message})
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": body})


def is_json(headers: dict[bytes, bytes]) -> bool:
    """True when a request body is to be read as JSON: no content type, or a JSON one."""
    kind = headers.get(b"content-type")
    return kind is None or b"json" in kind.lower()


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it is over ``limit`` bytes (or the client went away)."""
    body = bytearray()
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body += message.get("body", b"")
        more = bool(message.get("more_body", False))
        if len(body) > limit:
            return None
    return bytes(body)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app ``body`` (already read), then whatever comes next (a disconnect)."""
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


class Guard:
    """Plain ASGI in front of an app: passes all but HTTP through, and HTTP requests to :meth:`guard`.

    ``unavailable()`` (optional) says why the service cannot serve right now (None: it can); such
    requests are answered 503, except on the ``open_paths`` (health).
    """

    def __init__(self, app: ASGIApp, *, token: str | None, max_body_bytes: int,
                 unavailable: Callable[[], str | None] | None = None, open_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes
        self.unavailable = unavailable
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.guard(scope, receive, send)

    async def guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError

    def why_unavailable(self, scope: Scope) -> str | None:
        """Why this request cannot be served now (the service lost its database), or None."""
        if self.unavailable is None or scope.get("path", "") in self.open_paths:
            return None
        return self.unavailable()


class GuardMiddleware(Guard):
    """Bearer token on writes (when a token is set), a request body size limit and strict JSON, as plain ASGI."""

    async def guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        method = scope.get("method", "GET")
        if self.token is not None and method in WRITE_METHODS:
            auth = headers.get(b"authorization", b"")
            scheme, _, given = auth.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self.token):
                await send_error(send, 401, "this endpoint needs 'Authorization: Bearer <token>' "
                                  "with the service's configured token", [(b"www-authenticate", b"Bearer")])
                return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body_bytes
            except ValueError:
                await send_error(send, 400, "Content-Length is not a number")
                return
            if too_big:
                await send_error(send, 413, f"request body over the limit of {self.max_body_bytes} bytes")
                return
        reason = self.why_unavailable(scope)
        if reason is not None:
            await send_error(send, 503, f"the compute service cannot serve: {reason}; retry when the database "
                              "is back (GET /v1/health tells)")
            return
        if method in WRITE_METHODS:
            body = await read_body(receive, self.max_body_bytes)
            if body is None:
                await send_error(send, 413, f"request body over the limit of {self.max_body_bytes} bytes")
                return
            problem = body_problem(body) if body and is_json(headers) else None
            if problem is not None:
                await send_error(send, 422, f"invalid request: {problem}")
                return
            receive = replay(body, receive)
        await self.app(scope, receive, send)


def new_app(title: str, description: str, lifespan: Any = None) -> FastAPI:
    """A FastAPI app at novawatch's version, with :func:`install_error_handlers`."""
    app = FastAPI(title=title, version=__version__, description=description, lifespan=lifespan)
    install_error_handlers(app)
    return app


def install_error_handlers(app: FastAPI) -> None:
    """Errors as ``{"error": "...", "detail": ...}`` with a message a person can act on."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return json_response({"error": clean("invalid request: " + "; ".join(parts), 2000),
                              "detail": jsonable(exc.errors())}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return json_response({"error": clean(str(exc.detail))}, exc.status_code, getattr(exc, "headers", None))
