"""Nova's fault bodies (``{"itemNotFound": {"code": 404, "message": ...}}``) and the app's error handlers.

Errors of the compute service are mapped to statuses by the one table of :mod:`novawatch.api.errors`;
:class:`NovaError` is for what the HTTP layer itself refuses (a malformed reference, an unknown action).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from novawatch.api import errors as error_table
from novawatch.api.common import json_bytes, json_response
from novawatch.api.nova.schemas import InvalidInput

FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
               409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
               501: "notImplemented", 503: "serviceUnavailable"}


class NovaError(Exception):
    """An error answered with Nova's fault body and ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def fault(status: int, message: str) -> dict[str, Any]:
    """Nova's error body: ``{"<faultName>": {"code": status, "message": message}}``."""
    return {FAULT_NAMES.get(status, "computeFault"): {"code": status, "message": message}}


def fault_bytes(status: int, message: str) -> bytes:
    """:func:`fault` encoded (never fails to encode what it quotes)."""
    return json_bytes(fault(status, message))


def fault_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """Nova's fault body as a response."""
    return json_response(fault(status, message), status, headers)


def install(app: FastAPI) -> None:
    """Answer every error with a fault body: the compute service's through the status table, the others here."""
    error_table.install(app, fault_response)

    async def nova_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NovaError)
        return fault_response(exc.status, exc.message)

    async def invalid_input(request: Request, exc: Exception) -> Response:
        return fault_response(400, str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return fault_response(exc.status_code, str(exc.detail))

    async def routing_error(request: Request, exc: Exception) -> Response:
        # No route: Starlette's own 404 and 405, reworded as Nova words them.
        assert isinstance(exc, StarletteHTTPException)
        message = "The resource could not be found." if exc.status_code == 404 else str(exc.detail)
        return fault_response(exc.status_code, message)

    app.add_exception_handler(NovaError, nova_error)
    app.add_exception_handler(InvalidInput, invalid_input)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(StarletteHTTPException, routing_error)
