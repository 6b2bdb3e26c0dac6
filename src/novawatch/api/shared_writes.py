"""Requests of one compute worker among several on one database: which writes may run side by side.

A write (POST, PUT, PATCH, DELETE) runs holding the workers' write lock (:mod:`novawatch.compute.shared`),
after the worker's in-memory state was brought up to the last commit of any worker. An action that
touches one instance only (:func:`instance_scope`: power, pause, suspend, reboot, lock, metadata, tags)
takes that instance's lock and the write lock *shared*, so such actions on different instances run at
the same time in different workers; any other write (boot, delete, moves, volumes, services...) takes the
write lock exclusively. A read runs without a lock, after a catch-up (under the shared lock) when another
worker committed since. The request body is read before any lock is taken, so a slow client does not
hold up the other workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from novawatch.api.common import WRITE_METHODS, read_body, replay, send_error
from novawatch.compute.errors import StorageUnavailable

#: Requests of one worker that may hold or wait for the database's locks at once (a connection each).
HOLDS = 4

#: novawatch's own API: ``POST /v1/instances/{uuid}/{action}`` for these actions touches that instance only.
INSTANCE_ACTIONS = frozenset({"power_off", "power_on", "pause", "unpause", "suspend", "resume", "reboot", "lock",
                              "unlock", "trigger_crash_dump", "metadata", "tags"})
#: Nova's API: ``POST /v2.1/servers/{id}/action`` with one of these actions touches that server only.
NOVA_INSTANCE_ACTIONS = frozenset({"os-start", "os-stop", "pause", "unpause", "suspend", "resume", "reboot", "lock",
                                   "unlock", "trigger_crash_dump"})

_OWN_ACTION = re.compile(r"/v1/instances/([^/]+)/([a-z_]+)")
_NOVA_ACTION = re.compile(r"/v2\.1/servers/([^/]+)/action")
_NOVA_METADATA = re.compile(r"/v2\.1/servers/([^/]+)/metadata(?:/[^/]+)?")


def instance_scope(method: str, path: str, body: bytes) -> str | None:
    """The instance a write touches alone (its path names it, and the action changes nothing else), or None."""
    if method == "POST" and (own := _OWN_ACTION.fullmatch(path)) is not None:
        return own.group(1) if own.group(2) in INSTANCE_ACTIONS else None
    if method in ("POST", "PUT", "DELETE") and (meta := _NOVA_METADATA.fullmatch(path)) is not None:
        return meta.group(1)
    if method == "POST" and (nova := _NOVA_ACTION.fullmatch(path)) is not None:
        try:
            data = json.loads(body or b"null")
        except (ValueError, RecursionError):
            return None  # the app answers 400
        if isinstance(data, dict) and len(data) == 1 and next(iter(data)) in NOVA_INSTANCE_ACTIONS:
            return nova.group(1)
    return None


class SharedWrites:
    """Plain ASGI in front of the compute app (and the Nova API beside it) of one worker."""

    def __init__(self, app: ASGIApp, *, service: Any, max_body_bytes: int,
                 open_paths: frozenset[str] = frozenset({"/v1/health"})) -> None:
        self.app = app
        self.service = service
        self.shared = service.shared
        self.max_body_bytes = max_body_bytes
        self.open_paths = open_paths
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in self.open_paths:
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        if method in WRITE_METHODS:
            body = await read_body(receive, self.max_body_bytes)
            if body is not None:
                receive = replay(body, receive)
            instance = instance_scope(method, scope.get("path", ""), body or b"")
            async with self._holding(instance, exclusive=instance is None) as problem:
                if problem is not None:
                    await send_error(send, 503, problem)
                    return
                await self.app(scope, receive, send)
            return
        if self._stale():
            async with self._holding(None, exclusive=False):
                pass
        await self.app(scope, receive, send)

    def _stale(self) -> bool:
        try:
            return bool(self.shared.generation() != self.service.generation)
        except Exception:
            return False  # the database is away: the guard and the handlers report it

    @contextlib.asynccontextmanager
    async def _holding(self, instance: str | None, *, exclusive: bool) -> AsyncIterator[str | None]:
        """Hold the locks with the state synced; yields None, or why the locks could not be taken.

        The actions themselves run one at a time on the worker's event loop (an action never awaits), so
        the worker's one session is never used by two at once; what runs side by side is the waiting for
        locks here, and the actions of different workers.
        """
        if self._slots is None:
            self._slots = asyncio.Semaphore(HOLDS)
        async with self._slots:
            try:
                hold = await asyncio.to_thread(self.shared.acquire, instance, exclusive=exclusive)
            except StorageUnavailable as exc:
                yield str(exc)
                return
            try:
                try:
                    self.service.sync()
                except Exception as exc:  # the database went away between the lock and the read
                    yield (f"the database is unavailable ({type(exc).__name__}): nothing was changed; retry "
                           "when it is back (GET /v1/health tells)")
                    return
                yield None
            finally:
                self.shared.release(hold)
