"""``novawatch model hosts --fits``, ``model instance show --history`` and ``model top`` (drawn by cli/top.py):
the dashboard's questions from the command line, against a running model service."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from novawatch.cli import CommandError
from novawatch.cli.config import add_config_options
from novawatch.cli.remote import add_url_option, add_url_options, cell, get, model_url, pct


def add_commands(model_sub: Any) -> None:
    """``hosts``, ``instance show`` and ``top`` under ``novawatch model``."""
    h = model_sub.add_parser("hosts", help="hosts with room for an instance (a capacity query), most free RAM first")
    h.add_argument("--fits", metavar="VCPUS:RAM_MB:DISK_GB",
                   help="only hosts up and enabled with at least this much free, e.g. 4:8192:40")
    h.add_argument("--sort", default="-free_ram_mb",
                   help="host, free_ram_mb, free_vcpus, free_disk_gb, running_vms; '-' for descending "
                   "(default -free_ram_mb)")
    h.add_argument("--limit", type=int, default=20, help="at most this many rows (default 20)")
    h.add_argument("--offset", type=int, default=0, help="skip this many rows first")
    add_url_options(h)
    h.set_defaults(func=model_hosts)

    inst = model_sub.add_parser("instance", help="one instance: its record, and what happened to it")
    inst_sub = inst.add_subparsers(dest="instance_command", required=True, metavar="COMMAND")
    show = inst_sub.add_parser("show", help="an instance's record; --history: the notifications that changed it")
    show.add_argument("uuid", metavar="UUID")
    show.add_argument("--history", action="store_true", help="also what changed it, oldest first")
    add_url_options(show)
    show.set_defaults(func=instance_show)

    top = model_sub.add_parser("top", help="a live view: totals, rate, busiest hosts, recent notifications "
                               "(q or Ctrl-C to quit)")
    top.add_argument("--interval", type=float, default=1.0, help="seconds between redraws (default 1)")
    top.add_argument("--frames", type=int, default=0, help="stop after this many redraws (default: until q)")
    add_url_option(top)
    add_config_options(top)
    top.set_defaults(func=model_top)


def parse_fits(text: str) -> tuple[int, int, int]:
    """``4:8192:40`` -> (vCPUs, RAM MB, disk GB)."""
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise CommandError(f"--fits {text!r}: give VCPUS:RAM_MB:DISK_GB as three whole numbers, e.g. 4:8192:40")
    cpu, ram, disk = (int(p) for p in parts)
    return cpu, ram, disk


def model_hosts(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"sort": args.sort, "limit": args.limit, "offset": args.offset}
    title = "hosts"
    if args.fits:
        cpu, ram, disk = parse_fits(args.fits)
        params.update(fits=f"{cpu}:{ram}:{disk}", state="up", status="enabled")
        title = f"hosts up and enabled with {cpu} vCPU, {ram} MB RAM, {disk} GB disk free"
    body = get(model_url(args), "/v1/nodes", params)
    if args.json:
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(body['nodes'])} of {body['total']} {title}", title_justify="left")
    for column in ("host", "free vCPU", "free RAM MB", "free disk GB", "vCPU used", "RAM used", "disk used", "VMs",
                   "state", "status"):
        table.add_column(column, justify="left" if column in ("host", "state", "status") else "right",
                         no_wrap=column in ("host", "status"))
    for n in body["nodes"]:
        table.add_row(n["host"], str(n["free_vcpus"]), str(n["free_ram_mb"]), str(n["free_disk_gb"]),
                      pct(n["vcpus_used"], n["vcpus"]), pct(n["memory_mb_used"], n["memory_mb"]),
                      pct(n["local_gb_used"], n["local_gb"]), str(n["running_vms"]), n["state"], n["status"])
    Console(highlight=False).print(table)
    if not body["nodes"] and args.fits:
        print("no host has that much free; try a smaller size, or see `novawatch model hosts` for the most free")
    return 0


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def instance_show(args: argparse.Namespace) -> int:
    from novawatch.api.client import ServiceError, get_json

    url = model_url(args)
    record: dict[str, Any] | None = None
    try:
        record = get_json(url, f"/v1/instances/{args.uuid}")["instance"]
    except ServiceError as exc:
        if "HTTP 404" not in str(exc) or not args.history:
            if "HTTP 404" in str(exc):
                raise CommandError(f"no instance {args.uuid!r} in the model; search with `novawatch model instances` "
                                   "(or add --history for a deleted one)") from None
            raise CommandError(str(exc)) from None
    history = get(url, f"/v1/instances/{args.uuid}/history") if args.history else None
    if args.json:
        sys.stdout.write(json.dumps({"instance": record, "history": history}, indent=2) + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if record is not None:
        table = Table(title=f"instance {record['uuid']}", title_justify="left", show_header=False)
        table.add_column("field")
        table.add_column("value")
        for key, value in record.items():
            table.add_row(key, cell(value))
        console.print(table)
    else:
        console.print(f"instance {args.uuid} is no longer in the model (deleted); its history:")
    if history is not None:
        table = Table(title=f"{len(history['history'])} changes, oldest first"
                      + (" (older ones dropped)" if history["truncated"] else ""), title_justify="left")
        for column in ("when (UTC)", "event", "op", "what changed"):
            table.add_column(column)
        for entry in history["history"]:
            changes = entry["changes"]
            if entry["op"] == "add":
                what = ", ".join(f"{k}={cell(v[1])}" for k, v in changes.items()
                                 if k in ("host", "state", "power_state", "display_name", "memory_mb", "vcpus"))
            else:
                what = ", ".join(f"{k}: {cell(v[0])} -> {cell(v[1])}" for k, v in changes.items())
            table.add_row(_when(entry["at"]), entry["event_type"] or entry["cause"], entry["op"], what or "-")
        console.print(table)
    return 0


def model_top(args: argparse.Namespace) -> int:
    # rich and httpx load only for this command, so that a replay starts without them
    from novawatch.cli.top import model_top as run

    return run(args)
