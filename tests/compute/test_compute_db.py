"""The compute database: migrations on startup, state that survives a restart, the Source adapter."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from computehelpers import boot, make_cloud
from sqlalchemy import inspect, text

from novawatch import snapshot
from novawatch.compute import db
from novawatch.compute.clock import Ids, SimClock
from novawatch.compute.invariants import violations
from novawatch.compute.repository import VERSION_TABLE, make_engine, reset, upgrade
from novawatch.compute.service import open_service
from novawatch.compute.source import ComputeSource
from novawatch.notifications import Notifier
from novawatch.notifications.drivers import MemoryDriver

TABLES = {
    "services", "compute_nodes", "flavors", "instances", "volumes", "block_device_mappings",
    "instance_info_caches", "instance_faults", "instance_actions", "migrations", "notification_outbox",
    "instance_actions_events", "key_pairs", "instance_groups", "compute_state", "compute_changes",
    "novawatch_compute_version",
}


def test_upgrade_head_creates_the_schema(db_url: str) -> None:
    engine = make_engine(db_url)
    reset(engine)
    upgrade(engine)
    upgrade(engine)  # idempotent
    assert set(inspect(engine).get_table_names()) >= TABLES
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM novawatch_compute_version")).scalar() == "0006"
        assert "created_at" in {c["name"] for c in inspect(conn).get_columns("flavors")}
    engine.dispose()


def test_the_migrations_build_the_models_schema(db_url: str) -> None:
    """What Alembic's migrations create is what the ORM models declare: nothing missing, nothing extra."""
    engine = make_engine(db_url)
    reset(engine)
    upgrade(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), db.Base.metadata)
    engine.dispose()
    # Alembic's own version table is the only table the models do not declare.
    assert [d for d in differences if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)] == []


def test_state_survives_a_restart(db_url: str) -> None:
    cloud = make_cloud(db_url)
    svc = cloud.service
    a, b, c = boot(cloud), boot(cloud), boot(cloud)
    svc.resize(a.uuid, svc.flavor_by_name("m1.medium"))
    svc.live_migrate(b.uuid)
    svc.attach_volume(c.uuid, svc.create_volume(5).id)
    svc.lock(c.uuid, "keep")
    before = {n.host: (n.vcpus_used, n.memory_mb_used, n.local_gb_used, n.running_vms) for n in svc.nodes.values()}
    truth = ComputeSource(svc.repo.engine).snapshot() if svc.commit() is None else None
    svc.close()

    memory = MemoryDriver()
    clock = SimClock()
    again = open_service(db_url, Notifier([memory], clock=clock.tick), clock=clock, ids=Ids(99))
    try:
        after = {n.host: (n.vcpus_used, n.memory_mb_used, n.local_gb_used, n.running_vms)
                 for n in again.nodes.values()}
        assert after == before
        assert violations(again) == []
        assert memory.event_types == []  # a restart announces nothing: nothing changed
        assert again.instance(c.uuid).locked_reason == "keep"
        assert again.migrations[b.uuid].status == "running"
        again.live_migration_complete(b.uuid)
        again.confirm_resize(a.uuid)
        assert violations(again) == []
        assert truth is not None and len(truth.instances) == 3
    finally:
        again.close()


def test_source_lists_what_the_model_needs(db_url: str) -> None:
    cloud = make_cloud(db_url)
    svc = cloud.service
    try:
        eph = svc.create_flavor("m1.eph", vcpus=2, memory_mb=4096, root_gb=20, ephemeral_gb=10, swap=1536)
        a = boot(cloud, flavor="m1.eph")
        bfv = boot(cloud, volume=30)
        gone = boot(cloud)
        off = boot(cloud)
        svc.delete(gone.uuid)
        svc.shelve(off.uuid)
        svc.shelve_offload(off.uuid)
        svc.force_down_service("host-3")
        svc.disable_service("host-2", "maint")
        svc.commit()
        source = ComputeSource(svc.repo.engine)
        nodes = {n.host: n for n in source.list_nodes()}
        assert nodes["host-3"].state == "down" and nodes["host-2"].status == "disabled"
        assert nodes["host-2"].disabled_reason == "maint"
        insts = {i.uuid: i for i in source.list_instances()}
        assert gone.uuid not in insts
        assert insts[a.uuid].disk_gb == 20 + 10 + 2 and insts[a.uuid].vcpus == eph.vcpus
        assert insts[bfv.uuid].disk_gb == 0 and len(insts[bfv.uuid].volumes) == 1
        assert insts[off.uuid].host is None and insts[off.uuid].state == "shelved_offloaded"
        assert source.get_instance(a.uuid) == insts[a.uuid]
        assert source.get_instance(gone.uuid) is None
        node = next(iter(nodes.values()))
        assert source.get_node(node.uuid) == node
        snap = source.snapshot()
        assert snapshot.loads(snapshot.dumps(snap)) == snap
        for n in snap.nodes:
            live = svc.nodes[n.host]
            # Derived usage equals the tracker's: no migration is in progress here.
            assert (n.vcpus_used, n.memory_mb_used, n.local_gb_used) == (
                live.vcpus_used, live.memory_mb_used, live.local_gb_used)
    finally:
        svc.close()


def test_cli_upgrades_and_snapshots_a_database(db_url: str, tmp_path: Path) -> None:
    from novawatch.cli import main

    engine = make_engine(db_url)
    reset(engine)
    engine.dispose()
    assert main(["compute", "db-upgrade", "--db", db_url]) == 0
    cloud = make_cloud(db_url)
    boot(cloud)
    cloud.service.close()
    out = tmp_path / "truth.json"
    assert main(["compute", "snapshot", "--db", db_url, "--out", str(out)]) == 0
    snap = snapshot.read(out)
    assert len(snap.nodes) == 3 and len(snap.instances) == 1
    assert sum(n.vcpus_used for n in snap.nodes) == 1
