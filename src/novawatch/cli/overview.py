"""``novawatch model hosts --fits``, ``model instance show --history`` and ``model top``: the dashboard's
questions from the command line, against a running model service."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import sys
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from novawatch.cli import CommandError
from novawatch.cli.config import add_config_options
from novawatch.cli.remote import add_url_option, add_url_options, get, model_url, pct
from novawatch.redact import mask


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


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "[]"
    return str(value)


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
    console = Console(highlight=False)
    if record is not None:
        table = Table(title=f"instance {record['uuid']}", title_justify="left", show_header=False)
        table.add_column("field")
        table.add_column("value")
        for key, value in record.items():
            table.add_row(key, _value(value))
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
                what = ", ".join(f"{k}={_value(v[1])}" for k, v in changes.items()
                                 if k in ("host", "state", "power_state", "display_name", "memory_mb", "vcpus"))
            else:
                what = ", ".join(f"{k}: {_value(v[0])} -> {_value(v[1])}" for k, v in changes.items())
            table.add_row(_when(entry["at"]), entry["event_type"] or entry["cause"], entry["op"], what or "-")
        console.print(table)
    return 0


# --- top ----------------------------------------------------------------------------------------


def sse(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) of a server-sent event stream's lines."""
    event = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


class TopView:
    """What ``model top`` draws, from the summary ticks and the notifications of the watch stream."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.summary: dict[str, Any] | None = None
        self.busiest: list[dict[str, Any]] = []
        self.recent: deque[dict[str, Any]] = deque(maxlen=8)
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            notes = httpx.get(url + "/v1/notifications", params={"limit": 8}, timeout=10).json()["notifications"]
            self.recent.extend(notes)

    def take(self, event: str, data: str) -> bool:
        """Take one event; True when the view should be redrawn."""
        if event == "summary":
            self.summary = json.loads(data)
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                self.busiest = httpx.get(self.url + "/v1/nodes", params={"sort": "free_ram_mb", "limit": 8,
                                                                         "state": "up"}, timeout=10).json()["nodes"]
            return True
        if event == "notification":
            self.recent.appendleft(json.loads(data).get("data") or {})
        return False

    def render(self) -> Group:
        s = self.summary
        if s is None:
            return Group(Text("waiting for the first summary ..."))
        cap = s["capacity"]["schedulable"]
        model = s["model"]
        hosts = s["hosts"]
        head = Table(title=f"novawatch model top — {self.url} — seq {s['seq']}", title_justify="left")
        for column in ("", "capacity", "used", "free", "util"):
            head.add_column(column, justify="left" if not column else "right")
        for name, label in (("vcpus", "vCPU"), ("ram_mb", "RAM MB"), ("disk_gb", "disk GB")):
            c = cap[name]
            head.add_row(label, str(c["capacity"]), str(c["used"]), str(c["free"]), f"{100 * c['util']:.1f}%")
        rate = model["rate"]
        status = Text(
            f"hosts {hosts['total']} (up {hosts['up']}, down {hosts['down']}, disabled {hosts['disabled']}); "
            f"instances {s['instances']}; model {model['status']}: "
            f"{'-' if rate is None else f'{rate:.1f}'}/s applied, {model['applied']} applied, "
            f"{model['rejected']} rejected, lag {_value(model['lag_seconds'] and round(model['lag_seconds'], 2))} s, "
            f"drift {_value(model['drift'])}")
        busy = Table(title="busiest hosts (least free RAM)", title_justify="left")
        for column in ("host", "free RAM MB", "free vCPU", "RAM used", "VMs"):
            busy.add_column(column, justify="left" if column == "host" else "right", no_wrap=column == "host")
        for n in self.busiest:
            busy.add_row(n["host"], str(n["free_ram_mb"]), str(n["free_vcpus"]),
                         pct(n["memory_mb_used"], n["memory_mb"]), str(n["running_vms"]))
        notes = Table(title="recent notifications", title_justify="left")
        for column in ("received", "event", "outcome", "host", "instance"):
            notes.add_column(column)
        for n in self.recent:
            notes.add_row(str(n.get("received_at", ""))[11:19], str(n.get("event_type", "")),
                          str(n.get("outcome", "")), str(n.get("host") or "-"), str(n.get("instance") or "-"))
        return Group(head, status, busy, notes, Text("q or Ctrl-C to quit", style="dim"))


@contextlib.contextmanager
def _keys() -> Iterator[int | None]:
    """Single key presses from the terminal (its descriptor), or None when stdin is not one."""
    if not sys.stdin.isatty():
        yield None
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _quit_pressed(fd: int | None) -> bool:
    if fd is None:
        return False
    while select.select([fd], [], [], 0)[0]:
        key = os.read(fd, 1)
        if key in (b"q", b"Q", b"\x03", b""):
            return True
    return False


def model_top(args: argparse.Namespace) -> int:
    url = model_url(args)
    if not 0.5 <= args.interval <= 60:
        raise CommandError("--interval must be between 0.5 and 60 seconds")
    view = TopView(url)
    frames = 0
    console = Console(highlight=False)
    with _keys() as fd, Live(view.render(), console=console, auto_refresh=False, screen=False) as live:
        while True:
            try:
                with httpx.stream("GET", url + "/v1/watch", params={"summary": args.interval,
                                                                    "kinds": "notification"},
                                  timeout=httpx.Timeout(10, read=max(30, 3 * args.interval))) as resp:
                    if resp.status_code != 200:
                        raise CommandError(mask(f"{url}/v1/watch: HTTP {resp.status_code}: {resp.read()[:200]!r}"))
                    for event, data in sse(resp.iter_lines()):
                        if _quit_pressed(fd):
                            return 0
                        if view.take(event, data):
                            live.update(view.render(), refresh=True)
                            frames += 1
                            if args.frames and frames >= args.frames:
                                return 0
            except httpx.HTTPError as exc:
                if view.summary is None:
                    raise CommandError(mask(f"cannot reach {url}: {exc}; is the model service running? (start it "
                                            "with `novawatch model serve`, or pass --url)")) from None
                live.update(Group(view.render(), Text(f"reconnecting: {mask(str(exc))}", style="yellow")),
                            refresh=True)
                for _ in range(20):
                    if _quit_pressed(fd):
                        return 0
                    time.sleep(0.1)
            except KeyboardInterrupt:
                return 0
