"""``novawatch decode``: validate notifications against the catalog, one line each."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from novawatch.notifications import Rejected, UnknownEvent, decode


def add_commands(sub: Any) -> None:
    p = sub.add_parser("decode", help="validate notifications (JSON files, JSONL or stdin) against the catalog")
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


def run(args: argparse.Namespace) -> int:
    rejected = 0
    out = sys.stdout
    for _where, data in documents(args.files, sys.stdin):
        try:
            n = decode(data)
        except UnknownEvent as exc:
            out.write(f"unknown {exc.event_type}\n")
            continue
        except Rejected as exc:
            rejected += 1
            out.write(f"rejected {exc.event_type or '-'}: {exc.reason}\n")
            continue
        payload = n.payload
        name = getattr(payload, "name", type(payload).__name__)
        version = getattr(payload, "version", "-")
        out.write(f"ok {n.event_type} {name} {version}\n")
    return 1 if rejected else 0
