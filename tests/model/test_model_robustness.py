"""Bad input is rejected with a reason and kept; everything valid around it is still applied."""

from __future__ import annotations

import json
import random

from modelkit import NODES, UUIDS, compute_node, instance, service

from novawatch.model import Consumer, DeadLetters, to_snapshot
from novawatch.model.ordering import RecentIds, Tombstones, timestamp_key
from novawatch.model.outcome import REJECTED


def _mutate(data: bytes, path: list[str], value: object) -> bytes:
    doc = json.loads(data)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(doc).encode()


_DELETE = object()
_DATA = ["payload", "nova_object.data"]


def broken_corpus() -> list[tuple[str, bytes]]:
    """(what is wrong, document) for every kind of bad input."""
    good = instance("instance.update", UUIDS[900], when=1)
    envelope = json.dumps({"oslo.version": "2.0", "oslo.message": good.decode()[:-10]}).encode()
    return [
        ("truncated", good[: len(good) // 2]),
        ("empty line", b"{"),
        ("not json", b"\x00\xff garbage"),
        ("not an object", b"[1, 2, 3]"),
        ("truncated envelope", envelope),
        ("missing event_type", _mutate(good, ["event_type"], _DELETE)),
        ("missing payload", _mutate(good, ["payload"], _DELETE)),
        ("missing publisher", _mutate(good, ["publisher_id"], _DELETE)),
        ("missing uuid", _mutate(good, [*_DATA, "uuid"], _DELETE)),
        ("uuid not a uuid", _mutate(good, [*_DATA, "uuid"], "not-a-uuid")),
        ("uuid wrong type", _mutate(good, [*_DATA, "uuid"], 12345)),
        ("vcpus wrong type", _mutate(good, [*_DATA, "flavor", "nova_object.data", "vcpus"], "two")),
        ("state wrong type", _mutate(good, [*_DATA, "state"], ["melting"])),
        ("locked wrong type", _mutate(good, [*_DATA, "locked"], "yes")),
        ("block devices wrong type", _mutate(good, [*_DATA, "block_devices"], {"a": 1})),
        ("unknown major", _mutate(good, ["payload", "nova_object.version"], "99.0")),
        ("wrong payload name", _mutate(good, ["payload", "nova_object.name"], "ServiceStatusPayload")),
        ("version not a version", _mutate(good, ["payload", "nova_object.version"], "two")),
        ("missing flavor", _mutate(good, [*_DATA, "flavor"], _DELETE)),
        ("service missing host", _mutate(service("service.update", "h", when=1), [*_DATA, "host"], _DELETE)),
        ("node wrong type", _mutate(compute_node("compute_node.update", NODES[5], "h", when=1),
                                    [*_DATA, "vcpus"], None)),
        ("bad timestamp", _mutate(good, ["timestamp"], "yesterday")),
        # issue 13 items 1, 2 and 9: out of UTC's range, out of the calendar, not digits, out of Nova's columns
        ("timestamp past year 9999 in UTC", _mutate(good, ["timestamp"], "9999-12-31T23:59:59-01:00")),
        ("timestamp month 13", _mutate(good, ["timestamp"], "2026-13-45 99:99:99.000000")),
        ("timestamp of letters", _mutate(good, ["timestamp"], "zzzzzzzzzz zzzzzzzz.zzzzzz")),
        ("memory 2**70", _mutate(good, [*_DATA, "flavor", "nova_object.data", "memory_mb"], 2**70)),
        ("memory -2**40", _mutate(good, [*_DATA, "flavor", "nova_object.data", "memory_mb"], -(2**40))),
        ("vcpus negative", _mutate(good, [*_DATA, "flavor", "nova_object.data", "vcpus"], -1)),
        ("vcpus true", _mutate(good, [*_DATA, "flavor", "nova_object.data", "vcpus"], True)),
        ("node memory 2**70", _mutate(compute_node("compute_node.update", NODES[5], "h", when=1),
                                      [*_DATA, "memory_mb"], 2**70)),
        ("hostile size", b'{"event_type": "instance.update", "payload": "' + b"x" * (5 * 1024 * 1024) + b'"}'),
        ("hostile nesting", b'{"event_type": "instance.update", "payload": ' + b"[" * 100_000 + b"]" * 100_000
         + b', "priority": "INFO", "publisher_id": "x:y"}'),
        ("hostile display name", _mutate(good, [*_DATA, "display_name"], 17)),
    ]


def valid_stream() -> list[bytes]:
    docs = [compute_node("compute_node.create", NODES[0], "compute", when=0.5, mid="n0")]
    for i in range(30):
        docs.append(instance("instance.create.end", UUIDS[i], when=1 + i, mid=f"c{i}"))
    docs.append(service("service.update", "compute", when=40, disabled=True, reason="r", mid="s"))
    for i in range(0, 30, 3):
        docs.append(instance("instance.delete.end", UUIDS[i], when=50 + i, state="deleted", mid=f"d{i}"))
    return docs


def test_broken_corpus_is_rejected_with_reasons_and_valid_neighbours_applied() -> None:
    broken = broken_corpus()
    good = valid_stream()
    mixed: list[bytes] = []
    rng = random.Random(7)
    queue = list(broken)
    for doc in good:
        mixed.append(doc)
        if queue and rng.random() < 0.9:
            mixed.append(queue.pop()[1])
    mixed += [doc for _, doc in queue]

    consumer = Consumer(dead_letters=DeadLetters(capacity=100, excerpt=256))
    stats = consumer.process_all(mixed)

    reference = Consumer()
    reference.process_all(good)
    assert stats.rejected == len(broken), [(d.reason) for d in consumer.dead_letters]
    assert stats.applied == reference.stats.applied == len(good)
    assert to_snapshot(consumer.cluster) == to_snapshot(reference.cluster)
    letters = list(consumer.dead_letters)
    assert len(letters) == len(broken)
    assert all(letter.reason for letter in letters)
    assert all(len(letter.excerpt) <= 256 for letter in letters)
    reasons = " | ".join(letter.reason for letter in letters)
    for needle in ("not valid JSON", "uuid", "unknown major version 99.0", "over the limit", "timestamp",
                   "out of range: not a date in UTC", "'2026-13-45 99:99:99.000000' is not a date-time",
                   "Expected `int` <= 2147483647 - at `payload.flavor.memory_mb`",
                   "Expected `int` >= 0 - at `payload.flavor.vcpus`", "got `bool` - at `payload.flavor.vcpus`",
                   "Expected `int` <= 2147483647 - at `payload.memory_mb`"):
        assert needle in reasons


def test_dead_letter_store_is_bounded_but_counts_everything() -> None:
    consumer = Consumer(dead_letters=DeadLetters(capacity=3))
    for _ in range(10):
        assert consumer.process(b"{nope", "x") == REJECTED
    assert len(consumer.dead_letters) == 3
    assert consumer.dead_letters.total == 10 and consumer.stats.rejected == 10
    assert consumer.dead_letters.by_event_type["-"] == 10


def test_replay_file_names_the_line_of_each_rejection(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "stream.jsonl"
    path.write_bytes(b"\n".join([instance("instance.update", UUIDS[0], when=1), b"", b"{truncated"]) + b"\n")
    consumer = Consumer()
    stats = consumer.replay_file(path)
    assert (stats.applied, stats.rejected) == (1, 1)
    (letter,) = consumer.dead_letters
    assert letter.where == f"{path}:3"


def test_recent_ids_forget_the_oldest() -> None:
    recent = RecentIds(capacity=2)
    assert not recent.seen("a") and not recent.seen("b") and recent.seen("a")
    assert not recent.seen("c")  # forgets "a"
    assert not recent.seen("a")
    assert len(recent) == 2


def test_tombstones_are_bounded() -> None:
    dead = Tombstones(capacity=2)
    for uuid in "abc":
        dead.bury(uuid, None)
    assert "a" not in dead and "b" in dead and "c" in dead and len(dead) == 2
    dead.forget("b")
    assert "b" not in dead


def test_timestamp_keys_sort_in_time_order() -> None:
    assert timestamp_key("2026-01-01 00:00:01.000001") == "2026-01-01 00:00:01.000001"
    assert timestamp_key("2026-01-01T01:00:01+01:00") == "2026-01-01 00:00:01.000000"
    assert timestamp_key("2026-01-01 00:00:01") == "2026-01-01 00:00:01.000000"
    assert timestamp_key("soon") is None


def test_replay_file_skips_a_hostile_line_without_loading_it(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "stream.jsonl"
    good = instance("instance.update", UUIDS[0], when=1)
    with path.open("wb") as f:
        f.write(good + b"\n")
        f.write(b'{"event_type": "instance.update", "payload": "' + b"x" * (9 * 1024 * 1024) + b'"}\n')
        f.write(instance("instance.pause.end", UUIDS[0], when=2, state="paused") + b"\n")
    consumer = Consumer()
    stats = consumer.replay_file(path)
    assert (stats.applied, stats.rejected) == (2, 1)
    (letter,) = consumer.dead_letters
    assert letter.where.endswith(":2") and "over the limit" in letter.reason
    assert to_snapshot(consumer.cluster).instances[0].state == "paused"


def test_dead_letters_stay_small_whatever_the_event_types_and_reasons() -> None:
    letters = DeadLetters(capacity=10)
    for n in range(1000):
        letters.add("x", f"hostile.{n}." + "e" * 100_000, "r" * 100_000, b"{}")
    letters.add("x", "instance.update", "bad", b"{}")
    assert letters.total == 1001 and len(letters) == 10
    assert dict(letters.by_event_type) == {"-": 1000, "instance.update": 1}
    assert all(len(letter.event_type or "") <= 256 and len(letter.reason) <= 1027 for letter in letters)
