"""Two compute services on one PostgreSQL database, as two workers of ``compute serve --workers 2`` are:
the write lock, the shared generation, outbox ids in commit order, one relay at a time (in process)."""

from __future__ import annotations

from typing import Any

import pytest
from computehelpers import act, published
from processkit import wait_for
from sqlalchemy import create_engine, text

from novawatch.bus import open_publisher
from novawatch.compute import shared
from novawatch.compute.errors import StorageError, StorageRefused
from novawatch.compute.host_guard import GUARD, HostGuard
from novawatch.compute.repository import make_engine, normalize_url
from novawatch.compute.service import ComputeService, open_service
from novawatch.compute.shared import SharedDatabase
from novawatch.notifications import Notifier


def worker(url: str, bus_url: str) -> ComputeService:
    return open_service(url, Notifier([]), publisher=open_publisher(bus_url), shared=True)


def seed(svc: ComputeService, *, vcpus: int, memory_mb: int) -> None:
    """A flavor m1.small and one host, host-1, of this size."""

    def create(s: ComputeService) -> None:
        s.create_flavor("m1.small", vcpus=1, memory_mb=512, root_gb=1)
        s.create_service("host-1", vcpus=vcpus, memory_mb=memory_mb, local_gb=100)

    act(svc, create)


def test_a_worker_sees_another_workers_commit_and_cannot_commit_without_the_lock(
        pg: str, bus: tuple[str, Any]) -> None:
    a, b = worker(pg, bus[0]), worker(pg, bus[0])
    try:
        assert a.shared is not None and b.shared is not None
        seed(a, vcpus=4, memory_mb=4096)
        inst = act(a, lambda s: s.boot("vm-1", s.flavor_by_name("m1.small")))
        assert b.shared.generation() == a.generation == 2
        with b.shared.locked():
            b.sync()  # b loaded before a's commits: it reloads
            assert b.generation == 2 and inst.uuid in b.instances
            assert b.nodes["host-1"].memory_mb_used == a.nodes["host-1"].memory_mb_used > 0  # the claim
            b.pause(inst.uuid)
            b.commit()
        # a change outside the lock is refused (rolled back), so no worker's memory can go stale unseen
        b.instances[inst.uuid].display_name = "renamed"
        with pytest.raises(StorageError, match="without the workers' write lock"):
            b.commit()
        with a.shared.locked():
            a.sync()
            assert a.instances[inst.uuid].vm_state == "paused" and a.instances[inst.uuid].display_name == "vm-1"
    finally:
        a.close()
        b.close()


def test_outbox_ids_follow_commit_order_across_workers_and_one_worker_relays(pg: str, bus: tuple[str, Any]) -> None:
    url, group = bus
    a, b = worker(pg, url), worker(pg, url)
    try:
        assert a.shared is not None and b.shared is not None and a.outbox is not None and b.outbox is not None
        flavors = []
        for n, svc in enumerate([a, b, a, b, b, a]):
            act(svc, lambda s, n=n: s.create_flavor(f"f-{n}", vcpus=1, memory_mb=64, root_gb=0))
            flavors.append(f"f-{n}")
        names = wait_for(lambda: [n["payload"]["nova_object.data"]["name"] for n in published(group)
                                  if n["event_type"] == "flavor.create"] if len(published(group)) >= 6 else None,
                         "the six flavor.create notifications")
        assert names == flavors  # the order of the commits, whichever worker made them
        assert sorted(o.status()["relay"] for o in (a.outbox, b.outbox)) == ["active", "standby"]
        # the relay deletes confirmed rows in one statement, up to its poll interval later
        wait_for(lambda: a.outbox.unsent == b.outbox.unsent == 0, "the confirmed rows to be deleted")  # type: ignore[union-attr]
        # the relaying worker stops: the other one takes over
        leader, other = (a, b) if a.outbox.relaying else (b, a)
        leader.close()
        act(other, lambda s: s.create_flavor("after", vcpus=1, memory_mb=64, root_gb=0))
        wait_for(lambda: any(n["payload"]["nova_object.data"]["name"] == "after" for n in published(group)
                             if n["event_type"] == "flavor.create"), "the other worker's relay to take over")
        assert other.outbox.status()["relay"] == "active"  # type: ignore[union-attr]
    finally:
        a.close()
        b.close()


def test_the_outbox_counter_starts_above_rows_a_single_process_left(pg: str) -> None:
    engine = create_engine(normalize_url(pg))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO notification_outbox (id, message_id, topic, priority, body) "
                          "VALUES (41, 'm', 'versioned_notifications', 'INFO', '\\x7b7d')"))
    SharedDatabase(engine).prepare()
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT outbox_next FROM compute_state")) == 42
    engine.dispose()


def test_several_workers_need_postgresql(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="several workers need PostgreSQL"):
        SharedDatabase(make_engine(f"sqlite:///{tmp_path / 'c.db'}"))


def test_workers_take_ids_no_other_worker_takes_and_list_actions_in_time_order(pg: str, bus: tuple[str, Any]) -> None:
    a, b = worker(pg, bus[0]), worker(pg, bus[0])
    try:
        assert a.shared is not None and b.shared is not None
        seed(a, vcpus=8, memory_mb=8192)
        uuids: list[str] = []
        for svc in (a, b, a, b):  # each worker takes its own block of action and event ids
            uuids.append(act(svc, lambda s: s.boot(f"vm-{len(uuids)}", s.flavor_by_name("m1.small")).uuid))
        for svc, name in ((b, "pause"), (a, "unpause"), (b, "power_off"), (a, "power_on")):
            act(svc, lambda s, name=name: getattr(s, name)(uuids[0]), uuids[0])  # as an action on one instance runs
        with a.shared.locked():
            a.sync()
            actions = a.instance_actions(uuids[0])
            assert [x.action for x in actions] == ["start", "stop", "unpause", "pause", "create"]  # newest first
            assert len({x.id for x in actions}) == len(actions)
            assert len({x.id for x in actions} & {x.id for u in uuids[1:] for x in a.instance_actions(u)}) == 0
            assert a.instances[uuids[0]].vm_state == "active"
    finally:
        a.close()
        b.close()


def test_boots_on_two_hosts_at_once_in_two_workers_take_different_addresses(pg: str) -> None:
    """Two workers caught up to the same commit boot at the same time, each holding its host's lock and the
    write lock shared (as ``compute serve --workers`` runs boots): neither sees the other's ports, yet their
    addresses differ (a sequence hands them out), and a single-process run's addresses are skipped."""
    a = open_service(pg, Notifier([]))
    a.create_flavor("m1.small", vcpus=1, memory_mb=512, root_gb=1)
    for host in ("host-1", "host-2"):
        a.create_service(host, vcpus=8, memory_mb=8192, local_gb=100)
    single = a.boot("single", a.flavor_by_name("m1.small"), ports=2)  # addresses 1 and 2, by its own counter
    a.commit()
    a.close()
    a, b = open_service(pg, Notifier([]), shared=True), open_service(pg, Notifier([]), shared=True)
    try:
        assert a.shared is not None and b.shared is not None
        hold_a = a.shared.acquire(None, hosts=("host-1",), exclusive=False)
        hold_b = b.shared.acquire(None, hosts=("host-2",), exclusive=False)
        try:
            a.sync()
            b.sync()
            on_1 = a.boot("on-1", a.flavor_by_name("m1.small"), host="host-1")
            on_2 = b.boot("on-2", b.flavor_by_name("m1.small"), host="host-2")
            a.commit()
            b.commit()
        finally:
            a.shared.release(hold_a)
            b.shared.release(hold_b)
        with a.shared.locked():
            a.sync()
            caches = [a.instances[u].info_cache.network_info for u in (single.uuid, on_1.uuid, on_2.uuid)]
    finally:
        a.close()
        b.close()
    v4 = [[vif["network"]["subnets"][0]["ips"][0]["address"] for vif in cache] for cache in caches]
    assert v4[0] == ["10.0.0.1", "10.0.0.2"]
    # (the sequence outlives a test's tables: it may start higher than 3)
    assert len({*v4[0], *v4[1], *v4[2]}) == 4


def test_a_lock_held_too_long_is_a_clear_error_and_a_dead_kept_connection_is_replaced(
        pg: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared, "LOCK_TIMEOUT_MS", 1000)
    engine = make_engine(pg)
    coordinator = SharedDatabase(engine)
    try:
        with engine.connect() as other:  # another worker in the middle of an action on the instance
            other.execute(text("SELECT pg_advisory_lock(:c, :k)"), {"c": shared.INSTANCE_LOCKS,
                                                                    "k": shared.lock_key("i-1")})
            with pytest.raises(StorageError, match="waited 1 s for the workers' lock on instance i-1"):
                coordinator.acquire("i-1", exclusive=False)
            with coordinator.locked("i-2", exclusive=False) as hold:  # another instance: no wait
                pid = hold.conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
            other.execute(text("SELECT pg_advisory_unlock_all()"))
        with engine.connect() as admin:  # the kept connection dies (a database restart, say)
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with coordinator.locked():
            assert coordinator.held
        assert not coordinator.held
    finally:
        coordinator.close()
        engine.dispose()


def test_a_commit_refused_in_the_shared_statement_is_rolled_back_and_says_so(pg: str, bus: tuple[str, Any]) -> None:
    """The generation, change log and outbox rows go in one statement on the driver's own cursor: a refusal
    there is the same 400-class StorageRefused as anywhere in the commit, and nothing of the action stays."""
    a = worker(pg, bus[0])
    engine = create_engine(normalize_url(pg))
    try:
        assert a.shared is not None
        seed(a, vcpus=4, memory_mb=4096)
        with engine.begin() as conn:  # the next outbox id is taken (what prepare() rules out at start)
            conn.execute(text("INSERT INTO notification_outbox (id, message_id, topic, priority, body) "
                              "SELECT outbox_next, 'm', 'versioned_notifications', 'INFO', '\\x7b7d' "
                              "FROM compute_state"))
            generation = conn.scalar(text("SELECT generation FROM compute_state"))
        with pytest.raises(StorageRefused, match="refused the change"):
            act(a, lambda s: s.create_flavor("refused", vcpus=1, memory_mb=64, root_gb=0))
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT generation FROM compute_state")) == generation
            assert conn.scalar(text("SELECT count(*) FROM flavors WHERE name = 'refused'")) == 0
        assert all(f.name != "refused" for f in a.flavors.values())
    finally:
        a.close()
        engine.dispose()


def test_a_probe_that_reaches_its_commit_is_refused_even_while_another_request_holds_a_lock(
        pg: str, bus: tuple[str, Any]) -> None:
    """A boot's or move's probe runs without locks; an action that never asked the guard must not commit
    through the lock another request of the same worker holds."""
    a = worker(pg, bus[0])
    engine = create_engine(normalize_url(pg))
    try:
        assert a.shared is not None
        seed(a, vcpus=4, memory_mb=4096)
        inst = act(a, lambda s: s.boot("vm-1", s.flavor_by_name("m1.small")))
        with engine.connect() as conn:
            generation = conn.scalar(text("SELECT generation FROM compute_state"))
        with a.shared.locked(inst.uuid, exclusive=False):  # another request's hold: the process holds a lock
            token = GUARD.set(HostGuard(probe=True))
            try:
                a.pause(inst.uuid)  # asks no guard
                with pytest.raises(StorageError, match="probe"):
                    a.commit()
            finally:
                GUARD.reset(token)
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT generation FROM compute_state")) == generation
            assert conn.scalar(text("SELECT vm_state FROM instances WHERE uuid = :u"), {"u": inst.uuid}) == "active"
        assert a.instances[inst.uuid].vm_state == "active"
    finally:
        a.close()
        engine.dispose()
