"""Nodes without ``compute_node.*`` (real Nova never sends it): found through the source by host.

A ``novawatch simulate`` stream with every ``compute_node.*`` notification removed, replayed into a
model that starts without any node and asks the truth about the hosts that notifications name
(``service.*`` and instance events), ends equal to the truth.
"""

from __future__ import annotations

import json
from pathlib import Path

from novawatch import snapshot
from novawatch.cli import main
from novawatch.model import ClusterModel, Consumer, to_snapshot
from novawatch.model.bootstrap import bootstrap
from novawatch.simulate import Config
from novawatch.snapshot import Snapshot, SnapshotSource
from simkit import simulate_collected

#: Enough service creations and deletions that several hosts appear and go during the stream.
MIX = {"service_create": 3.0, "service_delete": 0.5, "service_disable": 1.0, "service_force_down": 0.5}


def _run(seed: int) -> tuple[Snapshot, list[bytes], bytes]:
    initial, bodies, truth = simulate_collected(Config(hosts=5, instances=30, actions=1500, seed=seed,
                                                       failure_rate=0.02, mix=MIX))
    kept = [b for b in bodies if b'"compute_node.' not in b]
    assert len(kept) < len(bodies)  # there were compute_node notifications to remove
    return initial, kept, truth


def _without_nodes(initial: Snapshot) -> Snapshot:
    return Snapshot(nodes=[], instances=initial.instances)


def test_a_stream_without_compute_node_events_converges_with_a_source() -> None:
    for seed in (3, 4):
        initial, stream, truth = _run(seed)
        truth_snap = snapshot.loads(truth)
        assert {n.host for n in truth_snap.nodes} - {n.host for n in initial.nodes}  # hosts born in the stream
        cluster = ClusterModel(SnapshotSource(truth_snap))
        bootstrap(cluster, SnapshotSource(_without_nodes(initial)))
        stats = Consumer(cluster).process_all(stream)
        assert stats.rejected == 0
        assert snapshot.dumps(to_snapshot(cluster, reported=False)) == truth, f"seed {seed}"
        assert cluster.fetched >= len(truth_snap.nodes)


def test_without_a_source_the_nodes_stay_unknown() -> None:
    """The control: the same stream without a source cannot know the nodes (so the source made the difference)."""
    initial, stream, truth = _run(3)
    cluster = ClusterModel()
    bootstrap(cluster, SnapshotSource(_without_nodes(initial)))
    Consumer(cluster).process_all(stream)
    assert not cluster.store.nodes
    assert snapshot.dumps(to_snapshot(cluster, reported=False)) != truth


def test_model_replay_with_source_from_the_command_line(tmp_path: Path) -> None:
    initial, stream, truth = _run(4)
    (tmp_path / "initial.json").write_bytes(snapshot.dumps(_without_nodes(initial)))
    (tmp_path / "stream.jsonl").write_bytes(b"".join(b.rstrip(b"\n") + b"\n" for b in stream))
    (tmp_path / "truth.json").write_bytes(truth)
    assert main(["model", "replay", str(tmp_path / "stream.jsonl"), "--initial", str(tmp_path / "initial.json"),
                 "--source", str(tmp_path / "truth.json"), "--out", str(tmp_path / "model.json"),
                 "--no-progress"]) == 0
    assert (tmp_path / "model.json").read_bytes() == truth


def test_an_unknown_host_is_asked_again_later_not_never(monkeypatch: object) -> None:
    """Nova creates the compute node after the service: "unknown" must expire (inline mode)."""
    import novawatch.model.cluster as cluster_module

    truth = Snapshot()
    source = SnapshotSource(truth)
    cluster = ClusterModel(source)
    service_update = json.dumps({
        "event_type": "service.update", "priority": "INFO", "publisher_id": "nova-compute:late",
        "message_id": "m-1", "timestamp": "2026-01-01 00:00:00.000001",
        "payload": {"nova_object.name": "ServiceStatusPayload", "nova_object.namespace": "nova",
                    "nova_object.version": "1.1", "nova_object.data": {
                        "host": "late", "binary": "nova-compute", "topic": "compute", "report_count": 1,
                        "disabled": True, "disabled_reason": "racks", "availability_zone": None,
                        "last_seen_up": None, "forced_down": False, "version": 66, "uuid":
                        "6c2b0b0e-8d1e-4f4e-9d7a-0a1b2c3d4e5f"}}})
    consumer = Consumer(cluster)
    consumer.process(service_update)
    assert "late" not in cluster.store.nodes_by_host  # the node does not exist yet
    node = snapshot.NodeRecord(uuid="0f0e0d0c-0b0a-4908-8706-050403020100", host="late",
                               hypervisor_hostname="late.example.org", vcpus=8, memory_mb=8192, local_gb=80)
    truth.nodes.append(node)
    source._nodes[node.uuid] = node
    assert cluster.node_for_host("late") is None  # within the retry delay: not asked again yet
    clock = [cluster_module.time.monotonic()]
    monkeypatch.setattr(cluster_module.time, "monotonic", lambda: clock[0] + cluster_module.UNKNOWN_HOST_RETRY)  # type: ignore[attr-defined]
    found = cluster.node_for_host("late")
    assert found is not None and found.vcpus == 8
    # the service state that came before the node is applied to it
    assert (found.status, found.disabled_reason) == ("disabled", "racks")
