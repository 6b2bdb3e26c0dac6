"""``novawatch model serve|nodes|instances|show`` and ``novawatch compute serve``.

The ``model`` and ``compute`` command groups belong to ``cli/model.py`` and ``cli/compute.py``; they call
:func:`add_model_commands` and :func:`add_compute_commands` to get these sub-commands. When a group does
not exist (yet), :func:`add_commands` creates it with just these.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

from novawatch.cli import CommandError
from novawatch.cli.config import add_config_options, load_config
from novawatch.cli.progress import StepBar, add_progress_option, progress_console
from novawatch.config import Config

_T = TypeVar("_T")


def add_commands(sub: Any) -> None:
    if "model" not in sub.choices:
        p = sub.add_parser("model", help="the compute data model service and its queries")
        add_model_commands(p.add_subparsers(dest="model_command", metavar="SUBCOMMAND", required=True))
    if "compute" not in sub.choices:
        p = sub.add_parser("compute", help="the compute service")
        add_compute_commands(p.add_subparsers(dest="compute_command", metavar="SUBCOMMAND", required=True))


def _bind_options(p: argparse.ArgumentParser, default_port: int) -> None:
    p.add_argument("--host", dest="bind_host", metavar="ADDRESS",
                   help="address to listen on (default 127.0.0.1; elsewhere, writes need the service's token)")
    p.add_argument("--port", type=int, metavar="PORT", help=f"port to listen on (default {default_port})")
    p.add_argument("--bus", metavar="URL", help="bus URL (default: the embedded bus in the data directory)")
    p.add_argument("--data-dir", metavar="DIR", help="where state lives (default .novawatch)")


def add_model_commands(model_sub: Any) -> None:
    """``model serve``, ``model nodes``, ``model instances``, ``model show`` under the ``model`` group."""
    s = model_sub.add_parser("serve", help="run the data model service (REST API, watch stream, dashboard)")
    _bind_options(s, 9322)
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
    s.add_argument("--audit-interval", type=float, metavar="SECONDS", help="seconds between audits (0: never)")
    s.add_argument("--node-refresh-interval", type=float, metavar="SECONDS",
                   help="seconds between re-reading nodes' capacity from the source (0: never; default 300)")
    add_progress_option(s)
    add_config_options(s)
    s.set_defaults(func=model_serve)

    def query_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", help="the model service (default http://MODEL_HOST:MODEL_PORT from the config)")
        p.add_argument("--json", action="store_true", help="print the JSON the service returned")
        p.add_argument("--limit", type=int, default=50, help="at most this many rows (default 50)")
        p.add_argument("--offset", type=int, default=0, help="skip this many rows first")
        add_config_options(p)

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
    show.add_argument("--url", help="the model service (default from the config)")
    show.add_argument("--json", action="store_true", help="print the JSON the service returned")
    add_config_options(show)
    show.set_defaults(func=model_show)


def add_compute_commands(compute_sub: Any) -> None:
    """``compute serve`` under the ``compute`` group."""
    s = compute_sub.add_parser("serve", help="run the compute service (REST API for the actions)")
    _bind_options(s, 8774)
    s.add_argument("--database-url", metavar="URL", help="SQLAlchemy URL (default SQLite in the data directory)")
    s.add_argument("--hosts", type=int, default=0, metavar="N",
                   help="on an empty database, start with N hosts (host-0001...)")
    s.add_argument("--failure-rate", type=float, metavar="P", help="probability that a hypervisor call fails")
    add_config_options(s)
    s.set_defaults(func=compute_serve)


# --- serving -------------------------------------------------------------------------------------


def _service_config(args: argparse.Namespace, section: str, options: dict[str, Any]) -> Config:
    """The configuration with the bind options and ``options`` (the ``section``'s own) from the command line."""
    return load_config(args, {
        "general": {"data_dir": args.data_dir},
        "bus": {"url": args.bus},
        section: {"host": args.bind_host, "port": args.port, **options},
    })


def _build(factory: Callable[[], _T]) -> _T:
    """``factory()``, with a bind address that needs a token as a command error."""
    from novawatch.api.common import BindError
    from novawatch.sources.errors import SourceError

    try:
        return factory()
    except (BindError, SourceError) as exc:
        raise CommandError(str(exc)) from None


def _serve(app: Any, host: str, port: int, *, name: str, detail: str, finish: Callable[[], None]) -> None:
    """Say where the ``name`` service listens, serve ``app`` until interrupted, then ``finish()``.

    A server that cannot start is a command error.
    """
    from novawatch.api.server import ServerError, serve_forever

    print(f"novawatch {name} on http://{host}:{port}/ ({detail}); Ctrl-C to stop", flush=True)
    try:
        serve_forever(app, host, port)
    except ServerError as exc:
        raise CommandError(str(exc)) from None
    finally:
        finish()


def model_serve(args: argparse.Namespace) -> int:
    from novawatch.api.services import model_service

    config = _service_config(args, "model", {
        "compute_url": args.compute_url, "audit_interval": args.audit_interval, "os_cloud": args.os_cloud,
        "os_region_name": args.os_region_name, "os_interface": args.os_interface,
        "os_compute_endpoint_override": args.os_compute_endpoint_override,
        "node_refresh_interval": args.node_refresh_interval,
    })
    bar = StepBar(progress_console(args.progress))
    app, runtime = _build(lambda: model_service(
        config, announce=lambda line: print(f"novawatch model service: {line}", flush=True), progress=bar))
    mc = config.model
    _serve(app, mc.host, mc.port, name="model service",
           detail=f"bus {runtime.state.bus}, source {runtime.state.source or 'none'}", finish=bar.close)
    return 0


def compute_serve(args: argparse.Namespace) -> int:
    from novawatch.api.services import bus_url, compute_service
    from novawatch.bus.url import mask_url

    config = _service_config(args, "compute", {"database_url": args.database_url,
                                               "failure_rate": args.failure_rate})
    app, service = _build(lambda: compute_service(config, hosts=args.hosts))
    cc = config.compute
    _serve(app, cc.host, cc.port, name="compute service",
           detail=f"{len(service.services)} hosts, bus {mask_url(bus_url(config))}", finish=service.close)
    return 0


# --- queries -------------------------------------------------------------------------------------


def _model_url(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url)
    mc = load_config(args).model
    host = "127.0.0.1" if mc.host in ("0.0.0.0", "::", "") else mc.host
    return f"http://{host}:{mc.port}"


def _get(url: str, path: str, params: dict[str, Any] | None = None) -> Any:
    from novawatch.api.client import ServiceError, get_json

    try:
        return get_json(url, path, params)
    except ServiceError as exc:
        raise CommandError(str(exc)) from None


def _pct(used: int, total: int) -> str:
    return f"{100 * used // total}%" if total else "-"


def _nodes_table(nodes: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("host", "state", "status", "vCPU used", "RAM used MB", "disk used GB", "free RAM MB",
                   "VMs", "uuid"):
        table.add_column(column, justify="right" if "used" in column or column in ("VMs", "free RAM MB") else "left")
    for n in nodes:
        table.add_row(
            n["host"], n["state"], n["status"],
            f"{n['vcpus_used']}/{n['vcpus']} ({_pct(n['vcpus_used'], n['vcpus'])})",
            f"{n['memory_mb_used']}/{n['memory_mb']} ({_pct(n['memory_mb_used'], n['memory_mb'])})",
            f"{n['local_gb_used']}/{n['local_gb']} ({_pct(n['local_gb_used'], n['local_gb'])})",
            str(n["free_ram_mb"]), str(n["running_vms"]), n["uuid"],
        )
    return table


def _instances_table(instances: list[dict[str, Any]], title: str) -> Table:
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
        Console(highlight=False).print(table)


def model_nodes(args: argparse.Namespace) -> int:
    params = {"min_free_ram_mb": args.min_free_ram_mb, "min_free_vcpus": args.min_free_vcpus,
              "min_free_disk_gb": args.min_free_disk_gb, "state": args.state, "status": args.status,
              "host": args.host, "project": args.project, "sort": args.sort, "limit": args.limit,
              "offset": args.offset}
    body = _get(_model_url(args), "/v1/nodes", params)
    shown = len(body["nodes"])
    title = f"{shown} of {body['total']} nodes" + (f" from {args.offset}" if args.offset else "")
    _print(args, body, _nodes_table(body["nodes"], title))
    return 0


def model_instances(args: argparse.Namespace) -> int:
    params = {"host": args.host, "project": args.project, "state": args.state, "power_state": args.power_state,
              "name": args.name, "sort": args.sort, "limit": args.limit, "offset": args.offset}
    body = _get(_model_url(args), "/v1/instances", params)
    title = f"{len(body['instances'])} of {body['total']} instances"
    _print(args, body, _instances_table(body["instances"], title))
    return 0


def model_show(args: argparse.Namespace) -> int:
    from novawatch.api.client import ServiceError, get_json

    url = _model_url(args)
    try:
        body = get_json(url, f"/v1/instances/{args.ident}")
        if args.json:
            _print(args, body, None)
        else:
            inst = body["instance"]
            Console(highlight=False).print(_instances_table([inst], f"instance {inst['uuid']}"))
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
        console = Console(highlight=False)
        console.print(_nodes_table([body["node"]], f"node {body['node']['host']}"))
        console.print(_instances_table(body["instances"], f"{len(body['instances'])} instances"))
    return 0
