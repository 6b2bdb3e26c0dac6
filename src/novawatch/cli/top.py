"""``novawatch model top``: a live view of a running model service, redrawn in place from its watch stream."""

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
from typing import Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from novawatch.cli import CommandError
from novawatch.cli.remote import cell, model_url, pct
from novawatch.redact import mask


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
            f"{model['rejected']} rejected, lag {cell(model['lag_seconds'] and round(model['lag_seconds'], 2))} s, "
            f"drift {cell(model['drift'])}")
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
