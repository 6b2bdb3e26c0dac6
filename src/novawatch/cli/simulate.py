"""``novawatch simulate``: run the compute service embedded on a seeded workload and write its files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from novawatch import snapshot
from novawatch.cli import CommandError
from novawatch.cli.progress import add_progress_option, progress_bar, progress_console
from novawatch.notifications import NotificationFormat
from novawatch.notifications.drivers import Driver, JsonlDriver


def add_commands(sub: Any) -> None:
    p = sub.add_parser("simulate", help="run the compute service on a seeded workload; write stream, initial and truth")
    p.add_argument("--hosts", type=int, default=10, help="compute hosts at the start (default 10)")
    p.add_argument("--instances", type=int, default=20, help="instances booted before the actions (default 20)")
    p.add_argument("--actions", type=int, default=100, help="random actions to perform (default 100)")
    p.add_argument("--seed", type=int, default=0, help="the seed: same arguments, same files (default 0)")
    p.add_argument("--stream", metavar="OUT.jsonl", help="write every notification of the actions here (JSONL)")
    p.add_argument("--initial", metavar="OUT.json", help="write the model snapshot before the actions here")
    p.add_argument("--truth", metavar="OUT.json", help="write the snapshot of the database after the actions here")
    p.add_argument("--format", dest="notification_format", choices=[f.value for f in NotificationFormat],
                   default="both", help="notification_format: versioned, unversioned or both (default both)")
    p.add_argument("--failure-rate", type=float, default=0.0, metavar="P",
                   help="probability that an action's hypervisor/backend call fails (default 0)")
    p.add_argument("--mix", default="", metavar="ACTION=W,...", help="weights of actions, e.g. boot=5,delete=2")
    p.add_argument("--db", metavar="URL", help="database URL or SQLite path (default: a temporary SQLite file); "
                   "its compute tables are replaced")
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from novawatch.compute.repository import DatabaseError
    from novawatch.simulate import Config, Simulation, parse_mix

    if min(args.hosts, args.instances, args.actions) < 0 or args.hosts < 1:
        raise CommandError("--hosts must be at least 1; --instances and --actions at least 0")
    if not 0.0 <= args.failure_rate <= 1.0:
        raise CommandError("--failure-rate is a probability between 0 and 1")
    try:
        mix = parse_mix(args.mix)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    drivers: list[Driver] = []
    stream: JsonlDriver | None = None
    if args.stream:
        path = Path(args.stream)
        try:
            path.write_bytes(b"")  # the driver appends; each run starts the file afresh
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror}") from None
        stream = JsonlDriver(path)
        drivers.append(stream)
    config = Config(hosts=args.hosts, instances=args.instances, actions=args.actions, seed=args.seed,
                    failure_rate=args.failure_rate, mix=mix, notification_format=args.notification_format,
                    db_url=args.db)
    try:
        sim = Simulation(config, drivers)
    except DatabaseError as exc:
        raise CommandError(str(exc)) from None
    console = progress_console(args.progress)
    try:
        with progress_bar(console, "simulate: setup", args.hosts + args.instances) as advance:
            initial = sim.setup(progress=advance)
        if args.initial:
            snapshot.write(args.initial, initial)
        with progress_bar(console, "simulate: actions", args.actions) as advance:
            stats = sim.run(progress=advance)
        if args.truth:
            snapshot.write(args.truth, sim.truth())
    finally:
        if stream is not None:
            stream.close()
        sim.close()
    refused = sum(stats.refused.values())
    print(f"{stats.total_actions} actions ({refused} refused, {stats.faults} faults), "
          f"{stats.total_notifications} notifications", file=sys.stderr)
    return 0
