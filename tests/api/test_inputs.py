"""What the HTTP apps accept: strict JSON bodies, storable and printable text, integers in range."""

from __future__ import annotations

import pytest

from novawatch.api.inputs import MAX_DEPTH, body_problem, nova_name, printable, storable, strict_int


@pytest.mark.parametrize(("raw", "reason"), [
    (b'{"a": NaN}', "NaN"), (b'{"a": Infinity}', "Infinity"), (b'[-Infinity]', "Infinity"),
    (b'{"a": 1e400}', "number"), (b'{"a": -1e400}', "number"),
    (b'{"a": "\\ud800"}', "surrogate"), (b'{"a": "x\\udfff"}', "surrogate"), (b'["\\ude00\\ud83d"]', "surrogate"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested too deeply"),
    (b'{"a": 1', "not valid JSON"), (b"\xff", "not valid JSON"), (b"{'a': 1}", "not valid JSON"),
])
def test_bodies_that_are_refused(raw: bytes, reason: str) -> None:
    problem = body_problem(raw)
    assert problem is not None and reason in problem


@pytest.mark.parametrize("raw", [
    b'{"a": 1}', b'{"a": 1180591620717411303424}', b'{"a": "\\ud83d\\ude00"}', b'{"a": "NaN"}',
    b'{"a": 1.5e300}', b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, b'{"a": "\\u0000"}', b"null",
])
def test_bodies_that_are_strict_json(raw: bytes) -> None:
    assert body_problem(raw) is None  # (NUL is valid JSON: the fields that store text refuse it)


def test_text_checks_name_the_character() -> None:
    assert storable("tab\tand é") == "tab\tand é"
    with pytest.raises(ValueError, match=r"character 2 is U\+0000"):
        storable("a\x00")
    with pytest.raises(ValueError, match=r"U\+D800"):
        storable("\ud800")
    assert printable("Ünïcode name, with spaces") == "Ünïcode name, with spaces"
    for bad in ("a\tb", "line\nbreak", "\u2028", "zero\u200bwidth", "\x7f"):
        with pytest.raises(ValueError, match="not printable"):
            printable(bad)
    for bad in (" lead", "trail ", "\u3000ideographic"):
        with pytest.raises(ValueError, match="whitespace"):
            nova_name(bad)


def test_integers_are_integers() -> None:
    assert strict_int(5) == 5 and strict_int("512") == 512
    for bad in (True, False, 1.0, "1.5", "-1", "", "١٢", None, [1]):
        with pytest.raises(ValueError):
            strict_int(bad)
