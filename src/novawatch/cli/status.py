"""``novawatch model status``: where a running model service stands on the bus, and how far behind it is."""

from __future__ import annotations

import argparse
import json
from typing import Any

from novawatch.cli import CommandError
from novawatch.cli.config import add_config_options
from novawatch.cli.remote import add_url_option, get, model_url


def add_status_command(model_sub: Any) -> None:
    """``model status`` under the ``model`` group."""
    s = model_sub.add_parser("status", help="a model service's position on the bus, the bus's last, and its lag")
    add_url_option(s)
    s.add_argument("--json", action="store_true", help="print the JSON the service returned (GET /v1/bus)")
    s.add_argument("--max-behind", type=int, metavar="N",
                   help="exit 1 unless the service is at most N notifications behind (for scripts and probes)")
    add_config_options(s)
    s.set_defaults(func=model_status)


def _where(kind: str | None, value: int | None) -> str:
    if value is None:
        return "-"
    return f"offset {value}" if kind == "stream" else f"sequence {value}"


def lines(body: dict[str, Any]) -> list[str]:
    """``GET /v1/bus`` as the lines ``model status`` prints."""
    kind = body.get("kind")
    queue = body.get("queue") or "-"
    broker = f" on {body['broker']}" if body.get("broker") else ""
    out = [
        f"bus       {body.get('bus') or '-'}",
        f"queue     {queue} ({kind or 'unknown'}){broker}",
        f"applied   {_where(kind, body.get('position'))} ({body.get('applied', 0)} notifications applied since start)",
        f"last      {_where(kind, body.get('last'))}",
        f"behind    {'-' if body.get('behind') is None else body['behind']}",
        f"gaps      {body.get('gaps', 0)}",
    ]
    out.extend(checkpoint_lines(body.get("checkpoint")))
    if body.get("note"):
        out.append(f"note      {body['note']}")
    if body.get("problem"):
        out.append(f"problem   {body['problem']}")
    return out


def checkpoint_lines(status: dict[str, Any] | None) -> list[str]:
    """The checkpoint part of ``model status`` (nothing when the service keeps none)."""
    if not status:
        return []
    written = status.get("written")
    if written:
        size = f"{written['bytes'] / 1e6:.1f} MB" if written.get("bytes") is not None else "size unknown"
        line = (f"checkpoint {status['path']}: written {written['age_seconds']:.0f}s ago at "
                f"{_where(written.get('kind'), written.get('position'))}, {size}")
    else:
        line = f"checkpoint {status['path']}: none written yet (every {status['interval_seconds']:g}s)"
    out = [line]
    restored = status.get("restored")
    if restored:
        out.append(f"restored  from the checkpoint at {_where(restored.get('kind'), restored.get('position'))} "
                   f"({restored['age_seconds']:.0f}s ago), {restored['instances']} instances")
    if status.get("fallback"):
        out.append(f"bootstrap the checkpoint was not used: {status['fallback']}")
    if status.get("error"):
        out.append(f"problem   {status['error']}")
    return out


def model_status(args: argparse.Namespace) -> int:
    if args.max_behind is not None and args.max_behind < 0:
        raise CommandError(f"--max-behind {args.max_behind}: give how many notifications behind is acceptable, "
                           "0 or more")
    body = get(model_url(args), "/v1/bus")
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print("\n".join(lines(body)))
    if args.max_behind is not None:
        behind = body.get("behind")
        return 0 if behind is not None and behind <= args.max_behind else 1
    return 0
