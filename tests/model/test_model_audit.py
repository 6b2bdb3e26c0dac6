"""Audit finds drift between the model and the source, by entity and field; repair removes it."""

from __future__ import annotations

from modelkit import NODES, UUIDS, VOLS, compute_node, instance

from novawatch.model import Auditor, Consumer, audit, audit_snapshots, from_snapshot, repair, to_snapshot
from novawatch.snapshot import SnapshotSource, dumps


def model_and_truth() -> tuple[Consumer, SnapshotSource]:
    """A truth built by a complete stream, and a model that missed three of its notifications."""
    stream = [compute_node("compute_node.create", NODES[i], f"h{i}", when=0.1 * (i + 1)) for i in range(3)]
    for i in range(6):
        stream.append(instance("instance.create.end", UUIDS[i], when=1 + i, host=f"h{i % 3}", volumes=[VOLS[i]]))
    stream.append(instance("instance.pause.end", UUIDS[0], when=10, host="h0", state="paused", volumes=[VOLS[0]]))
    stream.append(instance("instance.delete.end", UUIDS[1], when=11, host="h1", state="deleted"))
    stream.append(instance("instance.live_migration_post_dest.end", UUIDS[2], when=12, host="h0",
                           volumes=[VOLS[2]]))
    stream.append(instance("instance.create.end", UUIDS[7], when=13, host="h2"))
    full = Consumer()
    full.process_all(stream)
    truth = SnapshotSource(to_snapshot(full.cluster))
    dropped = {9, 10, 12}
    model = Consumer()
    model.process_all([doc for i, doc in enumerate(stream) if i not in dropped])
    return model, truth


def test_audit_reports_drifted_entities_and_fields() -> None:
    model, truth = model_and_truth()
    drift = audit(model.cluster, truth)
    found = {(d.kind, d.uuid, d.problem): {f.field for f in d.fields} for d in drift}
    assert found[("instance", UUIDS[0], "differs")] == {"state"}
    assert found[("instance", UUIDS[1], "unexpected")] == set()
    assert found[("instance", UUIDS[7], "missing")] == set()
    # The node usage follows from the instance drift.
    assert ("node", NODES[1], "differs") in found and ("node", NODES[2], "differs") in found
    line = next(d for d in drift if d.uuid == UUIDS[0]).describe()
    assert line == f"instance {UUIDS[0]} differs: state model='active' source='paused'"


def test_repair_brings_the_model_back_to_the_truth() -> None:
    model, truth = model_and_truth()
    auditor = Auditor(model.cluster, truth)
    first = auditor.run()
    assert auditor.drift_count == len(first) > 0
    assert model.cluster.store.check() == []
    assert auditor.run() == [] and auditor.drift_count == 0
    assert dumps(to_snapshot(model.cluster)) == dumps(truth.snapshot)
    # A deleted instance repaired away stays deleted.
    assert UUIDS[1] in model.cluster.dead_instances


def test_audit_of_snapshots_and_repair_from_them() -> None:
    model, truth = model_and_truth()
    snapshot = to_snapshot(model.cluster)
    drift = audit_snapshots(snapshot, truth.snapshot)
    assert drift == audit(model.cluster, truth)
    cluster = from_snapshot(snapshot)
    assert repair(cluster, truth, drift) == len(drift)
    assert audit_snapshots(to_snapshot(cluster), truth.snapshot) == []
