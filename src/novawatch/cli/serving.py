"""What ``model serve`` and ``compute serve`` share: the bind options, the configuration from the command
line, and serving an app in the foreground until interrupted."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from novawatch.cli import CommandError
from novawatch.cli.config import load_config

if TYPE_CHECKING:  # annotations only: the commands that do not serve start without the configuration's imports
    from novawatch.config import Config, ServiceConfig

_T = TypeVar("_T")


def bind_options(p: argparse.ArgumentParser, default_port: int) -> None:
    """Where a service listens and what it uses: address, port, bus, data directory, token."""
    p.add_argument("--host", dest="bind_host", metavar="ADDRESS",
                   help="address to listen on (default 127.0.0.1; elsewhere, writes need the service's token)")
    p.add_argument("--port", type=int, metavar="PORT", help=f"port to listen on (default {default_port})")
    p.add_argument("--bus", metavar="URL", help="bus URL (default: the embedded bus in the data directory)")
    p.add_argument("--data-dir", metavar="DIR", help="where state lives (default .novawatch)")
    p.add_argument("--token", metavar="TOKEN",
                   help="the bearer token writes need (other users see a flag in `ps`: prefer the environment "
                   "variable NOVAWATCH_<SERVICE>_TOKEN or the config file)")


def service_config(args: argparse.Namespace, section: str, options: dict[str, Any]) -> Config:
    """The configuration with the bind options and ``options`` (the ``section``'s own) from the command line."""
    return load_config(args, {
        "general": {"data_dir": args.data_dir},
        "bus": {"url": args.bus},
        section: {"host": args.bind_host, "port": args.port, "token": args.token, **options},
    })


def build(factory: Callable[[], _T]) -> _T:
    """``factory()``, with a bind address that needs a token, a bus URL that is wrong, or a compute database that
    cannot be opened, as a command error."""
    from novawatch.api.common import BindError
    from novawatch.bus import BusError
    from novawatch.compute.repository import DatabaseError
    from novawatch.sources.errors import SourceError

    try:
        return factory()
    except (BindError, BusError, DatabaseError, SourceError) as exc:
        raise CommandError(str(exc)) from None


def serve(app: Any, service: ServiceConfig, *, name: str, detail: str, finish: Callable[[], None]) -> None:
    """Serve ``app`` until interrupted, saying where the ``name`` service listens once it does; then ``finish()``.

    A server that cannot start is a command error.
    """
    from novawatch.api.server import ServerError, limits, serve_forever

    host, port = service.host, service.port

    def listening(bound: int) -> None:  # port 0 is the system's choice: say which port it chose
        print(f"novawatch {name} on http://{host}:{bound}/ ({detail}); Ctrl-C to stop", flush=True)

    try:
        serve_forever(app, host, port, name=name, limits=limits(service), listening=listening)
    except ServerError as exc:
        raise CommandError(str(exc)) from None
    finally:
        finish()
