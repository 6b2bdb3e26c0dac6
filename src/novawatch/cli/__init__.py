"""The ``novawatch`` command line: one module per command group, each adding its sub-commands."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from novawatch import __version__
from novawatch.logs import install_secret_filter

#: Modules under ``novawatch.cli`` that each define ``add_commands(subparsers)``.
COMMAND_MODULES = ["decode", "model", "compute", "simulate", "config", "tail", "demo"]


class CommandError(Exception):
    """An error to show the user as one line (say what to do next), exiting with ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="novawatch",
        description="Nova's notifications: a compute service that emits them, a bus, and a live data model.",
    )
    parser.add_argument("--version", action="version", version=f"novawatch {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"novawatch.cli.{name}").add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    install_secret_filter()  # a safety net: no password or token reaches the log, whoever logged it
    try:
        code: int = args.func(args)
    except CommandError as exc:
        print(f"novawatch {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    return code
