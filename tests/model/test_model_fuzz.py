"""Property tests of the decoder and the model's consumer against mutated real notifications (issue 13).

The notifications are ``novawatch simulate``'s (both formats) and Nova's published samples; the mutations are
what a careless or hostile sender produces: wrong types, numbers out of range, NaN and Infinity, lone
surrogates, deep nesting, truncated or invalid bytes, random timestamps, missing fields. Whatever they are:
the consumer never raises; the decoder accepts (perhaps with warnings), calls the event type unknown, or
rejects with a one-line reason; the model rejects what its own decoder (which checks the fields it uses, see
novawatch.model.decoder) rejects, and nothing that ``decode`` accepts; garbage interleaved with a valid stream
leaves the model exactly as the valid stream alone does; and the consumer keeps working afterwards.
"""

from __future__ import annotations

import json
import random
import re
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelkit import UUIDS, instance

from novakit import load, sample_names
from novawatch.cli.decode import one_line
from novawatch.model import Consumer, from_snapshot, to_snapshot
from novawatch.model.decoder import MODEL_READER
from novawatch.model.outcome import APPLIED, REJECTED
from novawatch.notifications import Rejected, UnknownEvent, decode, warnings_of
from novawatch.simulate import Config
from novawatch.snapshot import Snapshot, dumps
from simkit import simulate_collected

SETTINGS = settings(max_examples=60, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@cache
def simulation() -> tuple[Snapshot, tuple[bytes, ...], bytes]:
    return simulate_collected(Config(hosts=3, instances=6, actions=40, seed=5, failure_rate=0.1))


@cache
def clean_model() -> tuple[bytes, int]:
    """The snapshot after the simulation's stream alone, and how many notifications were applied."""
    initial, bodies, _truth = simulation()
    consumer = Consumer(from_snapshot(initial))
    stats = consumer.process_all(bodies)
    assert stats.rejected == 0
    return dumps(to_snapshot(consumer.cluster, reported=False)), stats.applied


@cache
def originals() -> tuple[bytes, ...]:
    """What the mutations start from: the simulation's notifications and every sample of Nova's."""
    return simulation()[1] + tuple(json.dumps(load(name)).encode() for name in sample_names())


# --- mutations -----------------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
_TIMESTAMPS = st.one_of(
    st.text(max_size=30),
    st.datetimes().map(str),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(["9999-12-31T23:59:59-01:00", "2026-13-45 99:99:99.000000", "zzzzzzzzzz zzzzzzzz.zzzzzz",
                     "9999-12-31 23:59:59.999999", "0001-01-01T00:00:00+01:00", "2026-01-01 00:00:01.00000\u0661"]),
    st.integers() | st.none() | st.booleans(),
)
_NUMBER = re.compile(rb'(?<=": )-?\d+(?:\.\d+)?(?=[,}\]])')


def _places(value: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) in a document, depth first."""
    if isinstance(value, dict):
        for key, item in value.items():
            out.append((value, key))
            _places(item, out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.append((value, index))
            _places(item, out)
    return out


@st.composite
def mutated(draw: st.DrawFn) -> bytes | str:
    """One original notification with one thing made wrong (or, by chance, still right)."""
    original = draw(st.sampled_from(originals()))
    doc = json.loads(original)
    kind = draw(st.sampled_from(["type", "huge", "token", "surrogate", "escape", "deep", "truncate", "utf8",
                                 "timestamp", "missing", "envelope", "event"]))
    places = _places(doc, [])
    container, key = draw(st.sampled_from(places))
    if kind == "type":
        container[key] = draw(_JSON)
    elif kind == "huge":
        container[key] = draw(st.sampled_from([2**70, -(2**40), 2**63, -1, 2**31, True]))
    elif kind == "timestamp":
        doc["timestamp"] = draw(_TIMESTAMPS)
    elif kind == "event":
        doc["event_type"] = draw(st.text(max_size=40) | st.sampled_from(["instance.explode", "compute.instance.x"]))
    elif kind == "missing":
        del container[key]
    elif kind == "surrogate":
        container[key] = "x\ud800y"
        return json.dumps(doc, ensure_ascii=False)  # text with a lone surrogate in it
    elif kind == "deep":
        depth = draw(st.integers(100, 50_000))
        marker = "\u0000deep\u0000"
        container[key] = marker
        return json.dumps(doc).replace(json.dumps(marker), "[" * depth + "]" * depth)
    data = json.dumps(doc).encode()
    if kind == "token":
        numbers = list(_NUMBER.finditer(data))
        if numbers:
            m = draw(st.sampled_from(numbers))
            token = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"0x10"]))
            data = data[: m.start()] + token + data[m.end():]
    elif kind == "escape":
        data = data.replace(b'"', b'"\\ud800', 1 + draw(st.integers(0, 3)))
    elif kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "utf8":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc3"])) + data[at:]
    elif kind == "envelope":
        data = json.dumps({"oslo.version": "2.0", "oslo.message": data.decode()[: draw(st.integers(0, 200))]}).encode()
    return data


def verdict(data: bytes | str, *, model: bool = False) -> str:
    """What ``novawatch decode`` says (or the model's decoder, with ``model``): ok, warning, unknown or
    rejected, checking it is said properly."""
    try:
        n = MODEL_READER.decode(data) if model else decode(data)
    except UnknownEvent as exc:
        assert "\n" not in one_line(exc.event_type)
        return "unknown"
    except Rejected as exc:
        assert exc.reason and "\n" not in one_line(exc.reason), exc.reason
        one_line(exc.reason).encode("utf-8")  # printable as it will be printed
        return "rejected"
    warnings = warnings_of(n)
    assert all(w and "\n" not in one_line(w) for w in warnings)
    return "warning" if warnings else "ok"


# --- properties ----------------------------------------------------------------------------------------


@SETTINGS
@given(mutated())
def test_decoder_says_ok_warning_unknown_or_rejected_and_the_consumer_never_raises(data: bytes | str) -> None:
    said = verdict(data)
    said_by_model = verdict(data, model=True)
    consumer = Consumer(from_snapshot(simulation()[0]))
    outcome = consumer.process(data, "fuzz")
    if said_by_model == "rejected":
        assert outcome == REJECTED
        (letter,) = consumer.dead_letters
        assert letter.reason
        assert said == "rejected", "the model's decoder is never stricter than decode"
    else:
        # What the model's decoder accepts, the handlers apply without failing (never "cannot apply").
        assert outcome != REJECTED, list(consumer.dead_letters)
    assert consumer.cluster.store.check() == []
    assert consumer.process(instance("instance.create.end", UUIDS[0], when=1, mid="after")) == APPLIED


@SETTINGS
@given(st.lists(mutated(), min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_garbage_interleaved_with_a_valid_stream_changes_nothing(
    garbage: list[bytes | str], rng: random.Random
) -> None:
    initial, bodies, _truth = simulation()
    expected, applied = clean_model()
    bad = [doc for doc in garbage if verdict(doc, model=True) in ("rejected", "unknown")]
    rejected = sum(1 for doc in bad if verdict(doc, model=True) == "rejected")
    mixed: list[bytes | str] = list(bodies)
    for doc in bad:
        mixed.insert(rng.randrange(len(mixed) + 1), doc)

    consumer = Consumer(from_snapshot(initial))
    stats = consumer.process_all(mixed)

    assert (stats.applied, stats.rejected) == (applied, rejected)
    assert dumps(to_snapshot(consumer.cluster, reported=False)) == expected
    assert consumer.cluster.store.check() == []
    # And it keeps working: a new instance is applied after all that.
    assert consumer.process(instance("instance.create.end", UUIDS[999], when=1, mid="fresh")) == APPLIED


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(mutated(), min_size=10, max_size=30))
def test_the_command_line_takes_a_file_of_garbage(garbage: list[bytes | str]) -> None:
    """``novawatch decode`` prints one line per document, ``model replay`` applies the rest; no traceback."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    lines = [doc.encode("utf-8", "surrogatepass") if isinstance(doc, str) else doc for doc in garbage]
    lines = [line for line in lines if line.strip() and b"\n" not in line and b"\r" not in line]
    good = instance("instance.create.end", UUIDS[7], when=1, mid="good")
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "garbage.jsonl"
        stream.write_bytes(b"\n".join([good, *lines]) + b"\n")
        said = subprocess.run([sys.executable, "-m", "novawatch.cli", "decode", str(stream)], capture_output=True,
                              timeout=300, check=False)
        out = said.stdout.decode().splitlines()
        assert said.returncode in (0, 1) and b"Traceback" not in said.stderr, said.stderr[-2000:]
        assert len(out) == 1 + len(lines)
        assert out[0] == "ok instance.create.end InstanceCreatePayload 1.13"
        assert all(line.split(" ", 1)[0] in ("ok", "warning", "unknown", "rejected") for line in out)
        assert said.returncode == (1 if any(line.startswith("rejected ") for line in out) else 0)
        model = Path(tmp) / "model.json"
        replayed = subprocess.run([sys.executable, "-m", "novawatch.cli", "model", "replay", str(stream), "--out",
                                   str(model)], capture_output=True, timeout=300, check=False)
        assert replayed.returncode == 0 and b"Traceback" not in replayed.stderr, replayed.stderr[-2000:]
        uuids = [i["uuid"] for i in json.loads(model.read_bytes())["instances"]]
        assert UUIDS[7] in uuids
