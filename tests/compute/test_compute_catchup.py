"""A worker's incremental catch-up with another worker's commits (``compute_changes``), on a real PostgreSQL.

After a mixed burst by one worker (boots, deletes, moves, resizes, volumes, services, key pairs, groups),
the other worker refreshes only the changed rows: its memory must then equal a fresh full load of the
database (indexes, rows, claims, node usage, the next address). It falls back to a full reload when
the change log no longer reaches back to its generation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from computehelpers import act
from sqlalchemy import inspect, text

from novawatch.compute import db, shared
from novawatch.compute.errors import InvalidState
from novawatch.compute.service import ComputeService, open_service
from novawatch.notifications import Notifier


@pytest.fixture
def workers(pg: str) -> Iterator[tuple[ComputeService, ComputeService]]:
    a = open_service(pg, Notifier([]), shared=True)
    b = open_service(pg, Notifier([]), shared=True)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def columns(row: db.Base) -> dict[str, Any]:
    return {attr.key: getattr(row, attr.key) for attr in inspect(row).mapper.column_attrs}


def memory(svc: ComputeService) -> dict[str, Any]:
    """Everything a worker derives from the database and keeps between requests."""
    return {
        "services": {host: columns(s) for host, s in svc.services.items()},
        "nodes": {host: columns(n) for host, n in svc.nodes.items()},
        "flavors": {fid: columns(f) for fid, f in svc.flavors.items()},
        "instance order": list(svc.instances),
        "instances": {uuid: columns(i) for uuid, i in svc.instances.items()},
        "network info": {uuid: i.info_cache.network_info for uuid, i in svc.instances.items()},
        "bdms": {uuid: [columns(b) for b in bdms] for uuid, bdms in svc.bdms.items() if bdms},
        "migrations": {uuid: columns(m) for uuid, m in svc.migrations.items()},
        "volumes": {vid: columns(v) for vid, v in svc.volumes.by_id.items()},
        "claims": svc.tracker.claims,
        "tracked nodes": sorted(svc.tracker.nodes),
        "free": svc.tracker.free,
        "next address": svc.network.next_address,
        "key pairs": [columns(k) for k in svc.keypairs("alice")],
        "groups": [columns(g) for g in svc.server_groups()],
    }


def fresh_memory(url: str) -> dict[str, Any]:
    svc = open_service(url, Notifier([]))
    try:
        return memory(svc)
    finally:
        svc.close()


def test_a_worker_catches_up_with_a_mixed_burst_and_equals_a_fresh_load(
        pg: str, workers: tuple[ComputeService, ComputeService]) -> None:
    a, b = workers

    def seed(svc: ComputeService) -> None:
        svc.create_flavor("m1.tiny", vcpus=1, memory_mb=512, root_gb=1)
        svc.create_flavor("m1.small", vcpus=2, memory_mb=2048, root_gb=20)
        for n in range(3):
            svc.create_service(f"host-{n}", vcpus=16, memory_mb=32768, local_gb=500)

    act(a, seed)
    tiny, small = a.flavor_by_name("m1.tiny"), a.flavor_by_name("m1.small")
    uuids = [act(a, lambda s, n=n: s.boot(f"vm-{n}", tiny).uuid) for n in range(8)]
    act(b, lambda s: None)  # b's first sync is a full load; from here on it catches up
    assert (b.reloads, b.catch_ups) == (1, 0)

    # The burst, by a alone: every kind of row the workers keep in memory changes, appears or goes.
    act(a, lambda s: s.power_off(uuids[0]))
    act(a, lambda s: s.pause(uuids[1]))
    act(a, lambda s: s.update_metadata(uuids[2], {"k": "v"}))
    act(a, lambda s: s.delete(uuids[3]))
    act(a, lambda s: s.resize(uuids[4], small))  # finished, not confirmed: claims on two nodes
    act(a, lambda s: s.live_migrate(uuids[5]))  # running: a migration claim on the destination
    act(a, lambda s: s.migrate(uuids[6]))
    act(a, lambda s: s.confirm_resize(uuids[6]))
    vol = act(a, lambda s: s.create_volume(5, name="data"))
    act(a, lambda s: s.attach_volume(uuids[7], vol.id))
    spare = act(a, lambda s: s.create_volume(1))
    act(a, lambda s: s.delete_volume(spare.id))
    act(a, lambda s: s.attach_interface(uuids[2]))
    act(a, lambda s: s.create_service("host-extra", vcpus=4, memory_mb=4096, local_gb=40))
    act(a, lambda s: s.create_service("host-gone", vcpus=4, memory_mb=4096, local_gb=40))
    act(a, lambda s: s.delete_service("host-gone"))
    act(a, lambda s: s.disable_service("host-0", "maintenance"))
    act(a, lambda s: s.create_flavor("m1.big", vcpus=4, memory_mb=8192, root_gb=40))
    act(a, lambda s: s.create_keypair("alice", "key-1", project_id="p"))
    act(a, lambda s: s.create_server_group("g", "anti-affinity", user_id="alice", project_id="p"))
    late = act(a, lambda s: s.boot("late", tiny).uuid)

    act(b, lambda s: None)
    assert (b.reloads, b.catch_ups) == (1, 1)  # incremental
    assert b.generation == a.generation
    assert memory(b) == fresh_memory(pg)
    assert late in b.instances and uuids[3] not in b.instances

    # b's own writes after the catch-up use ids and addresses a has not used; then a catches up from b.
    act(b, lambda s: s.boot("from-b", small))
    act(b, lambda s: s.live_migration_complete(uuids[5]))
    act(b, lambda s: s.revert_resize(uuids[4]))
    act(b, lambda s: s.detach_volume(uuids[7], vol.id))
    act(b, lambda s: s.delete_keypair("alice", "key-1"))
    act(a, lambda s: None)
    assert a.catch_ups >= 1
    assert memory(a) == memory(b) == fresh_memory(pg)


def test_a_worker_behind_a_pruned_change_log_reloads_in_full(
        pg: str, workers: tuple[ComputeService, ComputeService], monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = workers
    act(a, lambda s: s.create_flavor("m1.tiny", vcpus=1, memory_mb=512, root_gb=1))
    act(a, lambda s: s.create_service("host-0"))
    act(b, lambda s: None)
    reloads, catch_ups = b.reloads, b.catch_ups
    monkeypatch.setattr(shared, "KEEP", 2)  # the log keeps two generations, pruned at every commit
    monkeypatch.setattr(shared, "PRUNE_EVERY", 1)
    uuids = [act(a, lambda s, n=n: s.boot(f"vm-{n}", s.flavor_by_name("m1.tiny")).uuid) for n in range(4)]
    with a.repo.engine.connect() as conn:
        kept = conn.execute(text("SELECT DISTINCT generation FROM compute_changes ORDER BY 1")).scalars().all()
        oldest = conn.scalar(text("SELECT changes_from FROM compute_state"))
    assert kept == [a.generation - 2, a.generation - 1, a.generation] and oldest == a.generation - 2
    act(b, lambda s: None)  # four generations behind: the log does not reach back
    assert (b.reloads, b.catch_ups) == (reloads + 1, catch_ups) and set(uuids) <= set(b.instances)
    assert memory(b) == fresh_memory(pg)
    act(a, lambda s: s.pause(uuids[0]))
    act(b, lambda s: None)  # one behind: caught up from the log
    assert (b.reloads, b.catch_ups) == (reloads + 1, catch_ups + 1) and b.instances[uuids[0]].vm_state == "paused"


def test_each_commit_logs_the_rows_it_wrote(pg: str, workers: tuple[ComputeService, ComputeService]) -> None:
    a, _ = workers
    act(a, lambda s: s.create_flavor("m1.tiny", vcpus=1, memory_mb=512, root_gb=1))
    act(a, lambda s: s.create_service("host-0"))
    uuid = act(a, lambda s: s.boot("vm", s.flavor_by_name("m1.tiny")).uuid)
    act(a, lambda s: s.pause(uuid))
    with a.repo.engine.connect() as conn:
        logged = conn.execute(text("SELECT generation, tbl, instance_uuid FROM compute_changes "
                                   "WHERE generation = :g"), {"g": a.generation}).all()
    tables = {row.tbl for row in logged}
    assert "instances" in tables and "instance_actions" in tables
    assert "notification_outbox" not in tables and "compute_state" not in tables
    assert {row.instance_uuid for row in logged if row.tbl == "instances"} == {uuid}


def test_a_refusal_after_a_catch_up_keeps_the_state(pg: str, workers: tuple[ComputeService, ComputeService]) -> None:
    a, b = workers
    act(a, lambda s: s.create_flavor("m1.tiny", vcpus=1, memory_mb=512, root_gb=1))
    act(a, lambda s: s.create_service("host-0"))
    uuid = act(a, lambda s: s.boot("vm", s.flavor_by_name("m1.tiny")).uuid)
    act(b, lambda s: None)
    kept = b.instances[uuid]
    act(a, lambda s: s.pause(uuid))
    with pytest.raises(InvalidState, match="while it is in vm_state paused"):
        act(b, lambda s: s.pause(uuid))  # caught up (the node's usage re-derived), then refused: nothing to undo
    assert b.instances[uuid] is kept and kept.vm_state == "paused"  # no rollback, so no full reload
