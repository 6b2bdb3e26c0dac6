"""``novawatch model replay`` and ``novawatch model audit``: the compute data model from the command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from novawatch.cli import CommandError
from novawatch.cli.decode import one_line
from novawatch.cli.progress import add_progress_option, counting, progress_bar, progress_console
from novawatch.model.apply import Consumer
from novawatch.model.audit import audit_snapshots, repair
from novawatch.model.bootstrap import from_file, from_snapshot
from novawatch.model.cluster import ClusterModel
from novawatch.model.export import to_snapshot
from novawatch.snapshot import SnapshotError, SnapshotSource, read, write

#: Dead letters printed after a replay (all are counted).
SHOWN_REJECTIONS = 20


def add_commands(sub: Any) -> None:
    p = sub.add_parser("model", help="the compute data model: replay a notification stream, audit a snapshot")
    model_sub = p.add_subparsers(dest="model_command", metavar="SUBCOMMAND", required=True)

    r = model_sub.add_parser("replay", help="apply a stream (JSONL) to a model and write the resulting snapshot")
    r.add_argument("stream", metavar="STREAM.jsonl", help="notifications, one per line (plain or oslo envelope)")
    r.add_argument("--initial", metavar="SNAPSHOT.json", help="bootstrap the model from this snapshot first")
    r.add_argument("--source", metavar="SNAPSHOT.json",
                   help="ask this snapshot about nodes and instances the model has never seen")
    r.add_argument("--out", metavar="MODEL.json", required=True, help="where to write the model's snapshot")
    r.add_argument("--reported", action="store_true",
                   help="add each node's last reported usage (key 'reported'); without it the snapshot has "
                   "exactly the keys of simulate --truth, so the two compare byte for byte")
    add_progress_option(r)
    r.set_defaults(func=replay)

    a = model_sub.add_parser("audit", help="compare a model snapshot with the source (a snapshot file)")
    a.add_argument("model", metavar="MODEL.json", help="the model's snapshot (as model replay writes it)")
    a.add_argument("--source", metavar="SNAPSHOT.json", required=True,
                   help="the truth to compare with (e.g. simulate --truth)")
    a.add_argument("--repair", metavar="FIXED.json", help="also write the model repaired from the source here")
    a.set_defaults(func=audit)

    # --- hook-in: `model serve/nodes/instances/show` live in novawatch.cli.serve (API/CLI engineer) ---
    from novawatch.cli.serve import add_model_commands
    from novawatch.cli.status import add_status_command

    add_model_commands(model_sub)
    add_status_command(model_sub)


def _read(path: str) -> Any:
    try:
        return read(path)
    except SnapshotError as exc:
        raise CommandError(f"{exc} (write one with `novawatch simulate --initial` or `model replay --out`)") from None


def replay(args: argparse.Namespace) -> int:
    source = SnapshotSource(_read(args.source)) if args.source else None
    if args.initial:
        try:
            cluster = from_file(args.initial, source)
        except SnapshotError as exc:
            raise CommandError(f"{exc} (write one with `novawatch simulate --initial`)") from None
    else:
        cluster = ClusterModel(source)
    consumer = Consumer(cluster)
    console = progress_console(args.progress)
    started = time.perf_counter()
    try:
        size = os.path.getsize(args.stream) if console is not None else None
        with progress_bar(console, "replay", size, in_bytes=True) as advance:
            if console is not None:
                # The bar counts the bytes of the notifications applied (replay_file calls self.process).
                consumer.process = counting(consumer.process, advance)  # type: ignore[method-assign]
            stats = consumer.replay_file(args.stream)
    except OSError as exc:
        raise CommandError(f"cannot read stream {args.stream}: {exc.strerror}") from None
    elapsed = time.perf_counter() - started
    try:
        write(args.out, to_snapshot(cluster, reported=args.reported))
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc.strerror}") from None
    print(stats.summary())
    rate = stats.total / elapsed if elapsed > 0 else 0.0
    store = cluster.store
    print(f"model: {len(store.nodes)} nodes, {len(store.instances)} instances; "
          f"{stats.total} notifications in {elapsed:.3f}s ({rate:,.0f}/s); wrote {args.out}")
    for letter in list(consumer.dead_letters)[:SHOWN_REJECTIONS]:
        print(f"rejected {one_line(letter.where)} {one_line(letter.event_type or '-')}: {one_line(letter.reason)}",
              file=sys.stderr)
    if consumer.dead_letters.total > SHOWN_REJECTIONS:
        print(f"... and {consumer.dead_letters.total - SHOWN_REJECTIONS} more rejected", file=sys.stderr)
    if consumer.last_note is not None:
        print(f"last note: {one_line(consumer.last_note)}", file=sys.stderr)
    return 0


def audit(args: argparse.Namespace) -> int:
    model = _read(args.model)
    truth = _read(args.source)
    drift = audit_snapshots(model, truth)
    for item in drift:
        print(item.describe())
    nodes = sum(1 for d in drift if d.kind == "node")
    print(f"{len(drift)} drifted ({nodes} nodes, {len(drift) - nodes} instances) "
          f"of {len(truth.nodes)} nodes and {len(truth.instances)} instances in the source")
    if args.repair:
        source = SnapshotSource(truth)
        cluster = from_snapshot(model)
        fixed = repair(cluster, source, drift)
        write(args.repair, to_snapshot(cluster))
        print(f"repaired {fixed}; wrote {args.repair}")
    return 1 if drift else 0
