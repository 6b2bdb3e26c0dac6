"""Checkpoint files: what a model restored from one knows, and how damaged files are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novawatch.model import to_snapshot
from novawatch.model.apply import Consumer
from novawatch.model.bootstrap import from_snapshot
from novawatch.model.checkpoint import (
    FORMAT,
    INSTANCE_FIELDS,
    MAGIC,
    NODE_FIELDS,
    CheckpointError,
    capture,
    read,
    read_header,
    remove_leftovers,
    restore,
    write,
)
from novawatch.model.cluster import ClusterModel
from novawatch.model.outcome import DUPLICATE
from novawatch.simulate import Config
from novawatch.snapshot import dumps
from simkit import simulate_collected

IDENTITY = {"bus": "rabbit://novawatch:***@127.0.0.1:5672/", "queue": "novawatch-model", "source": "test"}


def rows(cluster: ClusterModel) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Every field of every node and instance, marks included."""
    store = cluster.store
    nodes = sorted(tuple(getattr(n, f) for f in NODE_FIELDS) for n in store.nodes.values())
    instances = sorted((tuple(getattr(i, f) for f in INSTANCE_FIELDS) for i in store.instances.values()),
                       key=repr)
    return nodes, instances


@pytest.fixture(scope="module")
def run() -> tuple[object, tuple[bytes, ...], bytes]:
    return simulate_collected(Config(hosts=6, instances=40, actions=800, seed=5, failure_rate=0.05))


def test_a_restored_model_goes_on_exactly_as_the_one_that_wrote_it(run: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    initial, bodies, truth = run
    half = len(bodies) // 2
    original = Consumer(from_snapshot(initial))
    original.process_all(bodies[:half])
    cluster = original.cluster
    assert len(cluster.dead_instances) > 0, "the workload should have deleted instances (tombstones)"
    path = tmp_path / "model.checkpoint"
    size = write(path, capture(cluster, original.recent, identity=IDENTITY, kind="stream", position=half - 1))
    assert size == path.stat().st_size
    assert not list(tmp_path.glob(".*.tmp")), "the temporary file must be renamed over the checkpoint"

    checkpoint = read(path)
    assert checkpoint.header.position == half - 1 and checkpoint.header.kind == "stream"
    assert checkpoint.header.instances == len(cluster.store.instances)
    restored = Consumer(ClusterModel())
    restore(restored.cluster, restored.recent, checkpoint)
    assert restored.cluster.store.check() == []
    assert rows(restored.cluster) == rows(cluster)
    assert restored.cluster.dead_instances.items() == cluster.dead_instances.items()
    assert restored.cluster.pending_services == cluster.pending_services
    assert restored.cluster.volume_journal == cluster.volume_journal
    assert len(restored.recent) == len(original.recent)
    # a notification applied before the checkpoint, delivered again after the restart, is a duplicate
    assert restored.process(bodies[half - 1]) == DUPLICATE
    # and a restored model checkpoints again (its restored ids included)
    again = tmp_path / "again"
    write(again, capture(restored.cluster, restored.recent, identity=IDENTITY))
    assert len(read(again).body.recent_ids) == len(original.recent)

    original.process_all(bodies[half:])
    restored.process_all(bodies[half:])
    assert dumps(to_snapshot(restored.cluster, reported=False)) == truth
    assert rows(restored.cluster) == rows(cluster)


def test_named_sections_travel_with_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "c"
    sections = {"history": {"cpu": [[1.5, 2], [2.5, 3]]}, "empty": []}
    write(path, capture(ClusterModel(), Consumer().recent, identity=IDENTITY, sections=sections))
    assert read(path).sections == sections
    assert read_header(path).sections == ["empty", "history"]


@pytest.fixture
def good(run: tuple, tmp_path: Path) -> Path:  # type: ignore[type-arg]
    consumer = Consumer(from_snapshot(run[0]))
    consumer.process_all(run[1][:100])
    path = tmp_path / "model.checkpoint"
    write(path, capture(consumer.cluster, consumer.recent, identity=IDENTITY, kind="quorum"))
    return path


def refused(path: Path) -> CheckpointError:
    with pytest.raises(CheckpointError) as caught:
        read(path)
    return caught.value


def test_a_missing_checkpoint_says_so(tmp_path: Path) -> None:
    error = refused(tmp_path / "nothing-here")
    assert error.kind == "missing" and "no checkpoint at" in str(error)


def test_a_truncated_checkpoint_is_refused(good: Path) -> None:
    data = good.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, len(MAGIC) + 5, 3):
        good.write_bytes(data[:cut])
        assert refused(good).kind == "truncated", cut


def test_a_checkpoint_with_a_changed_byte_fails_its_checksum(good: Path) -> None:
    data = bytearray(good.read_bytes())
    data[-20] ^= 0x01
    good.write_bytes(bytes(data))
    error = refused(good)
    assert error.kind == "corrupt" and "checksum" in str(error)


def test_a_checkpoint_of_another_format_is_refused_naming_both(good: Path) -> None:
    data = good.read_bytes()
    end = data.index(b"\n", len(MAGIC))
    header = json.loads(data[len(MAGIC):end])
    header["format"] = FORMAT + 1
    good.write_bytes(MAGIC + json.dumps(header).encode() + data[end:])
    error = refused(good)
    assert error.kind == "format" and f"format {FORMAT + 1}" in str(error) and f"reads format {FORMAT}" in str(error)


def test_a_file_that_is_no_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text('{"format": "novawatch.model/1", "nodes": [], "instances": []}\n')
    error = refused(path)
    assert error.kind == "corrupt" and "not a novawatch checkpoint" in str(error)
    path.write_bytes(MAGIC + b"{not json\n" + b"x" * 10)
    assert refused(path).kind == "corrupt"


def test_leftovers_of_an_interrupted_write_are_removed(good: Path) -> None:
    leftover = good.with_name(f".{good.name}.999.1.tmp")
    leftover.write_bytes(b"half a checkpoint")
    other = good.with_name("unrelated.tmp")
    other.write_bytes(b"x")
    remove_leftovers(good)
    assert not leftover.exists() and other.exists() and good.exists()
