"""Benchmark of the model service's checkpoints: the pause a write holds the event loop, write time, load time,
and restart-to-serving of ``novawatch model serve --checkpoint`` as a new process, against a full bootstrap
from a snapshot file measured in the same run.

Usage: ``.venv/bin/python bench/bench_checkpoint.py [--sizes 1000x10000,10000x100000] [--notifications N]``
(or ``./run bench bench_checkpoint``).

Each model is bootstrapped from a synthetic snapshot (as ``bench_model`` makes it), then ``--notifications``
are applied so that the checkpoint also holds tombstones and the recent message ids a busy service has.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_model import SAMPLES, StreamMaker, initial_snapshot

from novawatch.model import to_snapshot
from novawatch.model.live.checkpoints import Checkpoints
from novawatch.model.live.runtime import ModelRuntime
from novawatch.redact import mask
from novawatch.snapshot import dumps, read, write

BUS = "memory://bench-checkpoint"
IDENTITY = {"bus": mask(BUS), "queue": "novawatch-model", "source": None}  # what `model serve` below computes


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def restart_to_serving(path: Path, instances: int, tmp: Path) -> tuple[float, float]:
    """Seconds from starting ``model serve --checkpoint`` to it answering with the whole restored model, and the
    CPU seconds the process used until then (what the wall time would be on an idle machine, roughly)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HOME": str(tmp)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "novawatch.cli", "model", "serve", "--bus", BUS,
                             "--compute-url", "", "--checkpoint", str(path), "--checkpoint-interval", "0",
                             "--port", str(port), "--data-dir", str(tmp / "state")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"model serve exited with {proc.returncode}")
                try:
                    health = client.get("/v1/health").json()
                    if health["restored"] and health["instances"] == instances:
                        body = client.get("/v1/instances", params={"limit": 1}).json()
                        if body["total"] == instances:
                            return time.perf_counter() - started, cpu_seconds(proc.pid)
                    elif health["checkpoint"]["fallback"]:
                        raise RuntimeError(f"the checkpoint was not used: {health['checkpoint']['fallback']}")
                except httpx.TransportError:
                    pass
                time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(120)


def measure(hosts: int, instances: int, notifications: int, seed: int, repeat: int) -> dict[str, float]:
    snapshot = initial_snapshot(hosts, instances, seed)
    runtime = ModelRuntime()
    runtime.load(snapshot)
    stream = StreamMaker(hosts, instances, seed).stream(notifications, snapshot) if notifications else []
    runtime.consumer.process_all(stream)
    runtime.position, runtime.kind = len(stream), "stream"
    model = dumps(to_snapshot(runtime.cluster))
    out: dict[str, float] = {"instances": len(runtime.cluster.store.instances),
                             "recent_ids": len(runtime.consumer.recent),
                             "tombstones": len(runtime.cluster.dead_instances)}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        snap_path, path = tmp / "model.json", tmp / "model.checkpoint"
        write(snap_path, to_snapshot(runtime.cluster))

        # A full bootstrap from a snapshot file, the way the service loads a listing: parse, then load.
        best = float("inf")
        for _ in range(repeat):
            fresh = ModelRuntime()
            gc.collect()
            started = time.perf_counter()
            fresh.load(read(snap_path))
            best = min(best, time.perf_counter() - started)
            del fresh
        out["bootstrap_s"] = best

        writer = Checkpoints(runtime, path, identity=IDENTITY, interval=0)
        pause = total = float("inf")
        for _ in range(repeat):
            gc.collect()
            asyncio.run(writer.write())
            assert writer.error is None, writer.error
            pause = min(pause, writer.pause_seconds or 0.0)
            total = min(total, writer.write_seconds or 0.0)
        out.update(pause_s=pause, write_s=total, bytes=float(path.stat().st_size))

        best = float("inf")
        for attempt in range(repeat):
            fresh = ModelRuntime()
            loader = Checkpoints(fresh, path, identity=IDENTITY)
            gc.collect()
            started = time.perf_counter()
            assert asyncio.run(loader.load()) is not None, loader.fallback
            best = min(best, time.perf_counter() - started)
            if attempt == 0:
                assert dumps(to_snapshot(fresh.cluster)) == model, "the restored model differs"
                assert fresh.cluster.store.check() == []
            del fresh, loader
        out["load_s"] = best

        held = len(runtime.cluster.store.instances)
        runs = [restart_to_serving(path, held, tmp) for _ in range(repeat)]
        out["restart_s"] = min(wall for wall, _ in runs)
        out["restart_cpu_s"] = min(cpu for _, cpu in runs)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000x10000,10000x100000", help="HOSTSxINSTANCES,...")
    parser.add_argument("--notifications", type=int, default=200_000,
                        help="applied before the checkpoint (fills the recent message ids and the tombstones)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best is shown")
    args = parser.parse_args(argv)
    if args.notifications and not SAMPLES.is_dir():
        print(f"Nova's notification samples are needed at {SAMPLES}", file=sys.stderr)
        return 2
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times stretch with it; the "
          "restart's CPU seconds do not)")
    header = (f"{'hosts':>6} {'instances':>9} {'recent ids':>10} {'MB':>6} {'pause':>8} {'write':>8} {'load':>8} "
              f"{'restart':>8} {'(CPU)':>7} {'bootstrap':>10} {'load/boot':>9} {'restart/boot':>12}")
    print(header)
    print("-" * len(header))
    for size in args.sizes.split(","):
        hosts, instances = (int(x) for x in size.lower().split("x"))
        r = measure(hosts, instances, args.notifications, args.seed, args.repeat)
        print(f"{hosts:>6} {int(r['instances']):>9} {int(r['recent_ids']):>10} {r['bytes'] / 1e6:>6.1f} "
              f"{r['pause_s'] * 1000:>6.0f}ms {r['write_s']:>7.3f}s {r['load_s']:>7.3f}s {r['restart_s']:>7.3f}s "
              f"{r['restart_cpu_s']:>6.2f}s "
              f"{r['bootstrap_s']:>9.3f}s {r['load_s'] / r['bootstrap_s']:>8.2f}x "
              f"{r['restart_s'] / r['bootstrap_s']:>11.2f}x", flush=True)
    print("pause: the event loop held while the model is copied; write: copy, encode, fsync and rename (in a thread); "
          "load: read, verify and restore in process; restart: `model serve --checkpoint` from exec to serving the "
          "whole model (CPU: the seconds of CPU it used until then, start-up included); bootstrap: parse a "
          "snapshot file of the same model and load it in process. "
          "target: restart of 100,000 instances <= 2 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
