"""``novawatch demo``: the whole system in one process, on embedded defaults.

A compute service with a seeded cloud and a workload acting on it continuously, the embedded bus (in a
fresh temporary directory unless ``--data-dir`` is given), and the data model service with its
dashboard. Both services run their real HTTP APIs (each on its own thread and loop) and talk the way
two processes would: notifications over the bus, bootstrap and audit over HTTP. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from novawatch.cli import CommandError
from novawatch.cli.config import add_config_options, load_config

log = logging.getLogger("novawatch.demo")

READY_TIMEOUT = 120.0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("demo", help="the whole system in one process: seeded workload, embedded bus, dashboard")
    p.add_argument("--port", type=int, metavar="PORT",
                   help="dashboard/model service port (default model.port, 9322; 0 for any free port)")
    p.add_argument("--compute-port", type=int, default=0, metavar="PORT",
                   help="compute service port (default: any free port)")
    p.add_argument("--hosts", type=int, metavar="N", help="hosts in the seeded cloud (default demo.hosts, 12)")
    p.add_argument("--instances", type=int, metavar="N", help="instances booted first (default demo.instances)")
    p.add_argument("--seed", type=int, metavar="S", help="workload seed (default demo.seed)")
    p.add_argument("--rate", type=float, metavar="PER_SECOND", help="workload actions per second (default 4)")
    p.add_argument("--failure-rate", type=float, metavar="P", help="probability that an action fails")
    p.add_argument("--data-dir", metavar="DIR", help="keep state here (default: a temporary directory)")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop by itself after this long")
    add_config_options(p)
    p.set_defaults(func=run)


class _LiveClock:
    """Wall-clock time for the simulation; its ``advance`` (simulated waiting) does nothing."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def tick(self) -> datetime:
        return datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        pass


def _workload(sim: Any, rate: float) -> Any:
    """A coroutine factory running the simulation's seeded actions at ``rate`` per second, forever."""
    step = getattr(sim, "step", None) or sim._one  # the simulation's one-action step

    import asyncio  # here, not at the top: the other commands start without it

    async def run(service: Any) -> None:
        interval = 1.0 / rate if rate > 0 else 1.0
        while True:
            await asyncio.sleep(interval)
            if rate <= 0 or not service.recover():  # (no actions while the database is away)
                continue
            try:
                step()
            except Exception as exc:  # one bad action must not end the demo
                log.warning("workload action failed: %s", exc)
                with contextlib.suppress(Exception):
                    service.abort()
                continue
            with contextlib.suppress(Exception):  # (a failed commit is rolled back; the next action goes on)
                service.commit()

    return run


def run(args: argparse.Namespace) -> int:
    from novawatch.api.common import BindError
    from novawatch.api.server import ServerError, ServerThread, limits
    from novawatch.api.services import compute_service, model_service
    from novawatch.bus.url import default_url
    from novawatch.simulate import Config as SimConfig
    from novawatch.simulate import Simulation

    tmp: tempfile.TemporaryDirectory[str] | None = None
    if args.data_dir:
        data_dir = Path(args.data_dir)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="novawatch-demo-")
        data_dir = Path(tmp.name)
    config = load_config(args, {
        "general": {"data_dir": str(data_dir)},
        "model": {"port": args.port, "host": "127.0.0.1"},
        "compute": {"port": args.compute_port, "host": "127.0.0.1"},
        "demo": {"hosts": args.hosts, "instances": args.instances, "seed": args.seed, "rate": args.rate,
                 "failure_rate": args.failure_rate},
    })
    demo = config.demo
    data_dir.mkdir(parents=True, exist_ok=True)
    bus = default_url(data_dir)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    servers: list[ServerThread] = []
    sim: Any = None
    try:
        print(f"novawatch demo: building a cloud of {demo.hosts} hosts and {demo.instances} instances "
              f"(seed {demo.seed})...", flush=True)
        sim = Simulation(SimConfig(hosts=demo.hosts, instances=demo.instances, seed=demo.seed,
                                   notification_format=config.bus.notification_format,
                                   db_url=f"sqlite:///{(data_dir / 'compute.sqlite3').resolve()}"))
        # Live time instead of the simulation's reproducible clock: the dashboard shows real ages and lag.
        wall = _LiveClock()
        sim.clock = wall
        sim.service.clock = wall
        sim.notifier.clock = wall.tick
        sim.setup()
        sim.service.failures.rate = demo.failure_rate
        compute_app, _ = compute_service(config, bus=bus, service=sim.service,
                                         background=_workload(sim, demo.rate))
        compute = ServerThread(compute_app, "127.0.0.1", config.compute.port, name="compute",
                               limits=limits(config.compute)).start()
        servers.append(compute)
        config.model.compute_url = compute.url
        model_app, runtime = model_service(config, bus=bus)
        model = ServerThread(model_app, "127.0.0.1", config.model.port, name="model",
                             limits=limits(config.model)).start()
        servers.append(model)
        deadline = time.monotonic() + READY_TIMEOUT
        while runtime.state.bootstrapped_at is None:
            if time.monotonic() > deadline:
                raise CommandError(f"the model did not bootstrap within {READY_TIMEOUT:.0f}s: "
                                   f"{runtime.state.consumer_error or 'no error reported'}")
            time.sleep(0.05)
        print(f"novawatch demo: dashboard at {model.url}/", flush=True)
        print(f"  model API   {model.url}/docs   compute API {compute.url}/docs", flush=True)
        print(f"  state in {data_dir}; workload at {demo.rate:g} actions/s; Ctrl-C to stop", flush=True)
        stop.wait(args.duration)
    except (BindError, ServerError) as exc:
        raise CommandError(str(exc)) from None
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        print("novawatch demo: stopping...", file=sys.stderr, flush=True)
        for server in reversed(servers):
            server.stop()
        if sim is not None:
            with contextlib.suppress(Exception):
                sim.service.close()
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.cleanup()
    return 0
