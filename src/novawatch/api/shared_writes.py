"""Requests of one compute worker among several on one database: which writes may run side by side.

A write (POST, PUT, PATCH, DELETE) runs holding the workers' locks (:mod:`novawatch.compute.shared`), after
the worker's in-memory state was brought up to the last commit of any worker. :func:`write_scope` reads
the footprint of a write from its path (and, for Nova's server actions, the action's name):

- **one instance** (power, pause, suspend, reboot, rescue, rebuild, snapshot, shelve, soft delete, restore,
  lock, metadata, tags, volume and port detach, port attach: its address comes from a sequence): that
  instance's lock and the write lock *shared*;
- **one instance and the volumes it names** (volume attach and swap: a volume any instance could reserve):
  the instance's lock, then the volumes' (in id order), then the write lock shared. The volume ids are
  read from the path and body; a body without them (``/v1`` creates a new volume then) or not as
  expected takes the exclusive path;
- **one instance and its hosts' usage** (delete, force delete, shelve offload, confirm and revert resize,
  live migration complete, force complete and abort):
  the instance's lock, then the locks of the hosts the instance and its active migration are on (a
  resized instance's delete confirms the resize, which frees the source host too), then the write lock
  shared. The hosts are not in the URL: they are guessed from the worker's memory, and checked after the
  catch-up (under the instance's lock nobody else can move the instance); a wrong guess is tried once
  more with the hosts the catch-up showed, and a second miss takes the exclusive path instead;
- **a boot**: the lock of the host the scheduler picks, then the write lock shared. The host is guessed by
  a probe (the request run on the worker's memory, stopped by :mod:`novawatch.compute.host_guard` before
  the boot changes anything) and checked by the same guard once caught up; a miss runs again with the
  host picked, a second miss (or a reschedule to an alternate host) runs alone;
- **a move** (resize, migrate, live migrate, evacuate, unshelve): as a boot, after the instance's lock and
  with the locks of the hosts it and its migration are on too (an unshelve still on its host: that host's);
- **anything else** (services, flavors, volume create and delete, anything not recognised): the write lock
  exclusively.

docs/compute.md ("What runs side by side across workers") shows each action's rows. A read runs without a
lock, after a catch-up (under the shared lock) when another worker committed since. The request body is
read before any lock is taken, so a slow client does not hold up the other workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from novawatch.api.common import WRITE_METHODS, read_body, replay, send_error
from novawatch.compute.errors import StorageUnavailable
from novawatch.compute.host_guard import GUARD, HostGuard

#: Requests of one worker that may hold or wait for the database's locks at once (a connection each).
HOLDS = 4

#: novawatch's own API: ``POST /v1/instances/{uuid}/{action}`` for these actions writes that instance's rows
#: only (its record, faults, actions; a detach also the volume or port it held).
INSTANCE_ACTIONS = frozenset({"power_off", "power_on", "pause", "unpause", "suspend", "resume", "reboot", "lock",
                              "unlock", "trigger_crash_dump", "metadata", "tags", "rescue", "unrescue", "rebuild",
                              "snapshot", "shelve", "soft_delete", "restore", "detach_volume", "detach_interface",
                              "attach_interface"})
#: ... and these also the usage of the hosts the instance and its migration are on (they release claims there).
HOST_ACTIONS = frozenset({"force_delete", "shelve_offload", "confirm_resize", "revert_resize",
                          "live_migration_complete", "live_migration_force_complete", "live_migration_abort"})
#: ... and these schedule the instance to another host (a move: its own hosts and the one picked).
MOVE_ACTIONS = frozenset({"migrate", "resize", "live_migrate", "evacuate", "unshelve"})
#: Nova's API: ``POST /v2.1/servers/{id}/action`` with one of these actions touches that server only.
NOVA_INSTANCE_ACTIONS = frozenset({"os-start", "os-stop", "pause", "unpause", "suspend", "resume", "reboot", "lock",
                                   "unlock", "trigger_crash_dump", "rescue", "unrescue", "rebuild", "createImage",
                                   "shelve", "restore"})
#: ... and these also its hosts' usage.
NOVA_HOST_ACTIONS = frozenset({"forceDelete", "shelveOffload", "confirmResize", "revertResize"})
#: ... and these move it.
NOVA_MOVE_ACTIONS = frozenset({"migrate", "resize", "os-migrateLive", "evacuate", "unshelve"})

_OWN_INSTANCE = re.compile(r"/v1/instances/([^/]+)")
_OWN_ACTION = re.compile(r"/v1/instances/([^/]+)/([a-z_]+)")
_NOVA_SERVER = re.compile(r"/v2\.1/servers/([^/]+)")
_NOVA_ACTION = re.compile(r"/v2\.1/servers/([^/]+)/action")
_NOVA_METADATA = re.compile(r"/v2\.1/servers/([^/]+)/metadata(?:/[^/]+)?")
_NOVA_DETACH = re.compile(r"/v2\.1/servers/([^/]+)/(?:os-volume_attachments|os-interface)/[^/]+")
_NOVA_INTERFACES = re.compile(r"/v2\.1/servers/([^/]+)/os-interface")
_NOVA_ATTACH = re.compile(r"/v2\.1/servers/([^/]+)/os-volume_attachments")
_NOVA_SWAP = re.compile(r"/v2\.1/servers/([^/]+)/os-volume_attachments/([^/]+)")
#: novawatch's own volume actions: the body fields naming the volumes they touch (all required here).
_OWN_VOLUME_FIELDS = {"attach_volume": ("volume_id",), "swap_volume": ("old_volume_id", "new_volume_id")}


class WriteScope(NamedTuple):
    """What a write locks: ``instance`` (None: everything, exclusively) and, with ``host``, also the hosts the
    instance is on; ``boot``: the host the scheduler picks (a boot, or a move of ``instance``:
    :meth:`SharedWrites._boot`); ``volumes``: the volumes an attach or swap on ``instance`` reserves."""

    instance: str | None
    host: bool = False
    boot: bool = False
    volumes: tuple[str, ...] = ()


EXCLUSIVE = WriteScope(None)
BOOT = WriteScope(None, boot=True)

_BOOTS = frozenset({"/v1/instances", "/v2.1/servers"})


def write_scope(method: str, path: str, body: bytes) -> WriteScope:
    """The footprint of a write, from its method, path and (Nova's server actions) body; exclusive unless
    recognised."""
    if method == "POST" and path in _BOOTS:
        return BOOT
    if method == "DELETE" and (own := _OWN_INSTANCE.fullmatch(path) or _NOVA_SERVER.fullmatch(path)) is not None:
        return WriteScope(own.group(1), host=True)
    if method == "POST" and (own := _OWN_ACTION.fullmatch(path)) is not None:
        if own.group(2) in _OWN_VOLUME_FIELDS:
            return _volume_scope(own.group(1), body, None, _OWN_VOLUME_FIELDS[own.group(2)])
        if own.group(2) in INSTANCE_ACTIONS:
            return WriteScope(own.group(1))
        if own.group(2) in MOVE_ACTIONS:
            return WriteScope(own.group(1), boot=True)
        return WriteScope(own.group(1), host=True) if own.group(2) in HOST_ACTIONS else EXCLUSIVE
    if method in ("POST", "PUT", "DELETE") and (meta := _NOVA_METADATA.fullmatch(path)) is not None:
        return WriteScope(meta.group(1))
    if method == "DELETE" and (detach := _NOVA_DETACH.fullmatch(path)) is not None:
        return WriteScope(detach.group(1))
    if method == "POST" and (ports := _NOVA_INTERFACES.fullmatch(path)) is not None:
        return WriteScope(ports.group(1))
    if method == "POST" and (attach := _NOVA_ATTACH.fullmatch(path)) is not None:
        return _volume_scope(attach.group(1), body, "volumeAttachment", ("volumeId",))
    if method == "PUT" and (swap := _NOVA_SWAP.fullmatch(path)) is not None:
        scope = _volume_scope(swap.group(1), body, "volumeAttachment", ("volumeId",))
        return scope if scope.instance is None else scope._replace(volumes=tuple(sorted({*scope.volumes,
                                                                                         swap.group(2)})))
    if method == "POST" and (nova := _NOVA_ACTION.fullmatch(path)) is not None:
        try:
            data = json.loads(body or b"null")
        except (ValueError, RecursionError):
            return EXCLUSIVE  # the app answers 400
        if isinstance(data, dict) and len(data) == 1:
            name = next(iter(data))
            if name in NOVA_INSTANCE_ACTIONS:
                return WriteScope(nova.group(1))
            if name in NOVA_HOST_ACTIONS:
                return WriteScope(nova.group(1), host=True)
            if name in NOVA_MOVE_ACTIONS:
                return WriteScope(nova.group(1), boot=True)
    return EXCLUSIVE


def _volume_scope(instance: str, body: bytes, wrapper: str | None, fields: tuple[str, ...]) -> WriteScope:
    """``instance`` and the volumes named by ``fields`` of the JSON body (inside ``wrapper`` when given);
    exclusive when the body is not that shape (the app answers 400, or creates a volume no lock names)."""
    try:
        data = json.loads(body or b"null")
    except (ValueError, RecursionError):
        return EXCLUSIVE
    if wrapper is not None:
        data = data.get(wrapper) if isinstance(data, dict) else None
    if not isinstance(data, dict):
        return EXCLUSIVE
    named = [data.get(field) for field in fields]
    if not all(isinstance(v, str) and v for v in named):
        return EXCLUSIVE
    return WriteScope(instance, volumes=tuple(sorted({str(v) for v in named})))


def instance_scope(method: str, path: str, body: bytes) -> str | None:
    """The instance a write touches alone (its path names it, and the action changes nothing else), or None."""
    scope = write_scope(method, path, body)
    return None if scope.host or scope.boot or scope.volumes else scope.instance


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
        #: Boots run again because the scheduler picked a host the request did not hold; boots run alone.
        self.boot_retries = 0
        self.boots_alone = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in self.open_paths:
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        if method in WRITE_METHODS:
            body = await read_body(receive, self.max_body_bytes)
            footprint = write_scope(method, scope.get("path", ""), body or b"")
            if footprint.boot and body is not None:
                await self._boot(scope, receive, send, body, footprint.instance)
                return
            if body is not None:
                receive = replay(body, receive)
            async with self._holding(footprint if not footprint.boot else EXCLUSIVE) as problem:
                if problem is not None:
                    await self._unavailable(send, problem)
                    return
                await self.app(scope, receive, send)
            return
        if self._stale():
            async with self._holding(None) as problem:
                if problem is not None and self.shared.stopping:
                    # no catch-up any more: another worker answers it with every commit seen
                    await self._unavailable(send, problem)
                    return
        await self.app(scope, receive, send)

    async def _boot(self, scope: Scope, receive: Receive, send: Send, body: bytes, instance: str | None) -> None:
        """A boot (or a move of ``instance``) beside the other workers' actions: it holds the lock of the host
        the scheduler picks (a move: the instance's, then those of its own hosts too), then the write lock
        shared, the way Nova's schedulers pick at once and settle races at the claim.

        The host is learnt from a probe (the request run on the worker's memory as it is, stopped by the
        guard before it changes anything; its answer is dropped), then the request runs holding that
        host's lock, caught up. When the scheduler, on the caught-up state, picks another host, the guard
        refuses it before anything changed, and it runs again with that host's lock; after a second miss,
        or a reschedule to an alternate host (rolled back: nothing is kept or sent), it runs alone.
        """
        host = await self._probe(scope, receive, body)
        for _ in range(2):
            held = (self._hosts_of(instance) if instance is not None else frozenset()) | (
                frozenset() if host is None else frozenset({host}))
            guard = HostGuard(held=held)
            async with self._holding(WriteScope(instance, boot=True), hosts=held) as problem:
                if problem is not None:
                    await self._unavailable(send, problem)
                    return
                if instance is not None and not self._hosts_of(instance) <= held:
                    guard.tripped = True  # moved meanwhile (a stale memory's guess): try again
                else:
                    await self._guarded(guard, scope, replay(body, receive), send)
            if not guard.tripped:
                return
            self.boot_retries += 1
            if guard.alone:
                break
            host = guard.wanted if guard.wanted is not None else host
        self.boots_alone += 1
        async with self._holding(EXCLUSIVE) as problem:
            if problem is not None:
                await self._unavailable(send, problem)
                return
            await self.app(scope, replay(body, receive), send)

    async def _unavailable(self, send: Send, problem: str) -> None:
        """503 with why the locks could not be taken; a stopping worker also closes the connection, so the
        client's retry reaches another worker."""
        await send_error(send, 503, problem, [(b"connection", b"close")] if self.shared.stopping else ())

    async def _probe(self, scope: Scope, receive: Receive, body: bytes) -> str | None:
        """The host the boot's scheduler picks on this worker's memory as it is (no lock, no catch-up: a
        guess), or None (no room, the request fails before its boot, or the state is not loaded)."""
        if self.service.generation < 0 or self.service.unavailable is not None:
            return None
        guard = HostGuard(probe=True)

        async def dropped(message: Message) -> None:
            return None

        with contextlib.suppress(Exception):  # whatever it answers is dropped: the real run answers
            await self._guarded(guard, scope, replay(body, receive), dropped)
        return guard.wanted if guard.tripped else None

    async def _guarded(self, guard: HostGuard, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with ``guard`` set for its boot; a refused run's answer is dropped (it is refused before
        anything is sent to the client)."""

        async def unless_refused(message: Message) -> None:
            if not guard.tripped:
                await send(message)

        token = GUARD.set(guard)
        try:
            await self.app(scope, receive, unless_refused)
        finally:
            GUARD.reset(token)

    def _stale(self) -> bool:
        try:
            return bool(self.shared.generation() != self.service.generation)
        except Exception:
            return False  # the database is away: the guard and the handlers report it

    @contextlib.asynccontextmanager
    async def _holding(self, scope: WriteScope | None,
                       hosts: frozenset[str] = frozenset()) -> AsyncIterator[str | None]:
        """Hold the locks of ``scope`` (None: the write lock shared, for a read's catch-up; a boot or move: its
        instance's, ``hosts``' and the write lock shared) with the state synced; yields None, or why they could
        not be taken.

        The actions themselves run one at a time on the worker's event loop (an action never awaits), so
        the worker's one session is never used by two at once; what runs side by side is the waiting for
        locks here, and the actions of different workers.
        """
        if self._slots is None:
            self._slots = asyncio.Semaphore(HOLDS)
        async with self._slots:
            if scope is None:
                hold, problem = await self._take(None)
            elif scope.boot:
                hold, problem = await self._take(scope.instance, hosts=hosts)
            elif scope.host:
                hold, problem = await self._take_host(scope.instance or "")
            elif scope.volumes:
                hold, problem = await self._take(scope.instance, volumes=scope.volumes)
            else:
                hold, problem = await self._take(scope.instance, exclusive=scope.instance is None)
            if hold is None:
                yield problem
                return
            try:
                yield None
            finally:
                self.shared.release(hold)

    async def _take(self, instance: str | None, *, hosts: frozenset[str] = frozenset(), volumes: tuple[str, ...] = (),
                    exclusive: bool = False) -> tuple[Any, str | None]:
        """(the hold, None) with the state synced, or (None, why not): the locks of ``instance``, ``volumes`` and
        ``hosts`` when named, then the write lock (shared, or ``exclusive``)."""
        try:
            hold = await asyncio.to_thread(self.shared.acquire, instance, hosts=hosts, volumes=volumes,
                                           exclusive=exclusive)
        except StorageUnavailable as exc:
            return None, str(exc)
        try:
            self.service.sync()
        except Exception as exc:  # the database went away between the lock and the read
            self.shared.release(hold)
            return None, (f"the database is unavailable ({type(exc).__name__}): nothing was changed; retry when "
                          "it is back (GET /v1/health tells)")
        return hold, None

    async def _take_host(self, instance: str) -> tuple[Any, str | None]:
        """The locks of an action on ``instance`` and its hosts' usage: the hosts guessed from memory, checked
        once synced (a guess from a stale memory is tried once more, then the exclusive path is taken)."""
        for _ in range(2):
            hosts = self._hosts_of(instance)
            hold, problem = await self._take(instance, hosts=hosts)
            if hold is None or self._hosts_of(instance) == hosts:
                return hold, problem
            self.shared.release(hold)
        return await self._take(None, exclusive=True)

    def _hosts_of(self, instance: str) -> frozenset[str]:
        """The hosts whose usage an action on ``instance`` may write: the instance's, and both of its active
        migration's (a resize to confirm or revert; a delete confirms it first). Under the instance's lock
        nobody else can change them, so a set found after the catch-up holds to the commit."""
        inst = self.service.instances.get(instance)
        if inst is None:
            return frozenset()  # gone: a 404 writes nothing
        mig = self.service.migrations.get(instance)
        found = {inst.host} if mig is None else {inst.host, mig.source_compute, mig.dest_compute}
        return frozenset(h for h in found if h is not None)
