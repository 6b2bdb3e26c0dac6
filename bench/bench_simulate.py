"""Speed of ``novawatch simulate``: actions/s and notifications/s on SQLite and PostgreSQL, 100 and 1,000 hosts.

    .venv/bin/python bench/bench_simulate.py [--actions N] [--pg URL]

Without ``--pg`` (or ``$POSTGRES_URL``) a private PostgreSQL cluster is started with
``shared/scripts/postgres-ephemeral`` and stopped afterwards. Each run sets up the cloud (hosts x 5
instances, not timed), then times ``--actions`` random actions with a 5% failure rate, notifications
in both formats written to a JSONL stream.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from novawatch.notifications.drivers import JsonlDriver
from novawatch.simulate import Config, Simulation

SCRIPT = Path(__file__).resolve().parents[2] / "shared" / "scripts" / "postgres-ephemeral"


def run_one(url: str | None, hosts: int, actions: int, workdir: Path) -> tuple[float, float, int, int]:
    stream = JsonlDriver(workdir / f"stream-{hosts}-{'pg' if url else 'sqlite'}.jsonl")
    sim = Simulation(Config(hosts=hosts, instances=hosts * 5, actions=actions, seed=1, failure_rate=0.05,
                            db_url=url), [stream])
    try:
        sim.setup()
        started = time.perf_counter()
        stats = sim.run()
        elapsed = time.perf_counter() - started
    finally:
        stream.close()
        sim.close()
    return stats.total_actions / elapsed, stats.total_notifications / elapsed, stats.total_actions, \
        stats.total_notifications


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", type=int, default=3000)
    parser.add_argument("--pg", default=os.environ.get("POSTGRES_URL"), help="PostgreSQL URL (default: start one)")
    parser.add_argument("--hosts", type=int, nargs="*", default=[100, 1000])
    args = parser.parse_args()
    pg_dir = None
    pg = args.pg
    if pg is None:
        out = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, check=True).stdout
        values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        pg, pg_dir = values["POSTGRES_URL"], values["POSTGRES_EPHEMERAL_DIR"]
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for backend, url in (("SQLite", None), ("PostgreSQL", pg)):
                for hosts in args.hosts:
                    aps, nps, n_actions, n_notes = run_one(url, hosts, args.actions, Path(tmp))
                    rows.append((backend, hosts, n_actions, n_notes, aps, nps))
                    print(f"  {backend:<10} {hosts:>5} hosts: {aps:8.0f} actions/s {nps:9.0f} notifications/s",
                          file=sys.stderr)
    finally:
        if pg_dir is not None:
            subprocess.run(["bash", str(SCRIPT), "stop", pg_dir], capture_output=True, check=False)
    print("| database | hosts | actions | notifications | actions/s | notifications/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for backend, hosts, n_actions, n_notes, aps, nps in rows:
        print(f"| {backend} | {hosts} | {n_actions} | {n_notes} | {aps:,.0f} | {nps:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
