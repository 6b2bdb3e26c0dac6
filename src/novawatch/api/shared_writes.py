"""Requests of one compute worker among several on one database: writes one at a time across the workers.

A write (POST, PUT, PATCH, DELETE) runs holding the workers' write lock (:mod:`novawatch.compute.shared`),
after the worker's in-memory state was brought up to the last commit of any worker. A read runs without
the lock, after a catch-up (under the lock) when another worker committed since. The request body is read
before the lock is taken, so a slow client does not hold up the other workers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from novawatch.api.common import WRITE_METHODS, read_body, replay, send_error
from novawatch.compute.errors import StorageUnavailable

#: Requests of one worker that may run in a row under one hold of the write lock.
BATCH = 8


class SharedWrites:
    """Plain ASGI in front of the compute app (and the Nova API beside it) of one worker."""

    def __init__(self, app: ASGIApp, *, service: Any, max_body_bytes: int,
                 open_paths: frozenset[str] = frozenset({"/v1/health"})) -> None:
        self.app = app
        self.service = service
        self.shared = service.shared
        self.max_body_bytes = max_body_bytes
        self.open_paths = open_paths
        self._gate: asyncio.Lock | None = None  # one holder of the write lock per worker
        self._waiting = 0  # this worker's requests waiting for the gate
        self._batch = 0  # requests served since the write lock was taken

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in self.open_paths:
            await self.app(scope, receive, send)
            return
        if scope.get("method", "GET") in WRITE_METHODS:
            body = await read_body(receive, self.max_body_bytes)
            if body is not None:
                receive = replay(body, receive)
            async with self._exclusive() as problem:
                if problem is not None:
                    await send_error(send, 503, problem)
                    return
                await self.app(scope, receive, send)
            return
        if self._stale():
            async with self._exclusive():
                pass
        await self.app(scope, receive, send)

    def _stale(self) -> bool:
        try:
            return bool(self.shared.generation() != self.service.generation)
        except Exception:
            return False  # the database is away: the guard and the handlers report it

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[str | None]:
        """Hold the write lock with the state synced; yields None, or why the lock could not be taken.

        While more of this worker's requests wait for it, the lock is kept for them (up to :data:`BATCH` in a
        row, so the other workers get their turn): the state stays current and needs no catch-up.
        """
        if self._gate is None:
            self._gate = asyncio.Lock()
        self._waiting += 1
        try:
            await self._gate.acquire()
        finally:
            self._waiting -= 1
        try:
            if not self.shared.held:
                try:
                    await asyncio.to_thread(self.shared.acquire)
                except StorageUnavailable as exc:
                    yield str(exc)
                    return
                self._batch = 0
            try:
                self.service.sync()
            except Exception as exc:  # the database went away between the lock and the read
                self.shared.release()
                yield (f"the database is unavailable ({type(exc).__name__}): nothing was changed; retry when "
                       "it is back (GET /v1/health tells)")
                return
            try:
                yield None
            finally:
                self._batch += 1
                if not self._waiting or self._batch >= BATCH:
                    self.shared.release()
        finally:
            self._gate.release()
