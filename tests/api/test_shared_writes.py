"""Which writes of a compute worker run side by side (:func:`novawatch.api.shared_writes.write_scope`)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from tests.api.helpers import wait_for
from tests.compute.computehelpers import advisory_lock, lock_waiters, published, reopened_consistent, stored_usage

from novawatch.api.compute_app import create_compute_app
from novawatch.api.nova import mount_nova
from novawatch.api.shared_writes import BOOT, EXCLUSIVE, SharedWrites, WriteScope, instance_scope, write_scope
from novawatch.bus import open_publisher
from novawatch.compute.images import DEFAULT_IMAGE
from novawatch.compute.service import open_service
from novawatch.compute.shared import HOST_LOCKS, INSTANCE_LOCKS, VOLUME_LOCKS, lock_key
from novawatch.notifications import Notifier
from novawatch.notifications.drivers import MemoryDriver

UUID = "6a1f5b1e-1c1e-4d55-9d7c-1f0e9a9a0b01"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", f"/v1/instances/{UUID}/pause", None),
    ("POST", f"/v1/instances/{UUID}/power_off", None),
    ("POST", f"/v1/instances/{UUID}/reboot", {"hard": True}),
    ("POST", f"/v1/instances/{UUID}/metadata", {"metadata": {"k": "v"}}),
    ("POST", f"/v1/instances/{UUID}/tags", {"tags": ["a"]}),
    ("POST", f"/v1/instances/{UUID}/lock", {"reason": "r"}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"os-stop": None}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"reboot": {"type": "HARD"}}),
    ("POST", f"/v2.1/servers/{UUID}/metadata", {"metadata": {"k": "v"}}),
    ("PUT", f"/v2.1/servers/{UUID}/metadata/k", {"meta": {"k": "v"}}),
    ("DELETE", f"/v2.1/servers/{UUID}/metadata/k", None),
    # no claim, node, address or shared volume written (docs/compute.md, "What runs side by side")
    ("POST", f"/v1/instances/{UUID}/rescue", None),
    ("POST", f"/v1/instances/{UUID}/unrescue", None),
    ("POST", f"/v1/instances/{UUID}/rebuild", {"image_ref": None}),
    ("POST", f"/v1/instances/{UUID}/snapshot", None),
    ("POST", f"/v1/instances/{UUID}/shelve", None),
    ("POST", f"/v1/instances/{UUID}/soft_delete", None),
    ("POST", f"/v1/instances/{UUID}/restore", None),
    ("POST", f"/v1/instances/{UUID}/detach_volume", {"volume_id": "v"}),
    ("POST", f"/v1/instances/{UUID}/detach_interface", {"port_id": "p"}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"rescue": None}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"rebuild": {"imageRef": UUID}}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"createImage": {"name": "i"}}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"shelve": None}),
    ("POST", f"/v2.1/servers/{UUID}/action", {"restore": None}),
    ("DELETE", f"/v2.1/servers/{UUID}/os-volume_attachments/{UUID}", None),
    ("DELETE", f"/v2.1/servers/{UUID}/os-interface/p", None),
    # a new port: its instance's info cache, an address from the shared sequence
    ("POST", f"/v1/instances/{UUID}/attach_interface", None),
    ("POST", f"/v2.1/servers/{UUID}/os-interface", {"interfaceAttachment": {}}),
])
def test_an_action_on_one_instance_names_it(method: str, path: str, body: object) -> None:
    assert instance_scope(method, path, json.dumps(body).encode() if body is not None else b"") == UUID


def _raw(body: object) -> bytes:
    return body.encode() if isinstance(body, str) else json.dumps(body).encode() if body is not None else b""


HOSTS = WriteScope(UUID, host=True)
MOVE = WriteScope(UUID, boot=True)


@pytest.mark.parametrize(("method", "path", "body", "expected"), [
    # writes that free their instance's claim: the hosts it and its migration are on
    ("DELETE", f"/v1/instances/{UUID}", None, HOSTS),
    ("DELETE", f"/v2.1/servers/{UUID}", None, HOSTS),
    ("POST", f"/v1/instances/{UUID}/force_delete", None, HOSTS),
    ("POST", f"/v1/instances/{UUID}/shelve_offload", None, HOSTS),
    ("POST", f"/v2.1/servers/{UUID}/action", {"forceDelete": None}, HOSTS),
    ("POST", f"/v2.1/servers/{UUID}/action", {"shelveOffload": None}, HOSTS),
    ("POST", f"/v1/instances/{UUID}/confirm_resize", None, HOSTS),
    ("POST", f"/v1/instances/{UUID}/revert_resize", None, HOSTS),
    ("POST", f"/v2.1/servers/{UUID}/action", {"confirmResize": None}, HOSTS),
    ("POST", f"/v2.1/servers/{UUID}/action", {"revertResize": None}, HOSTS),
    ("POST", f"/v1/instances/{UUID}/live_migration_complete", None, HOSTS),
    ("POST", f"/v1/instances/{UUID}/live_migration_force_complete", None, HOSTS),
    ("POST", f"/v1/instances/{UUID}/live_migration_abort", None, HOSTS),
    # boots: the host the scheduler picks
    ("POST", "/v1/instances", {"name": "a", "flavor": "m1.tiny"}, BOOT),
    ("POST", "/v2.1/servers", {}, BOOT),
    # moves: the instance, its hosts and the host the scheduler picks
    ("POST", f"/v1/instances/{UUID}/resize", {"flavor": "m1.small"}, MOVE),
    ("POST", f"/v1/instances/{UUID}/live_migrate", None, MOVE),
    ("POST", f"/v1/instances/{UUID}/evacuate", {"host": "h"}, MOVE),
    ("POST", f"/v2.1/servers/{UUID}/action", {"migrate": None}, MOVE),
    ("POST", f"/v2.1/servers/{UUID}/action", {"resize": {"flavorRef": "2"}}, MOVE),
    ("POST", f"/v2.1/servers/{UUID}/action", {"os-migrateLive": {"host": None}}, MOVE),
    ("POST", f"/v2.1/servers/{UUID}/action", {"evacuate": {}}, MOVE),
    ("POST", f"/v1/instances/{UUID}/unshelve", None, MOVE),  # offloaded, it schedules
    ("POST", f"/v2.1/servers/{UUID}/action", {"unshelve": None}, MOVE),
    # volume attach and swap: the instance and the volumes they name
    ("POST", f"/v1/instances/{UUID}/attach_volume", {"volume_id": "v1"}, WriteScope(UUID, volumes=("v1",))),
    ("POST", f"/v1/instances/{UUID}/attach_volume", {"volume_id": "v1", "size": 3}, WriteScope(UUID, volumes=("v1",))),
    ("POST", f"/v1/instances/{UUID}/swap_volume", {"old_volume_id": "v2", "new_volume_id": "v1"},
     WriteScope(UUID, volumes=("v1", "v2"))),
    ("POST", f"/v2.1/servers/{UUID}/os-volume_attachments", {"volumeAttachment": {"volumeId": "v1"}},
     WriteScope(UUID, volumes=("v1",))),
    ("PUT", f"/v2.1/servers/{UUID}/os-volume_attachments/v2", {"volumeAttachment": {"volumeId": "v1"}},
     WriteScope(UUID, volumes=("v1", "v2"))),
    # anything not recognised, or that may touch anything: everything, exclusively
    ("POST", "/v1/services", {"host": "h"}, EXCLUSIVE),
    ("PUT", f"/v2.1/servers/{UUID}", {"server": {"name": "n"}}, EXCLUSIVE),
    ("POST", f"/v2.1/servers/{UUID}/action", {"pause": None, "unpause": None}, EXCLUSIVE),  # the app refuses it
    ("POST", f"/v2.1/servers/{UUID}/action", "not json", EXCLUSIVE),
    ("POST", "/v1/instances/", {"name": "a", "flavor": "m1.tiny"}, EXCLUSIVE),  # not the boot's path
    ("PUT", "/v2.1/servers", None, EXCLUSIVE),
    ("POST", f"/v1/instances/{UUID}/attach_volume", None, EXCLUSIVE),  # creates a volume that no lock names
    ("POST", f"/v1/instances/{UUID}/attach_volume", {"size": 2}, EXCLUSIVE),
    ("POST", f"/v1/instances/{UUID}/attach_volume", {"volume_id": 7}, EXCLUSIVE),  # the app answers 400
    ("POST", f"/v1/instances/{UUID}/swap_volume", {"old_volume_id": "v"}, EXCLUSIVE),
    ("POST", f"/v2.1/servers/{UUID}/os-volume_attachments", {"volumeAttachment": {}}, EXCLUSIVE),
    ("POST", f"/v2.1/servers/{UUID}/os-volume_attachments", {"volumeId": "v"}, EXCLUSIVE),
    ("POST", f"/v2.1/servers/{UUID}/os-volume_attachments", "not json", EXCLUSIVE),
    ("PUT", f"/v2.1/servers/{UUID}/os-volume_attachments/{UUID}", {"volumeAttachment": {"volumeId": ""}}, EXCLUSIVE),
    ("POST", f"/v2.1/servers/{UUID}/os-interface/", {"interfaceAttachment": {}}, EXCLUSIVE),
    ("POST", f"/v2.1/servers/{UUID}/action", {"createBackup": {"name": "b"}}, EXCLUSIVE),  # unknown to novawatch
    ("POST", f"/v2.1/servers/{UUID}/action", {"forceDelete": None, "restore": None}, EXCLUSIVE),
    ("DELETE", f"/v1/instances/{UUID}/", None, EXCLUSIVE),  # a trailing slash is not the instance's path
    ("DELETE", "/v1/flavors/1", None, EXCLUSIVE),
    ("PATCH", f"/v1/instances/{UUID}", None, EXCLUSIVE),
])
def test_a_write_that_takes_more_than_its_instances_lock(method: str, path: str, body: object,
                                                         expected: WriteScope) -> None:
    assert write_scope(method, path, _raw(body)) == expected
    assert instance_scope(method, path, _raw(body)) is None  # never the one-instance path


def _locked(svc: Any, action: Callable[[Any], Any]) -> Any:
    """An action as a worker runs it: the exclusive lock, caught up, committed."""
    with svc.shared.locked():
        svc.sync()
        result = action(svc)
        svc.commit()
        return result


def _seed(s: Any) -> None:
    s.create_flavor("m1.tiny", vcpus=1, memory_mb=512, root_gb=1)
    s.create_flavor("m1.small", vcpus=2, memory_mb=1024, root_gb=2)
    for host in ("host-1", "host-2"):
        s.create_service(host, vcpus=4, memory_mb=4096, local_gb=100)


def test_a_worker_that_has_not_seen_the_instance_finds_its_host_before_deleting(pg_database: str) -> None:
    """Worker B's memory does not know the instance worker A booted: B's first guess locks no host; once
    caught up B sees the instance's host, lets go and waits for that host's lock (held here by the test),
    never deleting without it. Real PostgreSQL, the real compute app behind the middleware."""
    a = open_service(pg_database, Notifier([]), shared=True)
    b = open_service(pg_database, Notifier([]), shared=True)
    holder = psycopg.connect(pg_database, autocommit=True)
    try:
        _locked(a, _seed)
        _locked(b, lambda s: None)  # B has seen the hosts, not what comes next
        uuid = _locked(a, lambda s: s.boot("vm", s.flavor_by_name("m1.tiny"), host="host-1")).uuid
        assert uuid not in b.instances
        app = SharedWrites(create_compute_app(b), service=b, max_body_bytes=1 << 20)
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (HOST_LOCKS, lock_key("host-1")))
        deleted = asyncio.run(_waiting_for_host(app, "DELETE", f"/v1/instances/{uuid}", holder, "host-1"))
        assert deleted.status_code == 202, deleted.text
        _locked(a, lambda s: None)
        assert uuid not in a.instances and a.nodes["host-1"].vcpus_used == 0
    finally:
        holder.close()
        a.close()
        b.close()


@pytest.mark.parametrize("source_held", [True, False])
def test_deleting_a_resized_instance_locks_both_hosts_of_its_migration(pg_database: str, source_held: bool) -> None:
    """A resized instance's delete confirms the resize first (the source host's usage) and then frees the
    destination's: it holds the locks of both hosts (and the write lock shared), so it waits while the test
    holds either one."""
    a = open_service(pg_database, Notifier([]), shared=True)
    holder = psycopg.connect(pg_database, autocommit=True)
    try:
        _locked(a, _seed)
        uuid = _locked(a, lambda s: s.boot("vm", s.flavor_by_name("m1.tiny"), host="host-1")).uuid
        _locked(a, lambda s: s.resize(uuid, s.flavor_by_name("m1.small"), host="host-2"))
        assert a.instances[uuid].vm_state == "resized" and uuid in a.migrations
        app = SharedWrites(create_compute_app(a), service=a, max_body_bytes=1 << 20)
        held = "host-1" if source_held else "host-2"
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (HOST_LOCKS, lock_key(held)))
        deleted = asyncio.run(_waiting_for_host(app, "DELETE", f"/v1/instances/{uuid}", holder, held))
        assert deleted.status_code == 202, deleted.text
        assert uuid not in a.instances and not a.migrations
    finally:
        holder.close()
        a.close()
    assert stored_usage(pg_database) == {n.uuid: (0, 0, 0, 0) for n in a.nodes.values()}


def _assert_rows_equal_claims(url: str) -> None:
    """The database's invariants hold and each node row, as written, holds what its claims add up to."""
    with reopened_consistent(url):
        pass


async def _until_waiting(request: asyncio.Task[httpx.Response], waiting: Callable[[], int], what: str) -> None:
    """Return once ``waiting()`` counts one waiting connection (the request's); fail if the request ended first."""
    deadline = time.monotonic() + 60
    while waiting() != 1:
        assert not request.done(), f"{what} did not wait: {request.result().text}"
        assert time.monotonic() < deadline, f"{what} never waited"
        await asyncio.sleep(0.05)


async def _waiting_for_host(app: Any, method: str, path: str, holder: psycopg.Connection[Any], host: str,
                            body: Any = None, meanwhile: Callable[[httpx.AsyncClient], Any] | None = None
                            ) -> httpx.Response:
    """Send ``method path`` through ``app``; once it waits for ``host``'s lock (held by ``holder``), run
    ``meanwhile`` (it must not wait for this request), then release the lock and return the answer."""
    lock = advisory_lock(HOST_LOCKS, host)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as client:
        request = asyncio.create_task(client.request(method, path, json=body))
        await _until_waiting(request, lambda: lock_waiters(holder, lock), f"{method} {path} (for {host}'s lock)")
        if meanwhile is not None:
            await meanwhile(client)
        assert not request.done() and lock_waiters(holder, lock) == 1
        holder.execute("SELECT pg_advisory_unlock(%s, %s)", (HOST_LOCKS, lock_key(host)))
        return await request


def test_a_boot_waits_for_the_host_it_is_scheduled_to_and_boots_elsewhere_go_on(pg_database: str) -> None:
    """A boot holds the lock of the host the scheduler picks (and the write lock shared): while the test holds
    host-1's lock, a boot scheduled there waits, and a boot on host-2 completes meanwhile."""
    svc = open_service(pg_database, Notifier([]), shared=True)
    holder = psycopg.connect(pg_database, autocommit=True)
    try:
        _locked(svc, _seed)
        app = SharedWrites(create_compute_app(svc), service=svc, max_body_bytes=1 << 20)
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (HOST_LOCKS, lock_key("host-1")))

        async def elsewhere(client: httpx.AsyncClient) -> None:
            other = await client.post("/v1/instances", json={"name": "y", "flavor": "m1.tiny", "host": "host-2"})
            assert other.status_code == 202 and other.json()["host"] == "host-2", other.text
            assert other.json()["vm_state"] == "active"

        booted = asyncio.run(_waiting_for_host(app, "POST", "/v1/instances", holder, "host-1",
                                               {"name": "x", "flavor": "m1.tiny"}, elsewhere))
        assert booted.status_code == 202, booted.text
        assert (booted.json()["host"], booted.json()["vm_state"]) == ("host-1", "active")
        assert (app.boot_retries, app.boots_alone) == (0, 0)
    finally:
        holder.close()
        svc.close()
    _assert_rows_equal_claims(pg_database)


@pytest.mark.parametrize("api", ["novawatch", "nova"])
def test_a_boot_that_a_stale_memory_sent_to_the_wrong_host_runs_again_holding_the_right_one(
        pg_database: str, caplog: pytest.LogCaptureFixture, api: str) -> None:
    """Worker B has not seen that A filled host-1 half-way: its probe guesses host-1 (a tie in its memory), it
    takes host-1's lock and catches up, and the scheduler then picks host-2. The guard refuses that before
    anything changed (nothing emitted, written or logged), and the boot runs again holding host-2's lock: it
    waits for it while the test holds it, and lands there once released."""
    drv = MemoryDriver()
    a = open_service(pg_database, Notifier([]), shared=True)
    b = open_service(pg_database, Notifier([drv]), shared=True)
    holder = psycopg.connect(pg_database, autocommit=True)
    try:
        _locked(a, _seed)
        _locked(b, lambda s: None)  # B has seen the empty hosts, not what comes next
        for name in ("a1", "a2"):
            _locked(a, lambda s, n=name: s.boot(n, s.flavor_by_name("m1.small"), host="host-1"))
        assert b.would_pick(b.flavor_by_name("m1.tiny"), from_volume=False, host=None) == "host-1"
        app = SharedWrites(mount_nova(create_compute_app(b), b), service=b, max_body_bytes=1 << 20)
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (HOST_LOCKS, lock_key("host-2")))
        drv.clear()
        body: dict[str, Any] = {"name": "x", "flavor": "m1.tiny"}
        path = "/v1/instances"
        if api == "nova":
            body, path = {"server": {"name": "x", "flavorRef": "m1.tiny", "imageRef": DEFAULT_IMAGE}}, "/v2.1/servers"
        with caplog.at_level(logging.DEBUG, logger="novawatch"):
            booted = asyncio.run(_waiting_for_host(app, "POST", path, holder, "host-2", body))
        assert booted.status_code == 202, booted.text
        inst = b.instances[booted.json()["server"]["id"] if api == "nova" else booted.json()["uuid"]]
        assert (inst.host, inst.vm_state) == ("host-2", "active")
        assert (app.boot_retries, app.boots_alone) == (1, 0)
        # the refused run emitted nothing: one scheduling (versioned and legacy), one build
        assert drv.event_types.count("scheduler.select_destinations.start") == 2
        assert drv.event_types.count("instance.create.start") == 1
        assert drv.event_types.count("compute.instance.create.start") == 1
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        holder.close()
        a.close()
        b.close()
    with psycopg.connect(pg_database) as conn:
        counts = conn.execute("SELECT (SELECT count(*) FROM instances), (SELECT count(*) FROM instance_actions "
                              "WHERE action = 'create')").fetchone()
    assert counts == (3, 3)


def test_a_boot_rescheduled_to_a_host_it_does_not_hold_is_rolled_back_and_runs_alone(
        pg_database: str, bus: tuple[str, Any]) -> None:
    """The build fails on the host the boot holds, and Nova's reschedule would take an alternate host whose lock
    the request does not hold: the guard refuses it, everything the run did is rolled back (its notifications
    never leave the outbox, no fault or instance is kept), and the request runs again alone."""
    svc = open_service(pg_database, Notifier([]), publisher=open_publisher(bus[0]), shared=True)
    try:
        _locked(svc, _seed)
        app = SharedWrites(create_compute_app(svc), service=svc, max_body_bytes=1 << 20)
        svc.failures.fail_next["boot"] = 1  # the first build attempt fails

        async def boot() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as client:
                return await client.post("/v1/instances", json={"name": "x", "flavor": "m1.tiny"})

        booted = asyncio.run(boot())
        assert booted.status_code == 202, booted.text
        assert (booted.json()["host"], booted.json()["vm_state"]) == ("host-1", "active")
        assert (app.boot_retries, app.boots_alone) == (1, 1)

        def sent() -> list[str]:
            return [note["event_type"] for note in published(bus[1])]

        wait_for(lambda: "instance.create.end" in sent(), what="the boot's notifications to be published")
        assert sent().count("instance.create.start") == 1 and "instance.create.error" not in sent()
    finally:
        svc.close()
    with psycopg.connect(pg_database) as conn:
        counts = conn.execute("SELECT (SELECT count(*) FROM instances), (SELECT count(*) FROM instance_faults)"
                              ).fetchone()
    assert counts == (1, 0)


@pytest.mark.parametrize(("action", "held", "ends_on"), [
    ("confirm_resize", "host-1", "host-2"), ("revert_resize", "host-2", "host-1"),
    ("live_migration_complete", "host-1", "host-2"), ("live_migration_force_complete", "host-2", "host-2"),
    ("live_migration_abort", "host-2", "host-1")])
def test_ending_a_migration_locks_both_hosts_of_it(pg_database: str, action: str, held: str, ends_on: str) -> None:
    """Ending a migration moves or drops claims on both of its hosts: confirm frees the source's, revert the
    destination's and claims the source again; completing a live migration moves the claim to the
    destination, aborting drops the destination's. Either holds the locks of both hosts (and the write lock
    shared), so it waits while the test holds one of them; the node rows end equal to the claims."""
    a = open_service(pg_database, Notifier([]), shared=True)
    holder = psycopg.connect(pg_database, autocommit=True)
    try:
        _locked(a, _seed)
        uuid_ = _locked(a, lambda s: s.boot("vm", s.flavor_by_name("m1.tiny"), host="host-1")).uuid
        if action.endswith("_resize"):
            _locked(a, lambda s: s.resize(uuid_, s.flavor_by_name("m1.small"), host="host-2"))
        else:
            _locked(a, lambda s: s.live_migrate(uuid_, host="host-2"))
            assert a.migrations[uuid_].status == "running"
        app = SharedWrites(create_compute_app(a), service=a, max_body_bytes=1 << 20)
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (HOST_LOCKS, lock_key(held)))
        ended = asyncio.run(_waiting_for_host(app, "POST", f"/v1/instances/{uuid_}/{action}", holder, held))
        assert ended.status_code == 200, ended.text
        assert uuid_ not in a.migrations
        assert a.instances[uuid_].host == ends_on
    finally:
        holder.close()
        a.close()
    _assert_rows_equal_claims(pg_database)


@pytest.mark.parametrize(("action", "body", "held"), [
    ("live_migrate", {"host": "host-2"}, "host-2"),  # a named target
    ("resize", {"flavor": "m1.small"}, "host-2"),  # the scheduler's pick
    ("resize", {"flavor": "m1.small"}, "host-1"),  # the source
])
def test_a_move_waits_for_its_source_and_target_hosts(pg_database: str, action: str, body: dict[str, Any],
                                                      held: str) -> None:
    """A move holds its instance's lock, the source host's and the target's (named, or the scheduler's pick,
    learnt by the probe), then the write lock shared: it waits while the test holds either host's lock, and
    the node rows end equal to the claims (the destination's migration claim included)."""
    a = open_service(pg_database, Notifier([]), shared=True)
    holder = psycopg.connect(pg_database, autocommit=True)
    try:
        _locked(a, _seed)
        uuid_ = _locked(a, lambda s: s.boot("vm", s.flavor_by_name("m1.tiny"), host="host-1")).uuid
        app = SharedWrites(create_compute_app(a), service=a, max_body_bytes=1 << 20)
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (HOST_LOCKS, lock_key(held)))
        moved = asyncio.run(_waiting_for_host(app, "POST", f"/v1/instances/{uuid_}/{action}", holder, held, body))
        assert moved.status_code == 200, moved.text
        assert a.migrations[uuid_].dest_compute == "host-2"
        assert (app.boot_retries, app.boots_alone) == (0, 0)
    finally:
        holder.close()
        a.close()
    _assert_rows_equal_claims(pg_database)


def _two_on_host_1(svc: Any) -> tuple[str, str]:
    """The seeded cloud with two instances, "a" and "b", on host-1: their uuids."""
    _locked(svc, _seed)
    first, second = (_locked(svc, lambda s, n=n: s.boot(n, s.flavor_by_name("m1.tiny"), host="host-1")).uuid
                     for n in ("a", "b"))
    return first, second


def test_an_interface_attach_holds_its_instance_only(pg_database: str) -> None:
    """An interface attach writes its instance's info cache and takes an address from the shared sequence:
    while the test holds instance B's lock, an attach on A completes and one on B waits for B's lock (and
    for nothing else); released, it completes, and the two ports got different addresses."""
    a = open_service(pg_database, Notifier([]), shared=True)
    holder = psycopg.connect(pg_database, autocommit=True)
    try:
        first, second = _two_on_host_1(a)
        app = SharedWrites(mount_nova(create_compute_app(a), a), service=a, max_body_bytes=1 << 20)
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (INSTANCE_LOCKS, lock_key(second)))

        async def attach() -> tuple[httpx.Response, httpx.Response]:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as client:
                on_b = asyncio.create_task(client.post(f"/v2.1/servers/{second}/os-interface",
                                                       json={"interfaceAttachment": {}}))
                await _until_waiting(on_b, lambda: lock_waiters(holder, advisory_lock(INSTANCE_LOCKS, second)),
                                     "the attach on B (for B's lock)")
                on_a = await client.post(f"/v1/instances/{first}/attach_interface")
                assert not on_b.done() and lock_waiters(holder, advisory_lock(INSTANCE_LOCKS, second)) == 1
                holder.execute("SELECT pg_advisory_unlock(%s, %s)", (INSTANCE_LOCKS, lock_key(second)))
                return on_a, await on_b

        on_a, on_b = asyncio.run(attach())
        assert on_a.status_code == 200 and on_b.status_code == 200, (on_a.text, on_b.text)
    finally:
        holder.close()
        a.close()
    fresh = open_service(pg_database, Notifier([]))
    try:
        ports = [vif for inst in fresh.instances.values() for vif in inst.info_cache.network_info]
        addresses = [vif["network"]["subnets"][0]["ips"][0]["address"] for vif in ports]
        assert len(ports) == 4 and len(set(addresses)) == 4  # each boot's port and each attached one
    finally:
        fresh.close()


def test_an_attach_of_another_volume_goes_on_while_one_volume_is_locked(pg_database: str) -> None:
    """A volume attach holds its instance's lock and the volume's (then the write lock shared): while the test
    holds volume V's lock, an attach of V (Nova's API) waits for it, and an attach of volume W to another
    instance completes meanwhile."""
    a = open_service(pg_database, Notifier([]), shared=True)
    holder = psycopg.connect(pg_database, autocommit=True)
    try:
        first, second = _two_on_host_1(a)
        v, w = (_locked(a, lambda s: s.create_volume(1)).id for _ in range(2))
        app = SharedWrites(mount_nova(create_compute_app(a), a), service=a, max_body_bytes=1 << 20)
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (VOLUME_LOCKS, lock_key(v)))

        async def attach() -> tuple[httpx.Response, httpx.Response]:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as client:
                of_v = asyncio.create_task(client.post(f"/v2.1/servers/{first}/os-volume_attachments",
                                                       json={"volumeAttachment": {"volumeId": v}}))
                await _until_waiting(of_v, lambda: lock_waiters(holder, advisory_lock(VOLUME_LOCKS, v)),
                                     "the attach of V (for V's lock)")
                of_w = await client.post(f"/v1/instances/{second}/attach_volume", json={"volume_id": w})
                assert not of_v.done() and lock_waiters(holder, advisory_lock(VOLUME_LOCKS, v)) == 1
                holder.execute("SELECT pg_advisory_unlock(%s, %s)", (VOLUME_LOCKS, lock_key(v)))
                return await of_v, of_w

        of_v, of_w = asyncio.run(attach())
        assert of_v.status_code == 200 and of_w.status_code == 200, (of_v.text, of_w.text)
        assert (a.volumes.get(v).instance_uuid, a.volumes.get(w).instance_uuid) == (first, second)
    finally:
        holder.close()
        a.close()


def _serve(app: Any, method: str, path: str, body: Any, answers: list[httpx.Response]) -> threading.Thread:
    """Send one request to ``app`` from a thread with an event loop of its own (a worker of its own: its
    commit may block on a row lock without holding up the other's)."""

    async def send() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w",
                                     timeout=120) as client:
            answers.append(await client.request(method, path, json=body))

    thread = threading.Thread(target=lambda: asyncio.run(send()), daemon=True)
    thread.start()
    return thread


# FastAPI silences this pydantic warning with warnings.catch_warnings(), which is not thread-safe: two apps
# building their body fields at once in two threads (as here, never in a worker) can let it through.
@pytest.mark.filterwarnings("ignore::pydantic.warnings.UnsupportedFieldAttributeWarning")
@pytest.mark.parametrize("api", ["novawatch", "nova"])
def test_two_workers_attaching_one_volume_to_two_instances_give_one_attach(pg_database: str, api: str) -> None:
    """Workers A and B attach volume V, A to instance 1 and B to instance 2, at once. The test holds the row
    every commit updates (``compute_state``), so the first attach stops at its commit, having read V as
    available; the second must then wait for V's lock (without it, it too reads V available, and commits a
    second attachment over the first once the rows are released). Released: one attach succeeds, the other
    meets V in use (409), and V ends attached to one instance with one mapping."""
    a = open_service(pg_database, Notifier([]), shared=True)
    b = open_service(pg_database, Notifier([]), shared=True)
    holder = psycopg.connect(pg_database, autocommit=True)
    row = psycopg.connect(pg_database)  # a transaction holding compute_state's row
    threads: list[threading.Thread] = []
    try:
        first, second = _two_on_host_1(a)
        v = _locked(a, lambda s: s.create_volume(1)).id
        answers: list[httpx.Response] = []
        row.execute("SELECT 1 FROM compute_state WHERE id = 1 FOR UPDATE")
        for svc, inst in ((a, first), (b, second)):
            app = SharedWrites(mount_nova(create_compute_app(svc), svc), service=svc, max_body_bytes=1 << 20)
            if api == "nova":
                request = ("POST", f"/v2.1/servers/{inst}/os-volume_attachments", {"volumeAttachment": {"volumeId": v}})
            else:
                request = ("POST", f"/v1/instances/{inst}/attach_volume", {"volume_id": v})
            threads.append(_serve(app, *request, answers))

        def at_commit() -> int:
            """Attaches waiting for a row another transaction wrote: compute_state's (held here), or V's
            (written by the attach that waits for compute_state's)."""
            found = holder.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND wait_event IN ('transactionid', 'tuple')").fetchone()
            return int(found[0]) if found else 0

        # one attach waits at its commit; the other waits for V's lock (or, without that lock, at its commit,
        # for the row of V the first one wrote: once released, it writes its own attachment over it)
        deadline = time.monotonic() + 60
        while not ((at_commit() == 1 and lock_waiters(holder, advisory_lock(VOLUME_LOCKS, v)) == 1)
                   or at_commit() == 2):
            assert not answers, [r.text for r in answers]
            assert time.monotonic() < deadline, "the attaches never reached the commit and V's lock"
            time.sleep(0.05)
        row.rollback()
        for thread in threads:
            thread.join(120)
        assert sorted(r.status_code for r in answers) == [200, 409], [
            r.text for r in answers]
    finally:
        row.close()
        holder.close()
        a.close()
        b.close()
    with psycopg.connect(pg_database) as conn:
        vol = conn.execute("SELECT status, instance_uuid FROM volumes WHERE id = %s", (v,)).fetchone()
        bdms = conn.execute("SELECT instance_uuid FROM block_device_mappings WHERE volume_id = %s AND NOT deleted",
                            (v,)).fetchall()
    assert vol is not None and vol[0] == "in-use" and [r[0] for r in bdms] == [vol[1]]


@pytest.mark.parametrize(("offloaded", "body", "held"), [
    (True, {"host": "host-2"}, "host-2"),  # a named host
    (True, None, "host-1"),  # the scheduler's pick (the emptier host)
    (False, None, "host-1"),  # still on its host: a power-on there
])
def test_an_unshelve_waits_for_the_host_it_lands_on(pg_database: str, offloaded: bool, body: Any,
                                                    held: str) -> None:
    """An unshelve of an offloaded instance schedules like a move (probe, host guard): it holds the lock of
    the host it lands on and waits while the test holds it; a shelved instance still on its host holds that
    host's. The node rows end equal to the claims."""
    a = open_service(pg_database, Notifier([]), shared=True)
    holder = psycopg.connect(pg_database, autocommit=True)
    try:
        _locked(a, _seed)
        _locked(a, lambda s: s.boot("filler", s.flavor_by_name("m1.small"), host="host-2"))
        uuid_ = _locked(a, lambda s: s.boot("vm", s.flavor_by_name("m1.tiny"), host="host-1")).uuid
        _locked(a, lambda s: s.shelve(uuid_))
        if offloaded:
            _locked(a, lambda s: s.shelve_offload(uuid_))
            assert a.instances[uuid_].host is None
        app = SharedWrites(create_compute_app(a), service=a, max_body_bytes=1 << 20)
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (HOST_LOCKS, lock_key(held)))
        unshelved = asyncio.run(_waiting_for_host(app, "POST", f"/v1/instances/{uuid_}/unshelve", holder, held, body))
        assert unshelved.status_code == 200, unshelved.text
        assert (a.instances[uuid_].host, a.instances[uuid_].vm_state) == (held, "active")
        assert (app.boot_retries, app.boots_alone) == (0, 0)
    finally:
        holder.close()
        a.close()
    _assert_rows_equal_claims(pg_database)


def test_a_swap_waits_for_the_new_volumes_lock(pg_database: str) -> None:
    """A swap (Nova's ``PUT .../os-volume_attachments/{old}``) reserves the new volume: it holds the locks of
    the old and the new volume, so it waits while the test holds the new one's, and completes once released."""
    a = open_service(pg_database, Notifier([]), shared=True)
    holder = psycopg.connect(pg_database, autocommit=True)
    try:
        _locked(a, _seed)
        inst = _locked(a, lambda s: s.boot("vm", s.flavor_by_name("m1.tiny"), host="host-1")).uuid
        old, new = (_locked(a, lambda s: s.create_volume(1)).id for _ in range(2))
        _locked(a, lambda s: s.attach_volume(inst, old))
        app = SharedWrites(mount_nova(create_compute_app(a), a), service=a, max_body_bytes=1 << 20)
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (VOLUME_LOCKS, lock_key(new)))

        async def swap() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as client:
                swapping = asyncio.create_task(client.put(f"/v2.1/servers/{inst}/os-volume_attachments/{old}",
                                                          json={"volumeAttachment": {"volumeId": new}}))
                await _until_waiting(swapping, lambda: lock_waiters(holder, advisory_lock(VOLUME_LOCKS, new)),
                                     "the swap (for the new volume's lock)")
                holder.execute("SELECT pg_advisory_unlock(%s, %s)", (VOLUME_LOCKS, lock_key(new)))
                return await swapping

        assert asyncio.run(swap()).status_code == 202
        assert (a.volumes.get(old).status, a.volumes.get(new).instance_uuid) == ("available", inst)
    finally:
        holder.close()
        a.close()
