"""Actions/s of ``novawatch compute serve`` over HTTP on PostgreSQL: one plain process, then 2 and 4 workers.

    .venv/bin/python bench/bench_workers.py [--workers 1 2 4] [--hosts 20] [--actions 1500] [--clients 8]
                                            [--mix mixed|instance]

Each configuration gets a database of its own (in a private PostgreSQL cluster started with
``shared/scripts/postgres-ephemeral``, or ``--pg URL``) and a private RabbitMQ node
(``shared/scripts/rabbitmq-ephemeral``, or ``--bus URL``), and a real ``compute serve`` process:
``1`` is the plain single process (no ``--workers``, the anchor), others are ``--workers N``.
Set-up (not timed): ``--hosts`` hosts and 5 instances per host, booted over HTTP. Timed:
``--clients`` threads sending ``--actions`` actions in all (a fixed mix of power, pause, reboot,
metadata, boot and delete on random instances, or with ``--mix instance`` only the actions on one
instance, which several workers run side by side; a refusal such as 409 counts as an answered action),
then ``--reads`` GETs of single instances. The last column is the time until the outbox had relayed
every notification of the timed actions (the end-to-end rate to the bus); ``load`` is the machine's
1-minute load average when the timed actions ended (the clients, PostgreSQL and the workers share it);
``CPU ms per action`` is the CPU time the ``compute serve`` processes (parent and workers) used during the
timed actions, per action; ``machine busy`` the share of all cores' time that was not idle meanwhile;
``busiest worker`` the busiest worker's share of the workers' CPU time meanwhile. The kernel hands each
client's keep-alive connection to one worker when it connects, so with 8 clients the split is uneven and
differs from run to run (50 % with 2 workers is an even split; 90 % means one worker did nearly all the
work, with a worker's costs and without the parallelism): read actions/s with it.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

SCRIPTS = Path(__file__).resolve().parents[2] / "shared" / "scripts"
ACTIONS = ["power_off", "power_on", "pause", "unpause", "reboot", "metadata", "lock", "unlock"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ephemeral(script: str, key: str) -> tuple[str, str]:
    out = subprocess.run(["bash", str(SCRIPTS / script), "start"], capture_output=True, text=True, check=True).stdout
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return values[key], values["POSTGRES_EPHEMERAL_DIR" if script.startswith("postgres") else "RABBITMQ_EPHEMERAL_DIR"]


def wait(predicate: Any, what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def spread(n: int, clients: int, job: Any) -> Counter[int]:
    """Run ``job(client, rng, count)`` on ``clients`` threads sharing ``n`` calls; the statuses."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def one(i: int) -> None:
        rng = random.Random(i)
        with httpx.Client(timeout=120) as client:
            got = job(client, rng, n // clients + (1 if i < n % clients else 0))
        with lock:
            statuses.update(got)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def process_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) used so far by ``pid`` and by each of its children that are alive (the
    workers), by process id."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            used[int(entry)] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return used


def busiest_share(pid: int, before: dict[int, float], after: dict[int, float]) -> float:
    """The busiest worker's share of the workers' CPU time between two readings (1.0 with one process)."""
    spent = [after[p] - before.get(p, 0.0) for p in after if p != pid]
    return max(spent) / sum(spent) if spent and sum(spent) > 0 else 1.0


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


def run_one(workers: int, args: argparse.Namespace, pg: str, bus: str, tmp: Path) -> dict[str, Any]:
    import psycopg

    name = f"bench_workers_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    db = pg.rsplit("/", 1)[0] + f"/{name}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "novawatch.cli", "compute", "serve", "--port", str(port), "--database-url", db,
           "--bus", f"{bus}?exchange={name}", "--data-dir", str(tmp / name), "--hosts", str(args.hosts)]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    log = (tmp / f"{name}.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait(lambda: httpx.get(url + "/v1/health", timeout=10).status_code == 200, "compute serve")
        uuids: list[str] = []
        lock = threading.Lock()

        def boot(client: httpx.Client, rng: random.Random, count: int) -> Counter[int]:
            got: Counter[int] = Counter()
            for _ in range(count):
                resp = client.post(url + "/v1/instances",
                                   json={"name": f"b-{rng.randrange(10**6)}", "flavor": "m1.tiny"})
                got[resp.status_code] += 1
                if resp.status_code == 202:
                    with lock:
                        uuids.append(resp.json()["uuid"])
            return got

        spread(args.hosts * 5, args.clients, boot)
        wait(lambda: httpx.get(url + "/v1/health").json()["outbox"]["unsent"] == 0, "the set-up's notifications")

        def act(client: httpx.Client, rng: random.Random, count: int) -> Counter[int]:
            got: Counter[int] = Counter()
            for _ in range(count):
                roll = rng.random() if args.mix == "mixed" else 1.0
                if roll < 0.1:
                    resp = client.post(url + "/v1/instances", json={"name": f"a-{rng.randrange(10**6)}",
                                                                  "flavor": "m1.tiny"})
                elif roll < 0.15:
                    resp = client.delete(f"{url}/v1/instances/{rng.choice(uuids)}")
                else:
                    action = rng.choice(ACTIONS)
                    body = {"metadata": {"k": str(rng.randrange(100))}} if action == "metadata" else None
                    resp = client.post(f"{url}/v1/instances/{rng.choice(uuids)}/{action}", json=body)
                got[resp.status_code] += 1
            return got

        cpu_before, machine_before = process_cpu(proc.pid), machine_cpu()
        started = time.perf_counter()
        statuses = spread(args.actions, args.clients, act)
        acted = time.perf_counter() - started
        cpu_after = process_cpu(proc.pid)
        cpu_used = sum(cpu_after.values()) - sum(cpu_before.get(p, 0.0) for p in cpu_after)
        busiest = busiest_share(proc.pid, cpu_before, cpu_after) if workers > 1 else 1.0
        machine_after = machine_cpu()
        busy = (machine_after[0] - machine_before[0]) / max(machine_after[1] - machine_before[1], 1)
        load = os.getloadavg()[0]  # the 1-minute load average as the timed actions end
        wait(lambda: httpx.get(url + "/v1/health").json()["outbox"]["unsent"] == 0, "the outbox to drain")
        relayed = time.perf_counter() - started

        def read(client: httpx.Client, rng: random.Random, count: int) -> Counter[int]:
            got: Counter[int] = Counter()
            for _ in range(count):
                got[client.get(f"{url}/v1/instances/{rng.choice(uuids)}").status_code] += 1
            return got

        started = time.perf_counter()
        reads = spread(args.reads, args.clients, read)
        read_s = time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    errors = sum(n for s, n in statuses.items() if s >= 500) + sum(n for s, n in reads.items() if s >= 500)
    return {"workers": workers, "actions": sum(statuses.values()), "accepted": sum(n for s, n in statuses.items()
            if s < 300), "actions_per_s": sum(statuses.values()) / acted, "relayed_per_s": sum(statuses.values())
            / relayed, "reads_per_s": sum(reads.values()) / read_s, "errors": errors, "load": load,
            "cpu_ms": 1000 * cpu_used / max(sum(statuses.values()), 1), "busy": busy, "busiest": busiest}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4], help="1 is the plain single process")
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--actions", type=int, default=1500)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--mix", choices=["mixed", "instance"], default="mixed",
                        help="instance: only actions on one instance each (no boot, no delete)")
    parser.add_argument("--pg", default=os.environ.get("POSTGRES_URL"), help="PostgreSQL URL (default: start one)")
    parser.add_argument("--bus", help="RabbitMQ URL, oslo style (default: start a private node)")
    args = parser.parse_args()
    started: list[tuple[str, str]] = []
    pg, bus = args.pg, args.bus
    if pg is None:
        pg, where = ephemeral("postgres-ephemeral", "POSTGRES_URL")
        started.append(("postgres-ephemeral", where))
    if bus is None:
        bus, where = ephemeral("rabbitmq-ephemeral", "OSLO_TRANSPORT_URL")
        started.append(("rabbitmq-ephemeral", where))
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for workers in args.workers:
                row = run_one(workers, args, pg, bus, Path(tmp))
                rows.append(row)
                print(f"  workers {workers}: {row['actions_per_s']:7.0f} actions/s, {row['reads_per_s']:7.0f} reads/s",
                      file=sys.stderr)
    finally:
        for script, where in started:
            subprocess.run(["bash", str(SCRIPTS / script), "stop", where], capture_output=True, check=False)
    print(f"{args.hosts} hosts, {args.hosts * 5} instances at start, {args.clients} client threads, "
          f"{args.mix} actions")
    print("| compute serve | actions | accepted | actions/s | actions/s relayed to the bus | reads/s | 5xx | load "
          "| CPU ms per action | machine busy | busiest worker |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        label = "plain (one process)" if r["workers"] == 1 else f"--workers {r['workers']}"
        print(f"| {label} | {r['actions']} | {r['accepted']} | {r['actions_per_s']:,.0f} | {r['relayed_per_s']:,.0f} "
              f"| {r['reads_per_s']:,.0f} | {r['errors']} | {r['load']:.1f} | {r['cpu_ms']:.1f} "
              f"| {100 * r['busy']:.0f} % | {100 * r['busiest']:.0f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
