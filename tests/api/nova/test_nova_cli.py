"""The real ``openstack`` CLI (python-openstackclient, a test dependency) against the Nova API, command by command.

Each command is run as a user runs it, in a subprocess, with the ``clouds.yaml`` of docs/openstack.md;
what it prints (``-f json``) and the notifications it made the compute service send are checked, and at
the end the data model fed those notifications equals the compute service's truth.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from novacloud import NovaCloud, clouds_yaml

from novawatch import snapshot


class Cli:
    """``openstack --os-cloud novawatch ...`` against one cloud."""

    def __init__(self, cloud: NovaCloud, tmp: Path) -> None:
        self.cloud = cloud
        config = clouds_yaml(tmp / "clouds.yaml", cloud.server.url)
        self.env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(config), "OS_CLOUD": "novawatch",
                    "PYTHONWARNINGS": "ignore"}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "openstackclient.shell", *args], env=self.env,
                              capture_output=True, text=True, timeout=120)

    def __call__(self, *args: str, json_out: bool = True) -> Any:
        """Run a command that must succeed; its ``-f json`` output parsed (None when it prints nothing)."""
        done = self.run(*args, *(("-f", "json") if json_out else ()))
        assert done.returncode == 0, f"openstack {' '.join(args)} failed:\n{done.stderr[-3000:]}"
        if not json_out:
            return done.stdout
        return json.loads(done.stdout) if done.stdout.strip() else None

    def events(self, since: int = 0) -> list[str]:
        return self.cloud.events()[since:]


@pytest.fixture
def cli(wall_cloud: NovaCloud, tmp_path: Path) -> Cli:
    return Cli(wall_cloud, tmp_path)


def _sent(cloud: NovaCloud, event_type: str) -> list[Any]:
    return [s.notification for s in cloud.memory.sent if s.notification.event_type == event_type]


def _versioned(cloud: NovaCloud, event_type: str) -> list[Any]:
    return [n.payload.data for n in _sent(cloud, event_type) if hasattr(n.payload, "data")]


def test_servers_flavors_metadata_and_rename(cli: Cli) -> None:
    cloud = cli.cloud
    cloud.service.create_flavor("m1.pinned", vcpus=2, memory_mb=4096, root_gb=20,
                                extra_specs={"hw:cpu_policy": "dedicated"})
    cloud.service.commit()
    # flavor show reads os-extra_specs
    assert cli("flavor", "show", "m1.small")["ram"] == 2048
    assert cli("flavor", "show", "m1.pinned")["properties"] == {"hw:cpu_policy": "dedicated"}

    made = cli("server", "create", "--flavor", "m1.small", "--image", "cirros", "vm-1")
    assert made["status"] == "ACTIVE" and made["image"].startswith("cirros")

    # server set --name: one instance.update naming the old name, versioned and legacy
    before = len(cloud.events())
    cli("server", "set", "--name", "web-1", "vm-1", json_out=False)
    assert cli("server", "show", "web-1")["name"] == "web-1"
    assert cli.events(before) == ["compute.instance.update", "instance.update"]
    update = _versioned(cloud, "instance.update")[-1]
    assert update.old_display_name == "vm-1" and update.display_name == "web-1"
    assert _sent(cloud, "compute.instance.update")[-1].payload.old_display_name == "vm-1"

    # server set/unset --property: metadata, one instance.update per change
    before = len(cloud.events())
    cli("server", "set", "--property", "owner=ops", "--property", "tier=web", "web-1", json_out=False)
    cli("server", "unset", "--property", "tier", "web-1", json_out=False)
    assert cli("server", "show", "web-1")["properties"] == {"owner": "ops"}
    assert cli.events(before).count("instance.update") == 2
    assert _versioned(cloud, "instance.update")[-1].metadata == {"owner": "ops"}

    # console log show
    log = cli("console", "log", "show", "web-1", json_out=False)
    assert "instance-00000001 (web-1) on host-" in log and log.rstrip().endswith("login:")
    assert cli("console", "log", "show", "--lines", "1", "web-1", json_out=False).strip() == "vm-1 login:"


def test_server_events_migrations_and_cold_migrate(cli: Cli) -> None:
    cloud = cli.cloud
    server = cli("server", "create", "--flavor", "m1.small", "--image", "cirros", "vm-1")
    source = server["OS-EXT-SRV-ATTR:host"]
    cli("server", "stop", "vm-1", json_out=False)

    # server event list: newest first, each with the request id the API answered with
    actions = cli("server", "event", "list", "vm-1")
    assert [a["Action"] for a in actions] == ["stop", "create"]
    stop = cli("server", "event", "show", "vm-1", actions[0]["Request ID"])
    assert [e["event"] for e in stop["events"]] == ["compute_stop_instance"]
    assert stop["events"][0]["result"] == "Success" and stop["events"][0]["host"] == source

    # server migrate (cold): the resize notifications, a migration record, confirmed onto another host
    before = len(cloud.events())
    cli("server", "migrate", "vm-1", json_out=False)
    sent = cli.events(before)
    assert [e for e in sent if e.startswith("instance.resize")] == [
        "instance.resize_prep.start", "instance.resize_prep.end", "instance.resize.start", "instance.resize.end",
        "instance.resize_finish.start", "instance.resize_finish.end"]
    assert cli("server", "show", "vm-1")["status"] == "VERIFY_RESIZE"
    [migration] = cli("server", "migration", "list")
    assert migration["Type"] == "migration" and migration["Source Compute"] == source
    assert migration["Status"] == "finished" and migration["Dest Compute"] != source
    cli("server", "migrate", "confirm", "vm-1", json_out=False)
    moved = cli("server", "show", "vm-1")
    assert moved["status"] == "SHUTOFF" and moved["OS-EXT-SRV-ATTR:host"] == migration["Dest Compute"]
    assert cli("server", "migration", "list", "--status", "confirmed")[0]["Id"] == migration["Id"]
    assert [a["Action"] for a in cli("server", "event", "list", "vm-1")][:2] == ["confirmResize", "migrate"]


def test_keypairs_and_server_groups(cli: Cli, tmp_path: Path) -> None:
    cloud = cli.cloud
    # keypair create: the CLI makes the key and imports its public half
    before = len(cloud.events())
    private = cli("keypair", "create", "k1", json_out=False)
    assert "PRIVATE KEY" in private
    assert cli.events(before) == ["keypair.import.start", "keypair.import.start", "keypair.import.end",
                                  "keypair.import.end"]
    public = tmp_path / "id.pub"
    public.write_text(
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aYd44bd8JttDCE/F/pNRr0lRE+Piq"
        "SPO8nDPHw0010JeMH9gYgnnFlyY3/OcJ02RhIPyyxYpv9FhY+2YiUkpwFOcLImyrxEsYXpD/0d3ac30bNH6Sw9JD9UZHYcpSxsIbECHw=="
        " Generated-by-Nova\n")
    cli("keypair", "create", "--public-key", str(public), "k2")
    listed = {k["Name"]: k for k in cli("keypair", "list")}
    # the fingerprint of Nova's own notification sample's key, as Nova computes it
    assert listed["k2"]["Fingerprint"] == "1e:2c:9b:56:79:4b:45:77:f9:ca:7a:98:2c:b0:d5:3c"
    assert set(listed) == {"k1", "k2"} and listed["k1"]["Type"] == "ssh"
    assert cli("keypair", "show", "k2")["user_id"] == "fake"
    before = len(cloud.events())
    cli("keypair", "delete", "k1", json_out=False)
    assert cli.events(before) == ["keypair.delete.start", "keypair.delete.start", "keypair.delete.end",
                                  "keypair.delete.end"]
    assert [k["Name"] for k in cli("keypair", "list")] == ["k2"]
    refused = cli.run("keypair", "delete", "k1")
    assert refused.returncode != 0 and "k1" in refused.stderr

    # server group create/list: servergroup.create (legacy), then server_group.create
    before = len(cloud.events())
    group = cli("server", "group", "create", "--policy", "anti-affinity", "--rule", "max_server_per_host=2", "g1")
    assert group["policy"] == "anti-affinity" and group["rules"] == {"max_server_per_host": 2}
    assert cli.events(before) == ["servergroup.create", "server_group.create"]
    assert _versioned(cloud, "server_group.create")[0].uuid == group["id"]
    cli("server", "group", "create", "--policy", "soft-affinity", "g2")
    assert {g["Name"]: g["Policy"] for g in cli("server", "group", "list")} == {
        "g1": "anti-affinity", "g2": "soft-affinity"}
    cli("server", "group", "delete", "g2", json_out=False)
    assert [g["Name"] for g in cli("server", "group", "list")] == ["g1"]
    assert cli.events()[-2:] == ["servergroup.delete", "server_group.delete"]


def test_quotas_limits_usage_zones_and_statistics(cli: Cli) -> None:
    cloud = cli.cloud
    cli("server", "create", "--flavor", "m1.medium", "--image", "cirros", "vm-1")
    cli("server", "group", "create", "--policy", "affinity", "g1")

    quotas = {q["Resource"]: q["Limit"] for q in cli("quota", "show", "novawatch")}
    assert quotas["instances"] == -1 and quotas["key-pairs"] == 100 and quotas["server-groups"] == 10
    usage = {q["Resource"]: q for q in cli("quota", "show", "--usage", "--compute", "novawatch")}
    assert usage["instances"]["In Use"] == 1 and usage["cores"]["In Use"] == 2 and usage["ram"]["In Use"] == 4096
    assert usage["server-groups"]["In Use"] == 1

    limits = {row["Name"]: row["Value"] for row in cli("limits", "show", "--absolute")}
    # (openstacksdk's names for maxTotalKeypairs, maxTotalInstances, totalInstancesUsed, totalRAMUsed)
    assert limits["max_total_keypairs"] == 100 and limits["max_total_instances"] == -1
    assert limits["total_instances_used"] == 1 and limits["total_ram_used"] == 4096
    assert limits["max_total_volumes"] == -1

    # usage: the server has run for a moment in the default 30-day period (Nova lists servers with detailed=1
    # only, and the CLI asks with detailed=True, so the list shows no server count)
    [row] = cli("usage", "list")
    assert row["Project"] == "6f70656e737461636b20342065766572" and float(row["RAM MB-Hours"]) >= 0
    [server] = cli("usage", "show", "--project", "novawatch")["Servers"]
    assert server["name"] == "vm-1" and server["flavor"] == "m1.medium" and server["state"] == "active"
    assert server["hours"] > 0 and server["vcpus"] == 2

    zones = cli("availability", "zone", "list", "--compute", "--long")
    assert {(z["Zone Name"], z["Host Name"]) for z in zones} == {("nova", "host-1"), ("nova", "host-2"),
                                                                  ("nova", "host-3")}
    stats = cli("hypervisor", "stats", "show")
    assert stats["count"] == 3 and stats["vcpus"] == 24 and stats["vcpus_used"] == 2
    cli("compute", "service", "set", "--disable", "host-3", "nova-compute", json_out=False)
    assert cli("hypervisor", "stats", "show")["count"] == 2
    assert cloud.service.services["host-3"].disabled


def test_volumes_through_the_block_storage_endpoint(cli: Cli) -> None:
    cloud = cli.cloud
    cli("server", "create", "--flavor", "m1.small", "--image", "cirros", "vm-1")
    volume = cli("volume", "create", "--size", "1", "data-1")
    assert volume["status"] == "available" and volume["name"] == "data-1"
    before = len(cloud.events())
    attached = cli("server", "add", "volume", "vm-1", "data-1")
    assert attached["Volume ID"] == volume["id"] and attached["Device"] == "/dev/vdb"
    assert "instance.volume_attach.end" in cli.events(before)
    [listed] = cli("volume", "list")
    server_id = cli("server", "show", "vm-1")["id"]
    assert listed["Status"] == "in-use" and [a["server_id"] for a in listed["Attached to"]] == [server_id]
    assert "Attached to vm-1 on /dev/vdb" in cli("volume", "list", json_out=False)
    assert [v["id"] for v in cli("server", "show", "vm-1")["volumes_attached"]] == [volume["id"]]
    refused = cli.run("volume", "delete", "data-1")
    assert refused.returncode != 0
    cli("server", "remove", "volume", "vm-1", "data-1", json_out=False)
    assert "instance.volume_detach.end" in cli.events(before)
    assert cli("volume", "show", "data-1")["status"] == "available"
    cli("volume", "delete", "data-1", json_out=False)
    assert cli("volume", "list") == []


def test_the_model_follows_every_command(cli: Cli) -> None:
    """What the commands made the compute service send brings the data model to the compute service's truth."""
    cloud = cli.cloud
    cli("server", "create", "--flavor", "m1.small", "--image", "cirros", "vm-1")
    cli("server", "create", "--flavor", "m1.medium", "--image", "cirros", "vm-2")
    cli("server", "set", "--name", "db-1", "--property", "role=db", "vm-2", json_out=False)
    cli("keypair", "create", "k1", json_out=False)
    cli("server", "group", "create", "--policy", "anti-affinity", "g1")
    cli("server", "migrate", "vm-1", json_out=False)
    cli("server", "migrate", "confirm", "vm-1", json_out=False)
    cli("volume", "create", "--size", "2", "data-1")
    cli("server", "add", "volume", "db-1", "data-1")
    cli("server", "delete", "vm-1", json_out=False)
    model = cloud.replayed()
    assert snapshot.dumps(model) == snapshot.dumps(cloud.truth())
    assert [i.display_name for i in model.instances] == ["db-1"]
