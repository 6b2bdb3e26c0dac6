"""Nova 34's API documents -> snapshot records (``novawatch.sources.nova_views``).

The documents in ``nova34/`` are shaped key for key as Nova 34 returns them (its view code in
``nova/api/openstack/compute/views/`` and ``compute/hypervisors.py``, and its ``doc/api_samples``):
``os-hypervisors/detail`` at 2.87 and at 2.88 (no capacity), a Placement inventory, ``servers/detail``
as an admin at the newest microversion and at 2.1 (flavor by id), as a member (no host attributes),
and ``flavors/detail`` below 2.75 (``swap`` is ``""`` for none, ephemeral under its old prefix).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from novawatch import snapshot
from novawatch.snapshot import InstanceRecord, NodeRecord
from novawatch.sources.nova_views import (
    HiddenFields,
    NoCapacity,
    ViewError,
    instance_from_server,
    node_from_hypervisor,
    snapshot_from_views,
)

DOCS = Path(__file__).with_name("nova34")
PROJECT = "6f70656e737461636b20342065766572"
OTHER = "9a8b7c6d5e4f40312a1b2c3d4e5f6a7b"
NODE1 = "b1e43b5f-eec1-44e0-9f10-7b4945c0226d"
NODE2 = "7d1fa8c4-9b0f-4d55-9a44-d4e4c0b4f8a2"


def doc(name: str) -> Any:
    return json.loads((DOCS / name).read_text())


def _inst(uuid: str, name: str, state: str, power: str, *, host: str | None = "compute1", vcpus: int = 1,
          memory_mb: int = 2048, disk_gb: int = 20, **extra: Any) -> InstanceRecord:
    return InstanceRecord(uuid=uuid, host=host, node="compute1.example.org" if host else None,
                          project_id=extra.pop("project_id", PROJECT), display_name=name, state=state,
                          power_state=power, vcpus=vcpus, memory_mb=memory_mb, disk_gb=disk_gb, **extra)


#: What the documents describe, worked out by hand from the JSON.
EXPECTED_INSTANCES = [
    _inst("0b7f1c9e-2c47-4d8e-8a4e-6f1a9f0e3b11", "web-1", "active", "running"),
    # booted from volume (image ""): no root disk; ephemeral 5 + swap 1536 MB -> 2 GB
    _inst("1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5", "db-1", "active", "running", vcpus=2, memory_mb=1024, disk_gb=7,
          volumes=["5f2a6c1e-0d4b-4e8a-9c7f-3b1d2e4f6a80", "a9c8b7d6-e5f4-4a3b-8c2d-1e0f9a8b7c6d"]),
    _inst("2d3e4f5a-6b7c-4d8e-9f0a-b1c2d3e4f5a6", "batch-1", "stopped", "shutdown", locked=True, project_id=OTHER),
    _inst("3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7", "shelved-1", "shelved_offloaded", "shutdown", host=None),
    # image-backed: root 10 + ephemeral 5 + swap 2
    _inst("4f5a6b7c-8d9e-4fa0-b1c2-d3e4f5a6b7c8", "paused-1", "paused", "paused", vcpus=2, memory_mb=1024,
          disk_gb=17),
    _inst("5a6b7c8d-9e0f-4a1b-c2d3-e4f5a6b7c8d9", "soft-1", "soft-delete", "shutdown"),
    _inst("6b7c8d9e-0f1a-4b2c-d3e4-f5a6b7c8d9e0", "migrating-1", "active", "running", task_state="migrating"),
]


def test_hypervisor_at_2_87_gives_capacity_and_service_state() -> None:
    hyps = doc("hypervisors-detail-v2.87.json")["hypervisors"]
    assert node_from_hypervisor(hyps[0]) == NodeRecord(
        uuid=NODE1, host="compute1", hypervisor_hostname="compute1.example.org", state="up", status="enabled",
        disabled_reason=None, vcpus=4, memory_mb=8192, local_gb=1028)
    # the hypervisor's *_used fields are Nova's own accounting: usage stays derived from instances
    assert node_from_hypervisor(hyps[1]) == NodeRecord(
        uuid=NODE2, host="compute2", hypervisor_hostname="compute2.example.org", state="down", status="disabled",
        disabled_reason="maintenance", vcpus=16, memory_mb=16384, local_gb=500)


def test_hypervisor_past_2_87_takes_capacity_from_placement_as_watcher_does() -> None:
    hyp = doc("hypervisors-detail-v2.88.json")["hypervisors"][0]
    with pytest.raises(NoCapacity, match=r"hypervisor b1e43b5f.* no vcpus \(microversion 2.88 or later\)"):
        node_from_hypervisor(hyp)
    inventories = doc("resource-provider-inventories.json")["inventories"]
    node = node_from_hypervisor(hyp, inventories)
    assert (node.vcpus, node.memory_mb, node.local_gb) == (4, 8192, 1028)  # total, not total - reserved
    assert node.inventory == {
        "VCPU": {"total": 4, "reserved": 0, "allocation_ratio": 16.0},
        "MEMORY_MB": {"total": 8192, "reserved": 512, "allocation_ratio": 1.5},
        "DISK_GB": {"total": 1028, "reserved": 0, "allocation_ratio": 1.0},
    }
    # Placement wins per resource class even where the hypervisor reports a figure (Watcher's order)
    older = dict(doc("hypervisors-detail-v2.87.json")["hypervisors"][0], vcpus=2)
    assert node_from_hypervisor(older, {"VCPU": inventories["VCPU"]}).vcpus == 4
    assert node_from_hypervisor(older).inventory is msgspec.UNSET
    # the inventory survives the snapshot's round trip (an extra key of the contract)
    assert snapshot.loads(snapshot.dumps(snapshot.build([node], []))).nodes[0].inventory == node.inventory


def test_servers_at_the_newest_microversion_as_admin() -> None:
    servers = doc("servers-detail-admin-latest.json")["servers"]
    assert [instance_from_server(s) for s in servers] == EXPECTED_INSTANCES


def test_servers_at_2_1_look_their_flavor_up() -> None:
    servers = doc("servers-detail-admin-v2.1.json")["servers"]
    flavors = {f["id"]: f for f in doc("flavors-detail.json")["flavors"]}
    asked: list[str] = []

    def lookup(flavor_id: str) -> dict[str, Any] | None:
        asked.append(flavor_id)
        return flavors.get(flavor_id)

    got = [instance_from_server(s, lookup) for s in servers]
    # "locked" is shown from 2.9 only: at 2.1 every server reads as unlocked
    assert got == [msgspec.structs.replace(i, locked=False) for i in EXPECTED_INSTANCES]
    assert set(asked) == {"2", "6"}
    with pytest.raises(ViewError, match=r"server 0b7f1c9e.*flavor 2 is not embedded .*could not be looked up"):
        instance_from_server(servers[0])


def test_snapshot_from_views_equals_the_hand_worked_truth() -> None:
    snap = snapshot_from_views(doc("hypervisors-detail-v2.87.json")["hypervisors"],
                               doc("servers-detail-admin-latest.json")["servers"])
    assert snap.instances == sorted(EXPECTED_INSTANCES, key=lambda i: i.uuid)
    first, second = sorted(snap.nodes, key=lambda n: n.host)
    # usage is derived from the instances on the host (six on compute1, the shelved one nowhere)
    assert (first.vcpus_used, first.memory_mb_used, first.local_gb_used, first.running_vms) == (8, 10240, 104, 6)
    assert (second.vcpus_used, second.running_vms) == (0, 0)
    # the same through the 2.1 documents and a flavor table, and through 2.88 + Placement
    old = snapshot_from_views(doc("hypervisors-detail-v2.87.json")["hypervisors"],
                              doc("servers-detail-admin-v2.1.json")["servers"],
                              {f["id"]: f for f in doc("flavors-detail.json")["flavors"]})
    assert [i.uuid for i in old.instances] == [i.uuid for i in snap.instances]
    placed = snapshot_from_views(doc("hypervisors-detail-v2.88.json")["hypervisors"], [],
                                 inventories={NODE1: doc("resource-provider-inventories.json")["inventories"]})
    assert placed.nodes[0].vcpus == 4


def test_a_member_listing_is_refused_with_the_reason() -> None:
    servers = doc("servers-detail-member-latest.json")["servers"]
    with pytest.raises(HiddenFields, match=r"no OS-EXT-SRV-ATTR:host, OS-EXT-SRV-ATTR:hypervisor_hostname: "
                                           r"Nova shows them to admins only"):
        instance_from_server(servers[0])
    # a problems list does not swallow it: every server would be wrong, not one
    with pytest.raises(HiddenFields):
        snapshot_from_views([], servers, problems=[])


def test_bad_documents_are_named_and_skipped_when_asked() -> None:
    servers = copy.deepcopy(doc("servers-detail-admin-latest.json")["servers"])
    servers[0]["OS-EXT-STS:power_state"] = 9
    del servers[1]["OS-EXT-STS:vm_state"]
    servers[2]["flavor"]["ram"] = "lots"
    servers.append(dict(servers[3], id="7c8d9e0f-1a2b-4c3d-e4f5-a6b7c8d9e0f1", status="DELETED",
                        **{"OS-EXT-STS:vm_state": "deleted"}))
    hyps = copy.deepcopy(doc("hypervisors-detail-v2.87.json")["hypervisors"])
    del hyps[1]["service"]
    with pytest.raises(ViewError, match="power_state 9 is not one of Nova's power states"):
        snapshot_from_views(hyps[:1], servers)
    problems: list[str] = []
    snap = snapshot_from_views(hyps, servers, problems=problems)
    assert problems == [
        f"hypervisor {NODE2} has no 'service' (is this os-hypervisors/detail?)",
        "server 0b7f1c9e-2c47-4d8e-8a4e-6f1a9f0e3b11: OS-EXT-STS:power_state 9 is not one of Nova's power "
        "states [0, 1, 3, 4, 6, 7]",
        "server 1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5 has no 'OS-EXT-STS:vm_state'",
        "server 2d3e4f5a-6b7c-4d8e-9f0a-b1c2d3e4f5a6: flavor ram is 'lots', not a number",
    ]
    # nothing valid is lost; the deleted server is not an instance of the model
    assert [n.uuid for n in snap.nodes] == [NODE1]
    assert [i.uuid for i in snap.instances] == [i.uuid for i in sorted(EXPECTED_INSTANCES[3:], key=lambda i: i.uuid)]


def test_flavor_gone_from_the_database_counts_nothing() -> None:
    """Nova shows ``flavor: {}`` (and logs a warning) when an instance's flavor was removed."""
    server = dict(doc("servers-detail-admin-latest.json")["servers"][0], flavor={})
    got = instance_from_server(server)
    assert (got.vcpus, got.memory_mb, got.disk_gb) == (0, 0, 0)
