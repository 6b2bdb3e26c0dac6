"""``novawatch compute``: serve the compute service, its database (migrate, snapshot) and the action ->
notifications table."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from novawatch.cli import CommandError
from novawatch.cli.config import add_config_options
from novawatch.cli.serving import bind_options, build, serve, service_config


def add_commands(sub: Any) -> None:
    p = sub.add_parser("compute", help="the compute service's database and its notification table")
    csub = p.add_subparsers(dest="compute_command", metavar="SUBCOMMAND", required=True)

    up = csub.add_parser("db-upgrade", help="create or migrate the compute database to the newest schema")
    up.add_argument("--db", metavar="URL", required=True, help="database URL or SQLite path")
    up.set_defaults(func=run_upgrade)

    snap = csub.add_parser("snapshot", help="write the truth (a novawatch.model/1 snapshot) of a compute database")
    snap.add_argument("--db", metavar="URL", required=True, help="database URL or SQLite path")
    snap.add_argument("--out", metavar="OUT.json", help="output file (default stdout)")
    snap.set_defaults(func=run_snapshot)

    table = csub.add_parser("actions", help="print the table of action -> notifications (docs/actions.md)")
    table.set_defaults(func=run_actions)

    s = csub.add_parser("serve", help="run the compute service (REST API for the actions)")
    bind_options(s, 8774)
    s.add_argument("--database-url", "--db", metavar="URL",
                   help="database URL or SQLite path, as the other commands' --db (default SQLite in the data "
                   "directory)")
    s.add_argument("--hosts", type=int, default=0, metavar="N",
                   help="on an empty database, start with N hosts (host-0001...)")
    s.add_argument("--failure-rate", type=float, metavar="P", help="probability that a hypervisor call fails")
    s.add_argument("--workers", type=int, metavar="N",
                   help="processes serving the port (default 1); more than 1 needs a PostgreSQL --database-url")
    add_config_options(s)
    s.set_defaults(func=compute_serve)


def run_upgrade(args: argparse.Namespace) -> int:
    from novawatch.compute.repository import DatabaseError, database_errors, make_engine, upgrade
    from novawatch.redact import mask

    try:
        with database_errors(args.db, "migrate"):
            upgrade(make_engine(args.db))
    except DatabaseError as exc:
        raise CommandError(str(exc)) from None
    print(f"compute database at {mask(args.db)} is at the newest schema", file=sys.stderr)
    return 0


def run_snapshot(args: argparse.Namespace) -> int:
    from novawatch import snapshot
    from novawatch.compute.repository import DatabaseError, database_errors, require_schema
    from novawatch.compute.source import ComputeSource

    try:
        with database_errors(args.db, "read"):
            source = ComputeSource(args.db)
            require_schema(args.db, source.engine)
            snap = source.snapshot()
    except DatabaseError as exc:
        raise CommandError(str(exc)) from None
    if args.out:
        snapshot.write(args.out, snap)
    else:
        sys.stdout.buffer.write(snapshot.dumps(snap))
    return 0


def run_actions(args: argparse.Namespace) -> int:
    from novawatch.compute.sequences import document

    sys.stdout.write(document())
    return 0


def compute_serve(args: argparse.Namespace) -> int:
    from novawatch.api.services import bus_url, compute_service
    from novawatch.redact import mask

    config = service_config(args, "compute", {"database_url": args.database_url,
                                               "failure_rate": args.failure_rate, "workers": args.workers})
    cc = config.compute
    if cc.workers > 1:
        return _serve_workers(args, config)
    app, service = build(lambda: compute_service(config, hosts=args.hosts))
    serve(app, cc, name="compute service",
           detail=f"{len(service.services)} hosts, bus {mask(bus_url(config))}", finish=service.close)
    return 0


def _serve_workers(args: argparse.Namespace, config: Any) -> int:
    """``compute serve --workers N``: the schema migrated once here, then N forked workers on one port."""
    from novawatch.api.server import ServerError, Worker, limits, serve_workers
    from novawatch.api.services import bus_url, compute_service, database_url
    from novawatch.compute.repository import DatabaseError, database_errors, make_engine, upgrade
    from novawatch.redact import mask

    cc = config.compute
    url = database_url(config)
    try:
        with database_errors(url, "migrate"):
            engine = make_engine(url)
            try:
                if engine.dialect.name != "postgresql":
                    raise CommandError(f"--workers {cc.workers} needs PostgreSQL (--database-url postgresql://...): "
                                       f"the workers serialise their writes with its locks, and "
                                       f"{engine.dialect.name} takes one writer at a time; run one worker on it "
                                       "(--workers 1)")
                upgrade(engine)  # once, before the workers start (they would race each other for it)
            finally:
                engine.dispose()  # no connection crosses the fork
    except DatabaseError as exc:
        raise CommandError(str(exc)) from None

    def worker(index: int) -> Worker:
        app, service = compute_service(config, hosts=args.hosts, worker=index)
        # told to stop, the worker answers its requests waiting for a lock at once (503, nothing changed)
        return Worker(app, service.close, service.shared.stop_waiting)

    def listening(port: int) -> None:  # once bound: the port the system chose for --port 0
        print(f"novawatch compute service on http://{cc.host}:{port}/ ({cc.workers} workers, bus "
              f"{mask(bus_url(config))}); Ctrl-C to stop", flush=True)

    try:
        serve_workers(worker, cc.host, cc.port, cc.workers, name="compute service", limits=limits(cc),
                      listening=listening)
    except ServerError as exc:
        raise CommandError(str(exc)) from None
    return 0
