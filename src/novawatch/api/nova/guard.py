"""Token check, body size limit, strict JSON and microversion negotiation, as plain ASGI in front of the routes."""

from __future__ import annotations

import hmac
import uuid

from novawatch.api.common import Guard, Message, Receive, Scope, Send, read_body, replay
from novawatch.api.inputs import body_problem
from novawatch.api.nova.faults import fault_bytes
from novawatch.api.nova.microversion import MIN_VERSION, VersionError, requested, v
from novawatch.api.nova.microversion import response_headers as version_headers


async def _send_fault(send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = fault_bytes(status, message)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *extra]})
    await send({"type": "http.response.body", "body": body})


def _encoded(pairs: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode(), val.encode()) for k, val in pairs]


class NovaGuard(Guard):
    """What stands in front of the Nova routes.

    The negotiated version goes to ``scope["state"]["nova_version"]``, the request's id (``req-<uuid>``, also
    in the ``X-OpenStack-Request-Id`` header) to ``scope["state"]["request_id"]``.

    Every request but those to ``open_paths`` (version discovery) needs the token when one is set, as
    ``X-Auth-Token`` (how Keystone tokens travel) or ``Authorization: Bearer``.
    """

    async def guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): val.decode("latin-1") for k, val in scope.get("headers", [])}
        try:
            version = requested(headers)
        except VersionError as exc:
            await _send_fault(send, exc.status, str(exc), _encoded(version_headers(v(MIN_VERSION))))
            return
        # Every answer names its request, as Nova's: instance actions record it (os-instance-actions).
        request_id = f"req-{uuid.uuid4()}"
        extra = [*_encoded(version_headers(version)), (b"x-openstack-request-id", request_id.encode()),
                 (b"x-compute-request-id", request_id.encode())]
        path = scope.get("path", "")
        if self.token is not None and path not in self.open_paths and not self._authorised(headers):
            await _send_fault(send, 401, "The request you have made requires authentication.",
                              [*extra, (b"www-authenticate", b'Keystone uri="local"')])
            return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await _send_fault(send, 413, f"Request is too large (limit {self.max_body_bytes} bytes).", extra)
            return
        reason = self.why_unavailable(scope)
        if reason is not None:
            await _send_fault(send, 503, f"The compute service cannot serve: {reason}. Retry when its database "
                              "is back.", extra)
            return
        state = scope.setdefault("state", {})
        state["nova_version"] = version
        state["request_id"] = request_id
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            # Read the body here (a chunked one has no Content-Length), within the limit, check that it is
            # strict JSON, and replay it to the routes.
            body = await read_body(receive, self.max_body_bytes)
            if body is None:
                await _send_fault(send, 413, f"Request is too large (limit {self.max_body_bytes} bytes).", extra)
                return
            problem = body_problem(body) if body else None
            if problem is not None:
                await _send_fault(send, 400, f"Malformed request body: {problem}", extra)
                return
            receive = replay(body, receive)

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
