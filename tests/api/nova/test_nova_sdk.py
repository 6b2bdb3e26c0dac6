"""The Nova-compatible API driven by the real openstacksdk: actions, their notifications, and the model after."""

from __future__ import annotations

from typing import Any

import pytest
from novacloud import NovaCloud
from openstack import exceptions

from novawatch import snapshot

IMAGE = "155d900f-4e14-4e4c-a73d-069cbf4541e6"


def _flavor(conn: Any, name: str) -> Any:
    return next(f for f in conn.compute.flavors() if f.name == name)


def _boot(conn: Any, name: str, flavor: str = "m1.small", **extra: Any) -> Any:
    server = conn.compute.create_server(name=name, flavor_id=_flavor(conn, flavor).id, image_id=IMAGE,
                                        networks="auto", **extra)
    return conn.compute.wait_for_server(server, wait=10, interval=0.05)


def _versioned(events: list[str]) -> list[str]:
    return [e for e in events if not e.startswith("compute.") and e != "compute.exception"]


def test_boot_list_resize_live_migrate_swap_disable_delete(cloud: NovaCloud) -> None:
    """The issue's script, through openstacksdk; the notifications and the replayed model follow the truth."""
    conn = cloud.connection()

    server = _boot(conn, "web-1")
    assert server.status == "ACTIVE" and server.compute_host is not None
    assert "instance.create.end" in cloud.events()
    other = _boot(conn, "web-2", flavor="m1.medium")
    names = sorted(s.name for s in conn.compute.servers())
    assert names == ["web-1", "web-2"]
    assert sorted(s.name for s in conn.compute.servers(details=False)) == names

    # resize, then confirm
    conn.compute.resize_server(server, _flavor(conn, "m1.medium").id)
    resized = conn.compute.get_server(server.id)
    assert resized.status == "VERIFY_RESIZE" and resized.flavor.original_name == "m1.medium"
    conn.compute.confirm_server_resize(server)
    assert conn.compute.get_server(server.id).status == "ACTIVE"
    assert {"instance.resize_prep.end", "instance.resize_finish.end", "instance.resize_confirm.end"} <= set(
        cloud.events())

    # live-migrate wherever the scheduler finds room, then to a named host
    before = conn.compute.get_server(other.id).compute_host
    conn.compute.live_migrate_server(other, host=None, block_migration="auto")
    moved = conn.compute.get_server(other.id)
    assert moved.status == "ACTIVE" and moved.compute_host != before
    target = next(h for h in ("host-1", "host-2", "host-3") if h != moved.compute_host)
    conn.compute.live_migrate_server(other, host=target, block_migration="auto")
    assert conn.compute.get_server(other.id).compute_host == target
    assert "instance.live_migration_post_dest.end" in cloud.events()

    # swap a volume (the volumes live in the compute service's fake Cinder)
    old = cloud.service.create_volume(1).id
    new = cloud.service.create_volume(2).id
    cloud.service.commit()
    attached = conn.compute.create_volume_attachment(server, volume_id=old)
    assert attached.volume_id == old and attached.device == "/dev/vdb"
    conn.compute.update_volume_attachment(server, old, volume_id=new)
    assert [a.volume_id for a in conn.compute.volume_attachments(server)] == [new]
    assert {"instance.volume_swap.start", "instance.volume_swap.end"} <= set(cloud.events())
    assert [v["id"] for v in conn.compute.get_server(server.id).attached_volumes] == [new]

    # disable a service with a reason
    svc = next(s for s in conn.compute.services() if s.host == "host-3")
    conn.compute.disable_service(svc, disabled_reason="maintenance")
    svc = next(s for s in conn.compute.services() if s.host == "host-3")
    assert svc.status == "disabled" and svc.disabled_reason == "maintenance"
    assert "service.update" in cloud.events()
    hyp = next(h for h in conn.compute.hypervisors(details=True) if h.name == "host-3")
    assert hyp.status == "disabled" and hyp.service_details["disabled_reason"] == "maintenance"

    # delete
    conn.compute.delete_server(other)
    with pytest.raises(exceptions.NotFoundException):
        conn.compute.get_server(other.id)
    assert "instance.delete.end" in cloud.events()

    # Every notification decodes, and the model replaying them equals the database.
    truth = cloud.truth()
    assert snapshot.dumps(cloud.replayed()) == snapshot.dumps(truth)
    assert {i.uuid for i in truth.instances} == {server.id}


def test_every_server_action(cloud: NovaCloud) -> None:
    conn = cloud.connection()
    server = _boot(conn, "all-actions")
    sid = server.id

    def status() -> str:
        return str(conn.compute.get_server(sid).status)

    conn.compute.stop_server(server)
    assert status() == "SHUTOFF"
    conn.compute.start_server(server)
    assert status() == "ACTIVE"
    conn.compute.reboot_server(server, "HARD")
    assert status() == "ACTIVE"
    conn.compute.pause_server(server)
    assert status() == "PAUSED"
    conn.compute.unpause_server(server)
    conn.compute.suspend_server(server)
    assert status() == "SUSPENDED"
    conn.compute.resume_server(server)
    conn.compute.lock_server(server, locked_reason="audit")
    got = conn.compute.get_server(sid)
    assert got.is_locked and got.locked_reason == "audit"
    with pytest.raises(exceptions.ConflictException):
        conn.compute.stop_server(server)
    conn.compute.unlock_server(server)
    conn.compute.rescue_server(server)
    assert status() == "RESCUE"
    conn.compute.unrescue_server(server)
    # (the proxy's create_server_image would then look the image up in Glance, which novawatch lacks)
    image_id = conn.compute.get_server(sid).create_image(conn.compute, "snap")
    assert image_id
    conn.compute.rebuild_server(server, image=IMAGE)
    assert status() == "ACTIVE"
    # resize and revert
    conn.compute.resize_server(server, _flavor(conn, "m1.medium").id)
    conn.compute.revert_server_resize(server)
    assert status() == "ACTIVE" and conn.compute.get_server(sid).flavor.original_name == "m1.small"
    # shelve, offload, unshelve
    conn.compute.shelve_server(server)
    assert status() == "SHELVED"
    conn.compute.shelve_offload_server(server)
    got = conn.compute.get_server(sid)
    assert got.status == "SHELVED_OFFLOADED" and got.compute_host is None
    conn.compute.unshelve_server(server)
    got = conn.compute.get_server(sid)
    assert got.status == "ACTIVE" and got.compute_host is not None
    # evacuate off a host forced down
    source = got.compute_host
    svc = next(s for s in conn.compute.services() if s.host == source)
    conn.compute.update_service_forced_down(svc, forced=True)
    assert next(h for h in conn.compute.hypervisors(details=True) if h.name == source).state == "down"
    conn.compute.evacuate_server(server)
    assert conn.compute.get_server(sid).compute_host != source
    conn.compute.update_service_forced_down(svc, forced=False)
    # interfaces
    ports = list(conn.compute.server_interfaces(server))
    assert len(ports) == 1
    added = conn.compute.create_server_interface(server)
    assert len(list(conn.compute.server_interfaces(server))) == 2
    conn.compute.delete_server_interface(added.port_id, server=server)
    assert [p.port_id for p in conn.compute.server_interfaces(server)] == [ports[0].port_id]

    events = set(cloud.events())
    for expected in ("instance.power_off.end", "instance.power_on.end", "instance.reboot.end", "instance.pause.end",
                     "instance.unpause.end", "instance.suspend.end", "instance.resume.end", "instance.lock",
                     "instance.unlock", "instance.rescue.end", "instance.unrescue.end", "instance.snapshot.end",
                     "instance.rebuild.end", "instance.resize_revert.end", "instance.shelve.end",
                     "instance.shelve_offload.end", "instance.unshelve.end", "instance.evacuate",
                     "instance.interface_attach.end", "instance.interface_detach.end"):
        assert expected in events, expected
    assert snapshot.dumps(cloud.replayed()) == snapshot.dumps(cloud.truth())


def test_services_enable_force_down_and_delete(cloud: NovaCloud) -> None:
    conn = cloud.connection()
    svc = next(s for s in conn.compute.services() if s.host == "host-2")
    conn.compute.disable_service(svc, disabled_reason="bad disk")
    conn.compute.enable_service(svc)
    svc = next(s for s in conn.compute.services() if s.host == "host-2")
    assert svc.status == "enabled" and svc.disabled_reason is None
    conn.compute.update_service_forced_down(svc, forced=True)
    assert next(s for s in conn.compute.services() if s.host == "host-2").state == "down"
    conn.compute.delete_service(svc)
    assert "host-2" not in {s.host for s in conn.compute.services()}
    assert "host-2" not in {h.name for h in conn.compute.hypervisors()}
    assert {"service.delete", "compute_node.delete"} <= set(cloud.events())
    assert snapshot.dumps(cloud.replayed()) == snapshot.dumps(cloud.truth())


def test_hypervisors_carry_what_watchers_collector_reads(cloud: NovaCloud) -> None:
    conn = cloud.connection()
    server = _boot(conn, "on-host-1", availability_zone="nova:host-1")
    assert server.compute_host == "host-1"
    hyps = {h.name: h for h in conn.compute.hypervisors(details=True)}
    h1 = hyps["host-1"]
    # watcher.common.nova_helper.Hypervisor.from_openstacksdk
    assert (h1.vcpus, h1.vcpus_used, h1.memory_size, h1.memory_used, h1.local_disk_size, h1.local_disk_used) == (
        8, 1, 16384, 2048, 400, 20)
    assert h1.hypervisor_type == "fake" and h1.state == "up" and h1.status == "enabled"
    assert h1.service_details["host"] == "host-1"
    found = list(conn.compute.hypervisors(hypervisor_hostname_pattern="host-1", with_servers=True, details=True))
    assert [h.name for h in found] == ["host-1"]
    assert [s["uuid"] for s in found[0].servers] == [server.id]
    one = conn.compute.get_hypervisor(h1.id)
    assert one.name == "host-1" and one.running_vms == 1


def test_token_mode(token_cloud: NovaCloud) -> None:
    conn = token_cloud.connection()
    server = _boot(conn, "secure")
    assert server.status == "ACTIVE"
    from novawatch.sources.openstack import connect

    anonymous = connect(token_cloud.endpoint)
    with pytest.raises(exceptions.HttpException) as err:
        list(anonymous.compute.servers())
    assert err.value.status_code == 401
    wrong = connect(token_cloud.endpoint, token="wrong")
    with pytest.raises(exceptions.HttpException):
        wrong.compute.delete_server(server.id)
    assert conn.compute.get_server(server.id).status == "ACTIVE"


# --- the Compute API commands added for issue 14 -------------------------------------------------------------


def test_keypairs_generated_imported_and_deleted(cloud: NovaCloud) -> None:
    """A key pair the service generates (no public key given, microversion < 2.92), as Nova's KeypairAPI does."""
    from cryptography.hazmat.primitives import serialization

    conn = cloud.connection()
    made = conn.compute.create_keypair(name="gen")
    assert made.private_key.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert made.public_key.startswith("ssh-rsa ") and made.public_key.endswith(" Generated-by-Nova")
    # the private key is the public key's other half, and the fingerprint is Nova's (MD5 of the key blob)
    private = serialization.load_pem_private_key(made.private_key.encode(), password=None)
    assert private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) \
        .decode() == made.public_key.rsplit(" ", 1)[0]
    assert made.fingerprint.count(":") == 15
    assert [e for e in cloud.events() if e.startswith("keypair.")] == [
        "keypair.create.start", "keypair.create.start", "keypair.create.end", "keypair.create.end"]
    versioned = [s.notification for s in cloud.memory.sent if hasattr(s.notification.payload, "data")]
    assert versioned[0].payload.data.fingerprint is None and versioned[0].payload.data.public_key is None
    assert versioned[1].payload.data.fingerprint == made.fingerprint
    assert versioned[0].publisher_id == "nova-api:controller"
    legacy = [s.notification for s in cloud.memory.sent if not hasattr(s.notification.payload, "data")]
    assert legacy[0].publisher_id == "api.controller" and legacy[0].payload.key_name == "gen"

    with pytest.raises(exceptions.ConflictException):
        conn.compute.create_keypair(name="gen")
    with pytest.raises(exceptions.BadRequestException):
        conn.compute.create_keypair(name="bad", public_key="ssh-rsa not-a-key")
    assert sorted(k.name for k in conn.compute.keypairs()) == ["gen"]
    assert conn.compute.get_keypair("gen").user_id == "fake"
    conn.compute.delete_keypair("gen")
    with pytest.raises(exceptions.NotFoundException):
        conn.compute.get_keypair("gen")
    assert snapshot.dumps(cloud.replayed()) == snapshot.dumps(cloud.truth())


def test_server_groups_metadata_rename_and_console(cloud: NovaCloud) -> None:
    conn = cloud.connection()
    group = conn.compute.create_server_group(name="spread", policy="anti-affinity")
    assert group.policy == "anti-affinity" and group.member_ids == []
    assert [g.name for g in conn.compute.server_groups()] == ["spread"]
    with pytest.raises(exceptions.BadRequestException):
        conn.compute.create_server_group(name="x", policy="affinity", rules={"max_server_per_host": 2})
    conn.compute.delete_server_group(group)
    assert list(conn.compute.server_groups()) == []

    server = _boot(conn, "web-1")
    conn.compute.set_server_metadata(server, owner="ops", tier="web")
    conn.compute.delete_server_metadata(server, ["tier"])
    assert conn.compute.get_server_metadata(server).metadata == {"owner": "ops"}
    conn.compute.update_server(server, name="web-renamed")
    got = conn.compute.get_server(server.id)
    assert got.name == "web-renamed" and got.metadata == {"owner": "ops"}
    output = conn.compute.get_server_console_output(server, length=1)["output"]
    assert output == "web-1 login: "
    conn.compute.lock_server(server)
    with pytest.raises(exceptions.ConflictException):
        conn.compute.set_server_metadata(server, owner="dev")
    conn.compute.unlock_server(server)
    assert snapshot.dumps(cloud.replayed()) == snapshot.dumps(cloud.truth())


def test_actions_migrations_quotas_limits_zones(wall_cloud: NovaCloud) -> None:
    cloud = wall_cloud
    conn = cloud.connection()
    server = _boot(conn, "mover")
    conn.compute.migrate_server(server)
    conn.compute.confirm_server_resize(server)
    got = conn.compute.get_server(server.id)
    assert got.status == "ACTIVE"
    [mig] = list(conn.compute.migrations())
    assert mig.migration_type == "migration" and mig.status == "confirmed" and mig.dest_compute == got.compute_host
    actions = list(conn.compute.server_actions(server))
    assert [a.action for a in actions] == ["confirmResize", "migrate", "create"]
    create = conn.compute.get_server_action(actions[-1].request_id, server)
    assert [e.event for e in create.events] == ["conductor_schedule_and_build_instances"]

    quota = conn.compute.get_quota_set(cloud.service.instances[server.id].project_id)
    assert quota.id == cloud.service.instances[server.id].project_id
    assert quota.instances == -1 and quota.key_pairs == 100
    limits = conn.compute.get_limits()
    assert limits.absolute.instances_used == 1 and limits.absolute.keypairs == 100
    zones = list(conn.compute.availability_zones(details=True))
    assert [z.name for z in zones] == ["nova"] and set(zones[0].hosts) == {"host-1", "host-2", "host-3"}

    # usage over the last hour: the one server, still running
    import datetime

    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    [usage] = list(conn.compute.usages(start=now - datetime.timedelta(hours=1), end=now, detailed=True))
    assert usage.project_id == quota.id and usage.total_hours > 0
    one = conn.compute.get_usage(quota.id, start=now - datetime.timedelta(hours=1), end=now)
    assert [s["instance_id"] for s in one.server_usages] == [server.id]

    # flavor extra specs
    pinned = cloud.service.create_flavor("m1.pinned", vcpus=1, memory_mb=1024, root_gb=10,
                                         extra_specs={"hw:cpu_policy": "dedicated"})
    cloud.service.commit()
    flavor = conn.compute.get_flavor(pinned.flavorid)
    assert conn.compute.fetch_flavor_extra_specs(flavor).extra_specs == {"hw:cpu_policy": "dedicated"}
    assert conn.compute.get_flavor_extra_specs_property(flavor, "hw:cpu_policy") == "dedicated"


def test_volumes_through_the_block_storage_api(cloud: NovaCloud) -> None:
    base = cloud.server.url
    conn = cloud.connection(block_storage_endpoint_override=f"{base}/volume/v3")
    vol = conn.block_storage.create_volume(size=3, name="data")
    assert vol.status == "available" and vol.size == 3
    assert [v.name for v in conn.block_storage.volumes()] == ["data"]
    server = _boot(conn, "with-volume")
    conn.compute.create_volume_attachment(server, volume_id=vol.id)
    attached = conn.block_storage.get_volume(vol.id)
    assert attached.status == "in-use" and attached.attachments[0]["server_id"] == server.id
    with pytest.raises(exceptions.BadRequestException):
        conn.block_storage.delete_volume(vol)
    conn.compute.delete_volume_attachment(vol.id, server)
    conn.block_storage.delete_volume(vol)
    assert list(conn.block_storage.volumes()) == []
    with pytest.raises(exceptions.NotFoundException):
        conn.block_storage.get_volume(vol.id)
