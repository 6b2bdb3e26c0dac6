"""What every command that asks a running model service shares: where it is, one GET, and the percent cell."""

from __future__ import annotations

import argparse
from typing import Any

from novawatch.cli import CommandError
from novawatch.cli.config import add_config_options, load_config


def add_url_options(p: argparse.ArgumentParser, *, json_help: str = "print the JSON the service returned") -> None:
    """``--url``, ``--json`` and the configuration options of a query command."""
    add_url_option(p)
    p.add_argument("--json", action="store_true", help=json_help)
    add_config_options(p)


def add_url_option(p: argparse.ArgumentParser) -> None:
    """``--url`` alone, for commands with no JSON output."""
    p.add_argument("--url", help="the model service (default http://MODEL_HOST:MODEL_PORT from the config)")


def model_url(args: argparse.Namespace) -> str:
    """``--url``, else the configured model service (a wildcard bind address is reached on loopback)."""
    if args.url:
        return str(args.url).rstrip("/")
    mc = load_config(args).model
    host = "127.0.0.1" if mc.host in ("0.0.0.0", "::", "") else mc.host
    return f"http://{host}:{mc.port}"


def get(url: str, path: str, params: dict[str, Any] | None = None) -> Any:
    """GET a JSON body; a failure becomes a :class:`CommandError` saying what went wrong."""
    # imported here so that commands which never call a service (replay) do not load httpx
    from novawatch.api.client import ServiceError, get_json

    try:
        return get_json(url, path, params)
    except ServiceError as exc:
        raise CommandError(str(exc)) from None


def pct(used: int, total: int) -> str:
    """A whole percent, or ``-`` for a figure with no capacity."""
    return f"{100 * used // total}%" if total else "-"


def cell(value: Any) -> str:
    """A JSON value as a table cell: ``-`` for null, a list comma-separated."""
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "[]"
    return str(value)
