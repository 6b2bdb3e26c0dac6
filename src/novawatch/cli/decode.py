"""``novawatch decode``: validate notifications against the catalog, one line each."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from novawatch.notifications import Rejected, UnknownEvent, decode, take_warnings
from novawatch.notifications.timestamp import describe_ahead, seconds_ahead, sort_key
from novawatch.objects import NovaObject

EPILOG = """One line per notification:
  ok EVENT_TYPE PAYLOAD VERSION             accepted
  warning EVENT_TYPE PAYLOAD VERSION: WHY   accepted, with a note: an enum value this reader does not know
                                            (kept as text), or a timestamp too far ahead of the clock (the
                                            data model orders it by arrival)
  unknown EVENT_TYPE                        not in the catalog (the data model ignores it)
  rejected EVENT_TYPE: REASON               cannot be accepted (malformed, wrong type or range, unknown major
                                            version, a timestamp that is not a date-time in UTC's range)
Legacy payloads show as PAYLOAD with version '-'; an event type Nova sends in both formats is legacy when its
payload has no nova_object envelope. priority, message_id and timestamp may be absent.
Exit status: 1 if any notification was rejected, else 0 (warnings and unknown event types included)."""


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "decode", help="validate notifications (JSON files, JSONL or stdin) against the catalog",
        description="Validate notifications against the catalog (plain oslo.messaging dicts or their envelopes).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="JSON or JSONL files, or a folder of them; stdin if none")
    p.set_defaults(func=run)


def documents(files: list[str], stdin: TextIO) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) for every notification: a whole-file JSON document, or one per JSONL line."""
    paths: list[Path] = []
    for name in files:
        path = Path(name)
        paths.extend(sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path])
    if not files:
        yield from _split("<stdin>", stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode())
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            yield str(path), b""
            print(f"novawatch decode: cannot read {path}: {exc.strerror}", file=sys.stderr)
            continue
        yield from _split(str(path), data)


def _split(where: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    lines = [line for line in data.splitlines() if line.strip()]
    # One pretty-printed document spans many lines and its first line is not a whole object; JSONL's is.
    # Judging by the first line only keeps a truncated or broken line of a stream its own rejection.
    first = lines[0].strip() if lines else b""
    if len(lines) > 1 and first.startswith(b"{") and first.endswith(b"}"):
        for number, line in enumerate(lines, 1):
            yield f"{where}:{number}", line
    else:
        yield where, data


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """Text from the wire made safe for one output line: control characters and lone surrogates escaped."""
    text = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def warnings_of(timestamp: object) -> list[str]:
    """The warnings of the notification just decoded: its own, and a timestamp too far ahead of the clock."""
    warnings = take_warnings()
    if isinstance(timestamp, str):
        ahead = seconds_ahead(sort_key(timestamp))
        if ahead is not None:
            warnings.append(describe_ahead(timestamp, ahead))
    return warnings


def run(args: argparse.Namespace) -> int:
    rejected = 0
    out = sys.stdout
    for _where, data in documents(args.files, sys.stdin):
        try:
            n = decode(data)
        except UnknownEvent as exc:
            out.write(f"unknown {one_line(exc.event_type)}\n")
            continue
        except Rejected as exc:
            rejected += 1
            out.write(f"rejected {one_line(exc.event_type or '-')}: {one_line(exc.reason)}\n")
            continue
        payload = n.payload
        if isinstance(payload, NovaObject):
            head = f"{one_line(n.event_type)} {payload.name} {one_line(payload.version)}"
        else:
            head = f"{one_line(n.event_type)} {type(payload).__name__} -"
        warnings = warnings_of(n.timestamp)
        if warnings:
            out.write(f"warning {head}: {one_line('; '.join(warnings))}\n")
        else:
            out.write(f"ok {head}\n")
    return 1 if rejected else 0
