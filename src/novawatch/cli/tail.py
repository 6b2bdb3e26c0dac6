"""``novawatch tail``: the live notification stream, pretty-printed, filtered by event type, host, instance.

Reads the bus (a consumer group of its own, so the model service misses nothing), or a stream file
(JSONL, either wire form), optionally following it as it grows like ``tail -f``.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from novawatch.cli import CommandError
from novawatch.cli.config import add_config_options, load_config
from novawatch.notifications.event import Publisher
from novawatch.notifications.message import unwrap

if TYPE_CHECKING:  # rich and asyncio are imported when tail runs, so that every other command starts faster
    from rich.text import Text

PRIORITY_STYLES = {"ERROR": "bold red", "CRITICAL": "bold red", "WARN": "yellow", "WARNING": "yellow",
                   "DEBUG": "dim", "AUDIT": "cyan", "SAMPLE": "dim", "INFO": "green"}


class Filters:
    """Event type globs (any matches), a host (glob; the payload's host or the publisher's), an instance."""

    def __init__(self, event_types: list[str], host: str | None, instance: str | None) -> None:
        self.event_types = event_types
        self.host = host
        self.instance = instance

    def match(self, doc: dict[str, Any]) -> bool:
        event_type = str(doc.get("event_type", ""))
        if self.event_types and not any(fnmatch.fnmatchcase(event_type, p) for p in self.event_types):
            return False
        data = payload_data(doc)
        if self.host is not None:
            hosts = {str(data.get("host") or ""), publisher_host(str(doc.get("publisher_id") or ""))}
            if not any(fnmatch.fnmatchcase(h, self.host) for h in hosts if h):
                return False
        if self.instance is not None:
            uuid = str(data.get("uuid") or data.get("instance_id") or "")
            if not uuid.startswith(self.instance):
                return False
        return True


def parse(line: bytes | str) -> dict[str, Any] | None:
    """One notification as a dict (the ``oslo.message`` envelope unwrapped); None when it is not JSON."""
    try:
        doc = json.loads(unwrap(line))
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def payload_data(doc: dict[str, Any]) -> dict[str, Any]:
    """The payload's fields: ``nova_object.data`` of a versioned payload, the payload itself otherwise."""
    payload = doc.get("payload")
    if isinstance(payload, dict):
        data = payload.get("nova_object.data", payload)
        if isinstance(data, dict):
            return data
    return {}


def publisher_host(publisher_id: str) -> str:
    """The host in a publisher id (``nova-compute:host-1``, ``compute.host-1``), "" when it names none."""
    try:
        return Publisher.parse(publisher_id).host
    except ValueError:
        return ""


def render(doc: dict[str, Any]) -> Text:
    """One line: time, priority, event type, publisher, and what the payload is about."""
    priority = str(doc.get("priority") or "-").upper()
    timestamp = str(doc.get("timestamp") or "")
    when = timestamp[11:26] if len(timestamp) >= 19 else timestamp or time.strftime("%H:%M:%S")
    from rich.text import Text

    line = Text()
    line.append(f"{when:<15} ", style="dim")
    line.append(f"{priority:<5} ", style=PRIORITY_STYLES.get(priority, ""))
    line.append(f"{doc.get('event_type', '?'):<40} ", style="bold")
    line.append(f"{doc.get('publisher_id', '-')} ", style="blue")
    data = payload_data(doc)
    uuid = data.get("uuid") or data.get("instance_id")
    if uuid:
        line.append(f"{str(uuid)[:8]} ", style="magenta")
    for key in ("display_name", "host", "state", "power_state", "task_state"):
        value = data.get(key)
        if value not in (None, ""):
            line.append(f"{key}={value} ", style="cyan" if key == "state" else "")
    for key in ("vcpus_used", "memory_mb_used", "local_gb_used", "running_vms", "disabled", "forced_down"):
        if key in data and data[key] is not None:
            line.append(f"{key}={data[key]} ")
    fault = data.get("fault") or data.get("exception")
    if isinstance(fault, dict):
        fd = fault.get("nova_object.data", fault)
        if isinstance(fd, dict):
            line.append(f"fault={fd.get('exception')}: {fd.get('exception_message')}", style="red")
    return line


def read_lines(stream: BinaryIO, follow: bool, interval: float = 0.2) -> Iterator[bytes]:
    """Lines of a binary stream; with ``follow``, wait for more at the end instead of stopping."""
    pending = b""
    while True:
        chunk = stream.readline()
        if chunk:
            pending += chunk
            if pending.endswith(b"\n"):
                yield pending
                pending = b""
            continue
        if not follow:
            if pending:
                yield pending
            return
        time.sleep(interval)


def add_commands(sub: Any) -> None:
    p = sub.add_parser("tail", help="the live notification stream, pretty-printed and filtered")
    p.add_argument("file", nargs="?", metavar="STREAM.jsonl",
                   help="read a stream file (JSONL; - for stdin) instead of the bus")
    p.add_argument("-f", "--follow", action="store_true", help="with a file: keep reading as it grows")
    p.add_argument("--bus", metavar="URL", help="bus URL (default: bus.url, or the embedded bus in data_dir)")
    p.add_argument("--group", default="novawatch-tail", help="consumer group on the bus (default novawatch-tail)")
    p.add_argument("-e", "--event-type", action="append", default=[], metavar="GLOB",
                   help="only these event types, e.g. 'instance.power_*' (repeatable)")
    p.add_argument("--host", metavar="GLOB", help="only notifications about this host (payload or publisher)")
    p.add_argument("--instance", metavar="UUID", help="only this instance (a uuid prefix is enough)")
    p.add_argument("--json", action="store_true", help="print the notifications as JSON lines, not pretty")
    p.add_argument("-n", "--count", type=int, metavar="N", help="stop after N matching notifications")
    add_config_options(p)
    p.set_defaults(func=run)


class _Printer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.filters = Filters(args.event_type, args.host, args.instance)
        self.as_json = args.json
        from rich.console import Console

        self.console = Console(highlight=False, soft_wrap=True)
        self.left = args.count
        self.bad = 0

    def show(self, body: bytes | str) -> bool:
        """Print one notification if it matches; False once ``--count`` is reached."""
        doc = parse(body)
        if doc is None:
            self.bad += 1
            if not self.as_json:
                text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
                from rich.text import Text

                self.console.print(Text(f"(not JSON) {text.strip()[:200]}", style="red"))
            return True
        if not self.filters.match(doc):
            return True
        if self.as_json:
            sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
            sys.stdout.flush()
        else:
            self.console.print(render(doc))
        if self.left is not None:
            self.left -= 1
            return bool(self.left > 0)
        return True


def run(args: argparse.Namespace) -> int:
    printer = _Printer(args)
    try:
        if args.file:
            return _tail_file(args, printer)
        import asyncio

        return asyncio.run(_tail_bus(args, printer))
    except KeyboardInterrupt:
        return 0


def _tail_file(args: argparse.Namespace, printer: _Printer) -> int:
    if args.file == "-":
        stream: Any = sys.stdin.buffer
    else:
        try:
            stream = Path(args.file).open("rb")  # noqa: SIM115 - closed below, after a possibly endless follow
        except OSError as exc:
            raise CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    try:
        for line in read_lines(stream, args.follow):
            if line.strip() and not printer.show(line):
                break
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    return 0


async def _tail_bus(args: argparse.Namespace, printer: _Printer) -> int:
    from novawatch.api.services import bus_url
    from novawatch.bus.base import BusError
    from novawatch.bus.factory import open_subscriber
    from novawatch.bus.url import mask_url

    config = load_config(args, {"bus": {"url": args.bus}})
    url = bus_url(config)
    try:
        # a passing consumer: on RabbitMQ its queue goes when it does, rather than filling up on Nova's broker
        subscriber = open_subscriber(url, group=args.group, queue_auto_delete=True)
        await subscriber.start()
    except (BusError, OSError) as exc:
        raise CommandError(f"cannot subscribe to {mask_url(url)}: {exc}; check --bus / bus.url") from None
    if not args.json:
        from rich.console import Console
        from rich.text import Text

        Console(stderr=True).print(Text(f"following {mask_url(url)} (group {args.group}); Ctrl-C to stop",
                                        style="dim"))
    try:
        async for delivery in subscriber:
            keep_going = printer.show(delivery.body)
            await delivery.ack()
            if not keep_going:
                break
    finally:
        with contextlib.suppress(Exception):
            await subscriber.close()
    return 0
