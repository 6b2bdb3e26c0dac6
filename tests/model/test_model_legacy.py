"""Legacy ``compute.instance.*`` notifications, alone and mixed with versioned ones."""

from __future__ import annotations

from modelkit import NODES, UUIDS, VOLS, compute_node, instance, legacy

from novawatch.model import ClusterModel, Consumer, from_snapshot, to_snapshot
from novawatch.model.handlers import HANDLERS, STALE_COPIES
from novawatch.model.outcome import APPLIED, STALE
from novawatch.notifications.catalog import events
from novawatch.snapshot import InstanceRecord, Snapshot

U0 = UUIDS[0]


def consumer(*hosts: str) -> Consumer:
    c = Consumer(ClusterModel())
    for i, host in enumerate(hosts):
        c.process(compute_node("compute_node.create", NODES[i], host, when=0.001 * (i + 1)))
    return c


def only(c: Consumer) -> InstanceRecord:
    assert c.cluster.store.check() == []
    (inst,) = to_snapshot(c.cluster).instances
    return inst


def test_every_legacy_catalog_event_has_a_handler() -> None:
    legacy_events = [e.event_type for e in events() if e.event_type.startswith("compute.instance.")]
    assert legacy_events
    assert [e for e in legacy_events if e not in HANDLERS and e not in STALE_COPIES] == []


def test_legacy_lifecycle() -> None:
    c = consumer("a", "b")
    assert c.process(legacy("compute.instance.create.end", U0, when=1, host="a", flavor=(2, 2048, 20, 5))) == APPLIED
    inst = only(c)
    assert (inst.host, inst.state, inst.power_state, inst.vcpus, inst.disk_gb) == ("a", "active", "running", 2, 25)
    c.process(legacy("compute.instance.power_off.end", U0, when=2, host="a", state="stopped",
                     flavor=(2, 2048, 20, 5)))
    assert (only(c).state, only(c).power_state) == ("stopped", "shutdown")
    c.process(legacy("compute.instance.update", U0, when=3, host="a", state="stopped", task_state="powering-on",
                     flavor=(2, 2048, 20, 5)))
    assert only(c).task_state == "powering-on"
    c.process(legacy("compute.instance.live_migration.post.dest.end", U0, when=4, host="b",
                     flavor=(2, 2048, 20, 5)))
    assert (only(c).host, only(c).state, only(c).power_state) == ("b", "active", "running")
    assert c.process(legacy("compute.instance.pause.end", U0, when=3.5, host="a", state="paused")) == STALE
    c.process(legacy("compute.instance.shelve_offload.end", U0, when=5, host=None, state="shelved_offloaded"))
    assert (only(c).host, only(c).node) == (None, None)
    c.process(legacy("compute.instance.delete.end", U0, when=6, host=None, state="deleted"))
    assert to_snapshot(c.cluster).instances == []
    assert c.process(legacy("compute.instance.update", U0, when=7)) == STALE


def test_legacy_volume_events_are_ordered_per_volume() -> None:
    c = consumer("a")
    c.process(legacy("compute.instance.create.end", U0, when=1, host="a"))
    c.process(legacy("compute.instance.volume.attach", U0, when=3, host="a", volume_id=VOLS[0]))
    # A full-state event older than the attach (reordered) does not drop the volume, and vice versa.
    assert c.process(legacy("compute.instance.update", U0, when=4, host="a")) == APPLIED
    c.process(legacy("compute.instance.volume.attach", U0, when=2, host="a", volume_id=VOLS[1]))
    assert only(c).volumes == [VOLS[0], VOLS[1]]
    c.process(legacy("compute.instance.volume.detach", U0, when=6, host="a", volume_id=VOLS[0]))
    assert c.process(legacy("compute.instance.volume.attach", U0, when=5, host="a", volume_id=VOLS[0])) == STALE
    assert only(c).volumes == [VOLS[1]]
    # A versioned full list older than a legacy detach does not bring the volume back.
    c.process(instance("instance.update", U0, when=5.5, host="a", volumes=[VOLS[0], VOLS[1]]))
    assert only(c).volumes == [VOLS[1]]


def test_legacy_keeps_what_it_does_not_carry() -> None:
    c = consumer("a")
    c.process(instance("instance.create.end", U0, when=1, host="a", locked=True, flavor=(1, 512, 10, 2, 2048),
                       boot_volume=VOLS[0], power_state="crashed"))
    assert only(c).disk_gb == 4
    c.process(legacy("compute.instance.update", U0, when=2, host="a", flavor=(1, 512, 10, 2), image_ref_url=""))
    inst = only(c)
    assert (inst.locked, inst.disk_gb, inst.volumes, inst.power_state) == (True, 4, [VOLS[0]], "crashed")


def test_legacy_boot_from_volume_guess_and_snapshot_split() -> None:
    c = consumer("a")
    c.process(legacy("compute.instance.create.end", U0, when=1, host="a", flavor=(1, 512, 10, 2),
                     image_ref_url="http://glance/images/"))
    assert only(c).disk_gb == 2
    # From a snapshot, the total is split into root/ephemeral/swap on the first legacy notification.
    record = InstanceRecord(uuid=UUIDS[1], host="a", node="a", project_id="p", display_name="n", state="active",
                            power_state="running", vcpus=1, memory_mb=512, disk_gb=13, volumes=[])
    model = from_snapshot(Snapshot(instances=[record]))
    c2 = Consumer(model)
    c2.process(legacy("compute.instance.update", UUIDS[1], when=1, host="a", flavor=(1, 512, 10, 2)))
    assert only(c2).disk_gb == 13
    c2.process(legacy("compute.instance.finish_resize.end", UUIDS[1], when=2, host="a", flavor=(2, 1024, 20, 2)))
    assert only(c2).disk_gb == 23


def test_both_formats_together_converge_to_the_versioned_state() -> None:
    c = consumer("a", "b")
    c.process(legacy("compute.instance.create.end", U0, when=1.0, host="a"))
    c.process(instance("instance.create.end", U0, when=1.1, host="a", volumes=[VOLS[0]]))
    c.process(legacy("compute.instance.suspend.end", U0, when=2.0, host="a", state="suspended"))
    c.process(instance("instance.suspend.end", U0, when=2.1, host="a", state="suspended", power_state="suspended",
                       volumes=[VOLS[0]]))
    inst = only(c)
    assert (inst.state, inst.power_state, inst.volumes) == ("suspended", "suspended", [VOLS[0]])
