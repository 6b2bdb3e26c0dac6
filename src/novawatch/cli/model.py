"""``novawatch model``: replay a stream and audit a snapshot offline; serve the data model; query a running one."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from novawatch.cli import CommandError, overview
from novawatch.cli.config import add_config_options
from novawatch.cli.decode import one_line
from novawatch.cli.progress import StepBar, add_progress_option, counting, progress_bar, progress_console
from novawatch.cli.remote import add_url_options, get, model_url, pct
from novawatch.cli.serving import bind_options, build, serve, service_config
from novawatch.cli.status import add_status_command
from novawatch.model.apply import Consumer
from novawatch.model.audit import audit_snapshots, repair
from novawatch.model.bootstrap import from_file, from_snapshot
from novawatch.model.cluster import ClusterModel
from novawatch.model.export import to_snapshot
from novawatch.snapshot import SnapshotError, SnapshotSource, read, write

if TYPE_CHECKING:  # rich is imported by the commands that draw tables: replay and audit start faster
    from rich.console import Console
    from rich.table import Table

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

    add_service_commands(model_sub)
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


def add_service_commands(model_sub: Any) -> None:
    """``model serve``, ``model nodes``, ``model instances``, ``model show`` under the ``model`` group."""
    s = model_sub.add_parser("serve", help="run the data model service (REST API, watch stream, dashboard)")
    bind_options(s, 9322)
    s.add_argument("--compute-url", metavar="URL",
                   help="where to bootstrap and audit from: novawatch's compute service or a Nova endpoint "
                   "such as http://nova:8774/v2.1 (default http://127.0.0.1:8774; '' for none)")
    s.add_argument("--os-cloud", metavar="NAME",
                   help="bootstrap and audit from this cloud of clouds.yaml, through Keystone (default: "
                   "$OS_CLOUD unless --compute-url is given)")
    s.add_argument("--os-region-name", metavar="REGION", help="the cloud's region (overrides clouds.yaml)")
    s.add_argument("--os-interface", metavar="INTERFACE", choices=("public", "internal", "admin"),
                   help="which catalog endpoint to use (overrides clouds.yaml)")
    s.add_argument("--os-compute-endpoint-override", metavar="URL",
                   help="Nova's endpoint, instead of the one in the catalog")
    s.add_argument("--compute-token", metavar="TOKEN",
                   help="the compute service's token, if it needs one (prefer NOVAWATCH_MODEL_COMPUTE_TOKEN)")
    s.add_argument("--audit-interval", type=float, metavar="SECONDS", help="seconds between audits (0: never)")
    s.add_argument("--node-refresh-interval", type=float, metavar="SECONDS",
                   help="seconds between re-reading nodes' capacity from the source (0: never; default 300)")
    s.add_argument("--checkpoint", metavar="FILE",
                   help="keep checkpoints of the model in FILE and restart from it instead of bootstrapping")
    s.add_argument("--checkpoint-interval", type=float, metavar="SECONDS",
                   help="seconds between checkpoints (default 60; one is also written on shutdown; 0: only then)")
    s.add_argument("--checkpoint-max-age", type=float, metavar="SECONDS",
                   help="bootstrap instead of using a checkpoint older than this (default 86400; 0: any age)")
    add_progress_option(s)
    add_config_options(s)
    s.set_defaults(func=model_serve)

    def query_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--limit", type=int, default=50, help="at most this many rows (default 50)")
        p.add_argument("--offset", type=int, default=0, help="skip this many rows first")
        add_url_options(p)

    n = model_sub.add_parser("nodes", help="a table of nodes from a running model service, filtered")
    n.add_argument("--min-free-ram-mb", type=int, metavar="MB")
    n.add_argument("--min-free-vcpus", type=int, metavar="N")
    n.add_argument("--min-free-disk-gb", type=int, metavar="GB")
    n.add_argument("--state", choices=("up", "down"))
    n.add_argument("--status", choices=("enabled", "disabled"))
    n.add_argument("--host", metavar="GLOB", help="host name or glob, e.g. 'host-00*'")
    n.add_argument("--project", metavar="ID", help="nodes hosting an instance of this project")
    n.add_argument("--sort", default="host",
                   help="host, free_ram_mb, free_vcpus, free_disk_gb, running_vms; descending: --sort=-free_ram_mb")
    query_options(n)
    n.set_defaults(func=model_nodes)

    i = model_sub.add_parser("instances", help="a table of instances from a running model service, filtered")
    i.add_argument("--host", metavar="GLOB")
    i.add_argument("--project", metavar="ID")
    i.add_argument("--state", metavar="STATE", help="active, stopped, paused, ...")
    i.add_argument("--power-state", metavar="STATE")
    i.add_argument("--name", metavar="GLOB")
    i.add_argument("--sort", default="uuid", help="uuid, display_name, host, memory_mb, vcpus; '-' for descending")
    query_options(i)
    i.set_defaults(func=model_instances)

    show = model_sub.add_parser("show", help="one node (by uuid or host) or instance (by uuid)")
    show.add_argument("ident", metavar="UUID", help="a node's uuid or host name, or an instance's uuid")
    add_url_options(show)
    show.set_defaults(func=model_show)
    overview.add_commands(model_sub)


# --- serving ------------------------------------------------------------------------------------


def model_serve(args: argparse.Namespace) -> int:
    from novawatch.api.services import model_service

    config = service_config(args, "model", {
        "compute_url": args.compute_url, "compute_token": args.compute_token, "audit_interval": args.audit_interval,
        "os_cloud": args.os_cloud, "os_region_name": args.os_region_name, "os_interface": args.os_interface,
        "os_compute_endpoint_override": args.os_compute_endpoint_override,
        "node_refresh_interval": args.node_refresh_interval, "checkpoint": args.checkpoint,
        "checkpoint_interval": args.checkpoint_interval, "checkpoint_max_age": args.checkpoint_max_age,
    })
    bar = StepBar(progress_console(args.progress))
    app, runtime = build(lambda: model_service(
        config, announce=lambda line: print(f"novawatch model service: {line}", flush=True), progress=bar))
    mc = config.model
    serve(app, mc, name="model service",
           detail=f"bus {runtime.state.bus}, source {runtime.state.source or 'none'}", finish=bar.close)
    return 0


# --- queries -------------------------------------------------------------------------------------


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def _nodes_table(nodes: list[dict[str, Any]], title: str) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("host", "state", "status", "vCPU used", "RAM used MB", "disk used GB", "free RAM MB",
                   "VMs", "uuid"):
        table.add_column(column, justify="right" if "used" in column or column in ("VMs", "free RAM MB") else "left")
    for n in nodes:
        table.add_row(
            n["host"], n["state"], n["status"],
            f"{n['vcpus_used']}/{n['vcpus']} ({pct(n['vcpus_used'], n['vcpus'])})",
            f"{n['memory_mb_used']}/{n['memory_mb']} ({pct(n['memory_mb_used'], n['memory_mb'])})",
            f"{n['local_gb_used']}/{n['local_gb']} ({pct(n['local_gb_used'], n['local_gb'])})",
            str(n["free_ram_mb"]), str(n["running_vms"]), n["uuid"],
        )
    return table


def _instances_table(instances: list[dict[str, Any]], title: str) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("name", "host", "state", "power", "task", "vCPU", "RAM MB", "disk GB", "project", "uuid"):
        table.add_column(column, justify="right" if column in ("vCPU", "RAM MB", "disk GB") else "left")
    for i in instances:
        table.add_row(i["display_name"], i["host"] or "-", i["state"], i["power_state"], i["task_state"] or "",
                      str(i["vcpus"]), str(i["memory_mb"]), str(i["disk_gb"]), i["project_id"], i["uuid"])
    return table


def _print(args: argparse.Namespace, body: Any, table: Table | None) -> None:
    if args.json or table is None:
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    else:
        _console().print(table)


def model_nodes(args: argparse.Namespace) -> int:
    params = {"min_free_ram_mb": args.min_free_ram_mb, "min_free_vcpus": args.min_free_vcpus,
              "min_free_disk_gb": args.min_free_disk_gb, "state": args.state, "status": args.status,
              "host": args.host, "project": args.project, "sort": args.sort, "limit": args.limit,
              "offset": args.offset}
    body = get(model_url(args), "/v1/nodes", params)
    shown = len(body["nodes"])
    title = f"{shown} of {body['total']} nodes" + (f" from {args.offset}" if args.offset else "")
    _print(args, body, _nodes_table(body["nodes"], title))
    return 0


def model_instances(args: argparse.Namespace) -> int:
    params = {"host": args.host, "project": args.project, "state": args.state, "power_state": args.power_state,
              "name": args.name, "sort": args.sort, "limit": args.limit, "offset": args.offset}
    body = get(model_url(args), "/v1/instances", params)
    title = f"{len(body['instances'])} of {body['total']} instances"
    _print(args, body, _instances_table(body["instances"], title))
    return 0


def model_show(args: argparse.Namespace) -> int:
    from novawatch.api.client import ServiceError, get_json

    url = model_url(args)
    try:
        body = get_json(url, f"/v1/instances/{args.ident}")
        if args.json:
            _print(args, body, None)
        else:
            inst = body["instance"]
            _console().print(_instances_table([inst], f"instance {inst['uuid']}"))
            if inst["volumes"]:
                print("volumes: " + ", ".join(inst["volumes"]))
        return 0
    except ServiceError as exc:
        if "HTTP 404" not in str(exc):
            raise CommandError(str(exc)) from None
    try:
        body = get_json(url, f"/v1/nodes/{args.ident}")
    except ServiceError as exc:
        if "HTTP 404" in str(exc):
            raise CommandError(f"no node or instance {args.ident!r} in the model; find one with "
                               "`novawatch model nodes` or `novawatch model instances`") from None
        raise CommandError(str(exc)) from None
    if args.json:
        _print(args, body, None)
    else:
        console = _console()
        console.print(_nodes_table([body["node"]], f"node {body['node']['host']}"))
        console.print(_instances_table(body["instances"], f"{len(body['instances'])} instances"))
    return 0
