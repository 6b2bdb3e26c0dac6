"""What the compute service keeps for the Compute API commands: key pairs, server groups, instance actions and
their events, cold migrations, renames and metadata, console output, usage windows and quotas (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from computehelpers import Cloud, boot, make_cloud

from novawatch.compute import keys, quotas
from novawatch.compute.errors import Conflict, InvalidState, NotFound, OverQuota
from novawatch.compute.invariants import violations
from novawatch.compute.service import open_service
from novawatch.notifications import Notifier

#: The public key of Nova's keypair notification samples, and the fingerprint Nova's samples give it.
PUBLIC = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aYd44bd8JttDCE/F/pNRr0lRE+Piq"
          "SPO8nDPHw0010JeMH9gYgnnFlyY3/OcJ02RhIPyyxYpv9FhY+2YiUkpwFOcLImyrxEsYXpD/0d3ac30bNH6Sw9JD9UZHYcpSxsIbECHw=="
          " Generated-by-Nova")
FINGERPRINT = "1e:2c:9b:56:79:4b:45:77:f9:ca:7a:98:2c:b0:d5:3c"


def _payloads(cloud: Cloud, event_type: str) -> list[object]:
    return [s.notification.payload for s in cloud.memory.sent if s.notification.event_type == event_type]


def test_key_pairs_as_novas_keypair_api(cloud: Cloud) -> None:
    svc = cloud.service
    row, private = svc.create_keypair("alice", "imported", public_key=PUBLIC, project_id="p1")
    assert private is None and row.fingerprint == FINGERPRINT
    # legacy around versioned, as Nova's KeypairAPI sends them
    assert cloud.events == ["keypair.import.start", "keypair.import.start", "keypair.import.end",
                            "keypair.import.end"]
    legacy_start, start, end, legacy_end = (s.notification for s in cloud.memory.sent)
    assert legacy_start.publisher_id == "api.controller" and legacy_start.payload.tenant_id == "p1"
    assert start.publisher_id == "nova-api:controller"
    assert start.payload.data.fingerprint is None and start.payload.data.public_key == PUBLIC
    assert end.payload.data.fingerprint == FINGERPRINT and legacy_end.payload.key_name == "imported"
    cloud.take()

    made, private = svc.create_keypair("alice", "made")
    assert private is not None and made.public_key.endswith(" Generated-by-Nova")
    assert keys.ssh_fingerprint(made.public_key) == made.fingerprint
    cert, bundle = svc.create_keypair("alice", "cert", "x509")
    assert bundle and cert.fingerprint == keys.x509_fingerprint(cert.public_key)
    with pytest.raises(Conflict):
        svc.create_keypair("alice", "made", public_key=PUBLIC)
    with pytest.raises(keys.InvalidKey):
        svc.create_keypair("alice", "broken", public_key="ssh-rsa AAAA")
    svc.commit()
    assert [k.name for k in svc.keypairs("alice")] == ["cert", "imported", "made"]
    assert svc.keypairs("bob") == []
    cloud.take()
    svc.delete_keypair("alice", "made")
    assert cloud.take() == ["keypair.delete.start", "keypair.delete.start", "keypair.delete.end",
                            "keypair.delete.end"]
    with pytest.raises(NotFound, match="Keypair made not found for user alice"):
        svc.delete_keypair("alice", "made")


def test_the_key_pair_quota_is_novas_default() -> None:
    cloud = make_cloud("sqlite://", fmt="versioned")
    for n in range(quotas.KEY_PAIRS):
        cloud.service.create_keypair("u", f"k{n}", public_key=PUBLIC)
    with pytest.raises(OverQuota):
        cloud.service.create_keypair("u", "one-more", public_key=PUBLIC)
    cloud.service.create_keypair("someone-else", "k0", public_key=PUBLIC)
    assert cloud.service.quota_usage("p", "u")["key_pairs"] == quotas.KEY_PAIRS
    cloud.service.close()


def test_server_groups(cloud: Cloud) -> None:
    svc = cloud.service
    group = svc.create_server_group("web", "anti-affinity", rules={"max_server_per_host": "2"}, user_id="u",
                                    project_id="p1")
    assert cloud.events == ["servergroup.create", "server_group.create"]
    [legacy] = _payloads(cloud, "servergroup.create")
    assert legacy.server_group_id == group.uuid and legacy.policy == "anti-affinity"
    [versioned] = _payloads(cloud, "server_group.create")
    data = versioned.data
    assert (data.uuid, data.policies, data.policy, data.rules, data.members, data.hosts) == (
        group.uuid, ["anti-affinity"], "anti-affinity", {"max_server_per_host": "2"}, [], None)
    with pytest.raises(Exception, match="Only anti-affinity policy supports rules"):
        svc.create_server_group("x", "affinity", rules={"max_server_per_host": "2"}, user_id="u", project_id="p1")
    for n in range(quotas.SERVER_GROUPS - 1):
        svc.create_server_group(f"g{n}", "affinity", user_id="u", project_id="p1")
    with pytest.raises(OverQuota):
        svc.create_server_group("over", "affinity", user_id="u", project_id="p1")
    svc.create_server_group("other", "affinity", user_id="u", project_id="p2")
    svc.commit()
    assert len(svc.server_groups("p1")) == quotas.SERVER_GROUPS and len(svc.server_groups()) == 11
    cloud.take()
    svc.delete_server_group(group.uuid)
    assert cloud.take() == ["servergroup.delete", "server_group.delete"]
    with pytest.raises(NotFound):
        svc.server_group(group.uuid)
    assert svc.project_ids() >= {"p1", "p2"}


def test_rename_metadata_and_console(cloud: Cloud) -> None:
    svc = cloud.service
    inst = boot(cloud)
    svc.rename(inst.uuid, "renamed", "a description")
    assert cloud.events == ["compute.instance.update", "instance.update"]
    [legacy] = _payloads(cloud, "compute.instance.update")
    [versioned] = _payloads(cloud, "instance.update")
    assert legacy.old_display_name == "vm" and versioned.data.old_display_name == "vm"
    assert versioned.data.display_name == "renamed" and versioned.data.display_description == "a description"
    cloud.take()
    svc.rename(inst.uuid, description="only the description")
    [versioned] = _payloads(cloud, "instance.update")
    assert versioned.data.old_display_name is None
    assert "old_display_name" not in cloud.memory.sent[0].body.decode()
    svc.rename(inst.uuid, clear_description=True)
    assert inst.display_description is None
    cloud.take()

    svc.update_metadata(inst.uuid, {"a": "1", "b": "2"})
    svc.delete_metadata(inst.uuid, "a")
    assert inst.metadata_ == {"b": "2"} and cloud.versioned() == ["instance.update", "instance.update"]
    with pytest.raises(NotFound):
        svc.delete_metadata(inst.uuid, "a")

    log = svc.console_output(inst.uuid)
    assert log.splitlines()[0].endswith(f"(renamed) on {inst.host}") and log.endswith("vm login: ")
    assert svc.console_output(inst.uuid, 1) == "vm login: " and svc.console_output(inst.uuid, 0) == ""
    svc.shelve(inst.uuid)
    svc.shelve_offload(inst.uuid)
    with pytest.raises(InvalidState, match="is not ready"):
        svc.console_output(inst.uuid)


def test_cold_migration(cloud: Cloud) -> None:
    svc = cloud.service
    inst = boot(cloud)
    source = inst.host
    svc.migrate(inst.uuid)
    assert inst.vm_state == "resized" and inst.host != source
    [mig] = svc.migration_records()
    assert (mig.migration_type, mig.status, mig.source_compute, mig.old_instance_type_id,
            mig.new_instance_type_id, mig.user_id) == ("migration", "finished", source, inst.instance_type_id,
                                                        inst.instance_type_id, inst.user_id)
    assert violations(svc) == []
    svc.commit()
    assert violations(svc) == []
    svc.confirm_resize(inst.uuid)
    assert mig.status == "confirmed" and violations(svc) == []
    other = boot(cloud)
    back = other.host
    svc.migrate(other.uuid, host=next(h for h in svc.services if h != back))
    svc.revert_resize(other.uuid)
    assert other.host == back and violations(svc) == []
    assert [a.action for a in svc.instance_actions(other.uuid)] == ["revertResize", "migrate", "create"]
    with pytest.raises(InvalidState):
        svc.resize(other.uuid, svc.flavor_of(other))


def test_instance_actions_and_their_events(db_url: str) -> None:
    cloud = make_cloud(db_url)
    svc = cloud.service
    inst = boot(cloud)
    svc.power_off(inst.uuid)
    svc.failures.per_action["power_on"] = 1.0
    svc.power_on(inst.uuid)
    svc.lock(inst.uuid)
    svc.commit()
    actions = svc.instance_actions(inst.uuid)
    assert [a.action for a in actions] == ["lock", "start", "stop", "create"]
    events = {a.action: svc.action_events(a.id) for a in actions}
    assert events["lock"] == []  # Nova records no event for a lock: the API does it
    [create] = events["create"]
    assert (create.event, create.host, create.result) == ("conductor_schedule_and_build_instances", "controller",
                                                          "Success")
    [stop] = events["stop"]
    assert (stop.event, stop.host, stop.result) == ("compute_stop_instance", inst.host, "Success")
    [start] = events["start"]
    assert start.result == "Error" and "InjectedFailure" in (start.traceback or "")
    assert actions[1].message == "Error" and actions[2].message is None
    assert all(a.request_id and a.request_id.startswith("req-") for a in actions)
    assert len({a.request_id for a in actions}) == 4
    # outside an API request the ids are derived: the same run gives the same ids
    again = make_cloud("sqlite://")
    twin = boot(again)
    again.service.power_off(twin.uuid)
    assert [a.request_id for a in again.service.instance_actions(twin.uuid)] == [
        a.request_id for a in actions[2:]]
    svc.unlock(inst.uuid)
    svc.delete(inst.uuid)
    svc.commit()
    assert svc.find_instance(inst.uuid) is None and svc.find_instance(inst.uuid, deleted=True) is not None
    assert [i.uuid for i in svc.deleted_instances()] == [inst.uuid]
    again.service.close()
    cloud.service.close()


def test_usage_windows_and_quota_usage(cloud: Cloud) -> None:
    svc = cloud.service
    early = boot(cloud)
    cloud.clock.advance(3600)
    late = boot(cloud, flavor="m1.medium")
    cloud.clock.advance(3600)
    svc.delete(early.uuid)
    svc.commit()
    now = svc.now()
    assert {i.uuid for i in svc.instances_in_window(now - timedelta(hours=3), now)} == {early.uuid, late.uuid}
    # the early one ended before this window; the late one is still running
    assert [i.uuid for i in svc.instances_in_window(now + timedelta(seconds=1), now + timedelta(hours=1))] == [
        late.uuid]
    assert svc.instances_in_window(now - timedelta(hours=3), now, "someone-else") == []
    usage = svc.quota_usage(late.project_id or "", "fake")
    assert (usage["instances"], usage["cores"], usage["ram"]) == (1, 2, 4096)


def test_the_records_survive_a_restart(db_url: str) -> None:
    cloud = make_cloud(db_url)
    svc = cloud.service
    svc.create_keypair("alice", "k", public_key=PUBLIC)
    group = svc.create_server_group("g", "affinity", user_id="alice", project_id="p")
    inst = boot(cloud)
    svc.migrate(inst.uuid)
    vol = svc.create_volume(2, name="data", project_id="p")
    svc.close(dispose=False)
    again = open_service(db_url, Notifier([]))
    assert again.keypair("alice", "k").fingerprint == FINGERPRINT
    assert again.server_group(group.uuid).policy == "affinity"
    assert again.migrations[inst.uuid].migration_type == "migration" and violations(again) == []
    assert again.volumes.get(vol.id).name == "data"
    assert [a.action for a in again.instance_actions(inst.uuid)] == ["migrate", "create"]
    again.close()
