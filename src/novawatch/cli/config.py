"""``novawatch config show``, and the configuration options every service command shares.

Commands that read the configuration take ``--config FILE`` and ``--set SECTION.KEY=VALUE``; their own
flags (``--port``, ``--bus``...) are the same kind of override, applied last.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from novawatch.cli import CommandError

if TYPE_CHECKING:  # imported by the commands that read it: the others (model replay, decode) start faster
    from novawatch.config import Config


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--set``, for any command that reads the configuration."""
    group = parser.add_argument_group("configuration (file < NOVAWATCH_<SECTION>_<KEY> < flags)")
    group.add_argument("--config", metavar="FILE", help="TOML configuration file (default: ./novawatch.toml, "
                       "then ~/.config/novawatch/config.toml; also $NOVAWATCH_CONFIG)")
    group.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override one setting, e.g. --set model.audit_interval=30 (repeatable)")


def load_config(args: argparse.Namespace, flags: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """The effective configuration for a command: file, environment, ``--set``, then the command's flags."""
    from novawatch.config import ConfigError, load, parse_overrides

    try:
        overrides = parse_overrides(getattr(args, "overrides", []) or [])
        for section, table in (flags or {}).items():
            for key, value in table.items():
                if value is not None:
                    overrides.setdefault(section, {})[key] = value
        config = load(getattr(args, "config", None), overrides=overrides)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    if not getattr(args, "verbose", 0):
        # -v/-vv on the command line beat general.log_level; without them the configured level applies.
        level = logging.getLevelName(config.general.log_level.upper())
        if isinstance(level, int):
            logging.getLogger().setLevel(level)
    return config


def add_commands(sub: Any) -> None:
    p = sub.add_parser("config", help="the effective configuration")
    config_sub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    show = config_sub.add_parser("show", help="print the effective configuration, secrets masked")
    add_config_options(show)
    show.add_argument("--format", choices=("toml", "json"), default="toml", help="output format (default toml)")
    show.set_defaults(func=show_config)


def show_config(args: argparse.Namespace) -> int:
    from novawatch.config import masked, to_toml

    config = load_config(args)
    tables = masked(config)
    if args.format == "json":
        sys.stdout.write(json.dumps(tables, indent=2) + "\n")
    else:
        sys.stdout.write(to_toml(tables))
    return 0
