"""Benchmark of the compute data model: replay throughput, bootstrap time and memory per instance.

Usage: ``.venv/bin/python bench/bench_model.py [--sizes 1000x10000,10000x100000] [--notifications N] [--watcher]``

With ``--watcher`` each size is also replayed as a whole command (``novawatch model replay`` in a new
process, start-up and file I/O included, best of ``--repeat``), and Watcher 17's own data model is run on
the same stream (its first ``--watcher-notifications``; 0 for all of it) in the same run: the ratios of
novawatch's in-process rate and of its whole-command rate to Watcher's are printed. Watcher's whole run is
timed too (its process from start to exit: interpreter, imports, reading the files, bootstrap, the
notifications), so that the whole command is also compared with a whole run: with the same stream when
Watcher ran all of it, else with its start-up plus its measured rate over the whole stream (said so). Two
bounds that no Python replay can beat are timed as whole runs on the same stream (bench/replay_bounds.py):
scanning it with msgspec, and decoding it with the model's decoder without applying it; with the ratios to
Watcher's whole run that they leave at most.

The replay in process and the whole command are also given in CPU time, steadier than wall time on a
machine shared with other work. Both sides start from compiled bytecode, as an installed package does: pip
compiled Watcher's, and novawatch's command runs once first with a private ``PYTHONPYCACHEPREFIX`` (even
where ``PYTHONDONTWRITEBYTECODE`` is set), so that no run pays for compiling the sources.

Streams are generated synthetically (``novawatch simulate`` is far slower than the model at these sizes):
notifications built from Nova's published samples, in the proportions a busy cloud sends them — every
action is an ``instance.update`` plus its ``.start``/``.end`` pair, with instances moving between hosts,
resizing and attaching volumes, and compute nodes reporting usage and services changing now and then.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from novawatch.model import ClusterModel, Consumer, bootstrap
from novawatch.model.bootstrap import from_file, from_snapshot
from novawatch.notifications import decode
from novawatch.snapshot import InstanceRecord, NodeRecord, Snapshot, SnapshotSource, dumps, loads

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "reference" / "nova-notification-samples"

# (action, state after, power state after, moves host, new flavor, volume change)
ACTIONS = [
    ("pause", "paused", "paused"), ("unpause", "active", "running"),
    ("power_off", "stopped", "shutdown"), ("power_on", "active", "running"),
    ("suspend", "suspended", "suspended"), ("resume", "active", "running"),
    ("live_migration_post_dest", "active", "running"), ("resize_finish", "resized", "running"),
    ("resize_confirm", "active", "running"), ("volume_attach", "active", "running"),
    ("volume_detach", "active", "running"), ("reboot", "active", "running"), ("rebuild", "active", "running"),
]


def uuid(kind: int, i: int) -> str:
    return f"{kind:08x}-0000-4000-8000-{i:012d}"


def host(i: int) -> str:
    return f"host-{i:05d}"


def initial_snapshot(hosts: int, instances: int, seed: int) -> Snapshot:
    rng = random.Random(seed)
    nodes = [
        NodeRecord(uuid=uuid(2, i), host=host(i), hypervisor_hostname=host(i), vcpus=64, memory_mb=262144,
                   local_gb=4000)
        for i in range(hosts)
    ]
    insts = []
    for i in range(instances):
        h = host(rng.randrange(hosts))
        insts.append(InstanceRecord(
            uuid=uuid(1, i), host=h, node=h, project_id=f"project-{rng.randrange(200):04d}",
            display_name=f"server-{i}", state="active", power_state="running", vcpus=2, memory_mb=4096,
            disk_gb=40, volumes=[uuid(3, i)] if i % 3 == 0 else [],
        ))
    return Snapshot(nodes=nodes, instances=insts)


class StreamMaker:
    """Builds notification bytes from the samples, setting only what varies."""

    def __init__(self, hosts: int, instances: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.hosts = hosts
        self.instances = instances
        self.clock = 0
        self.count = 0
        self.templates: dict[str, dict[str, Any]] = {}

    def sample(self, name: str) -> dict[str, Any]:
        if name not in self.templates:
            self.templates[name] = json.loads((SAMPLES / f"{name}.json").read_text())
        return copy.deepcopy(self.templates[name])

    def finish(self, doc: dict[str, Any]) -> bytes:
        self.clock += 1
        self.count += 1
        seconds, micro = divmod(self.clock * 1000, 1_000_000)
        doc["timestamp"] = f"2026-01-01 {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{micro:06d}"
        doc["message_id"] = f"msg-{self.count}"
        return json.dumps(doc).encode()

    def instance(self, event: str, i: int, h: str, state: str, power: str, task: str | None, big: bool,
                 volumes: list[str]) -> bytes:
        name = event.replace(".", "-")
        doc = self.sample(name)
        data = doc["payload"]["nova_object.data"]
        data.update(uuid=uuid(1, i), host=h, node=h, state=state, power_state=power, task_state=task,
                    display_name=f"server-{i}")
        fl = data["flavor"]["nova_object.data"]
        fl["vcpus"], fl["memory_mb"], fl["root_gb"] = (4, 8192, 80) if big else (2, 4096, 40)
        bdm = {"nova_object.name": "BlockDevicePayload", "nova_object.namespace": "nova",
               "nova_object.version": "1.0"}
        data["block_devices"] = [
            {**bdm, "nova_object.data": {"boot_index": None, "delete_on_termination": False,
                                         "device_name": "/dev/vdb", "tag": None, "volume_id": v}}
            for v in volumes
        ]
        return self.finish(doc)

    def compute_node(self, h: int) -> bytes:
        used = self.rng.randrange(64)
        data = {
            "id": h, "uuid": uuid(2, h), "host": host(h), "vcpus": 64, "memory_mb": 262144, "local_gb": 4000,
            "vcpus_used": used, "memory_mb_used": used * 2048, "local_gb_used": used * 20, "running_vms": used,
            "hypervisor_type": "fake", "hypervisor_version": 1000, "hypervisor_hostname": host(h),
            "free_ram_mb": 0, "free_disk_gb": 0, "current_workload": 0, "disk_available_least": 0,
            "host_ip": "10.0.0.1",
        }
        doc = {"event_type": "compute_node.update", "priority": "INFO", "publisher_id": f"nova-compute:{host(h)}",
               "payload": {"nova_object.data": data, "nova_object.name": "ComputeNodePayload",
                           "nova_object.namespace": "nova", "nova_object.version": "1.0"}}
        return self.finish(doc)

    def service(self, h: int) -> bytes:
        doc = self.sample("service-update")
        doc["payload"]["nova_object.data"].update(host=host(h), disabled=self.rng.random() < 0.1)
        doc["publisher_id"] = f"nova-compute:{host(h)}"
        return self.finish(doc)

    def stream(self, count: int, snapshot: Snapshot) -> list[bytes]:
        rng = self.rng
        where = {int(r.uuid[-12:]): r.host or host(0) for r in snapshot.instances}
        out: list[bytes] = []
        while len(out) < count:
            roll = rng.random()
            if roll < 0.08:
                out.append(self.compute_node(rng.randrange(self.hosts)))
                continue
            if roll < 0.09:
                out.append(self.service(rng.randrange(self.hosts)))
                continue
            i = rng.randrange(self.instances)
            action, state, power = rng.choice(ACTIONS)
            h = where[i]
            if action == "live_migration_post_dest":
                h = where[i] = host(rng.randrange(self.hosts))
            big = action == "resize_finish"
            volumes = [uuid(3, i)] if action != "volume_detach" and i % 3 == 0 else []
            if action == "volume_attach":
                volumes.append(uuid(4, i))
            start = "instance.lock" if action == "reboot" else f"instance.{action}.start"
            out.append(self.instance("instance.update", i, h, "active", "running", "migrating", big, volumes))
            out.append(self.instance(start, i, h, "active", "running", None, big, volumes))
            out.append(self.instance(f"instance.{action}.end", i, h, state, power, None, big, volumes))
        return out[:count]


def measure(hosts: int, instances: int, notifications: int, seed: int, repeat: int = 3) -> dict[str, float]:
    snapshot = initial_snapshot(hosts, instances, seed)
    data = dumps(snapshot)

    # Bootstrap: from a parsed snapshot (the list a source returns) and from the file's bytes.
    gc.collect()
    started = time.perf_counter()
    cluster = ClusterModel()
    bootstrap(cluster, SnapshotSource(snapshot))
    list_seconds = time.perf_counter() - started
    del cluster
    # From the file, the way ``model replay --initial`` and the model service read it.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "initial.json"
        path.write_bytes(data)
        gc.collect()
        started = time.perf_counter()
        cluster = from_file(path)
        file_seconds = time.perf_counter() - started
    del cluster

    # Memory: everything the model holds after bootstrap (nodes, indexes, usage included), per instance.
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    cluster = from_snapshot(loads(data))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del cluster

    # Replay: decode + apply onto the bootstrapped model; decode alone for reference.
    # Best of ``repeat`` runs: the machine may be shared, and the best run is the one least disturbed.
    stream = StreamMaker(hosts, instances, seed).stream(notifications, snapshot)
    replay_seconds = decode_seconds = replay_cpu = float("inf")
    for _ in range(repeat):
        consumer = Consumer(from_snapshot(snapshot))
        gc.collect()
        started, cpu = time.perf_counter(), time.process_time()
        stats = consumer.process_all(stream)
        replay_seconds = min(replay_seconds, time.perf_counter() - started)
        # CPU time too: on a shared machine wall time measures the sharing as much as the code.
        replay_cpu = min(replay_cpu, time.process_time() - cpu)
        assert stats.rejected == 0, list(consumer.dead_letters)[:3]
        assert consumer.cluster.store.check() == []
        del consumer
        started = time.perf_counter()
        for doc in stream:
            decode(doc)
        decode_seconds = min(decode_seconds, time.perf_counter() - started)
    return {
        "replay_per_s": len(stream) / replay_seconds,
        "replay_per_cpu_s": len(stream) / replay_cpu,
        "decode_per_s": len(stream) / decode_seconds,
        "bootstrap_s": list_seconds,
        "bootstrap_file_s": file_seconds,
        "bytes_per_instance": held / instances,
        "applied": stats.applied,
        "notifications": len(stream),
        "mean_bytes": sum(map(len, stream)) / len(stream),
    }


WATCHER = "python-watcher==17.0.0"
DEFAULT_WATCHER_VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "novawatch" / "watcher-venv"


def watcher_python(venv: Path) -> Path:
    """The Python of a venv holding python-watcher, created (pip, from the package index) when missing."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import watcher.decision_engine.model.notification.nova"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    print(f"creating {venv} with {WATCHER} (once; takes a few minutes)", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", WATCHER], check=True)
    return python


def measure_watcher(python: Path, hosts: int, instances: int, count: int, seed: int, repeat: int = 1) -> dict[str, Any]:
    """Watcher's data model on the same kind of stream (its first ``count`` notifications), best of ``repeat``
    runs as novawatch's figures are: its best rate, and its shortest whole run and start-up."""
    snapshot = initial_snapshot(hosts, instances, seed)
    stream = StreamMaker(hosts, instances, seed).stream(count, snapshot)
    with tempfile.TemporaryDirectory(prefix="novawatch-bench-") as tmp:
        snap_path, stream_path = Path(tmp) / "initial.json", Path(tmp) / "stream.jsonl"
        snap_path.write_bytes(dumps(snapshot))
        stream_path.write_bytes(b"\n".join(stream) + b"\n")
        best: dict[str, Any] = {}
        for _ in range(repeat):
            started = time.perf_counter()
            proc = subprocess.run([str(python), str(Path(__file__).with_name("watcher_driver.py")), str(snap_path),
                                   str(stream_path)], capture_output=True, text=True, check=False)
            whole = time.perf_counter() - started
            if proc.returncode != 0:
                raise RuntimeError(f"Watcher's run failed: {proc.stderr[-2000:]}")
            result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
            # The process from exec to exit, and what of it was not applying notifications (interpreter,
            # imports, reading the files, bootstrap, exit): a whole run of Watcher, as the command is of novawatch.
            result["whole_s"] = whole
            result["startup_s"] = whole - result["seconds"]
            if not best:
                best = result
            else:
                if result["per_s"] > best["per_s"]:
                    best.update(per_s=result["per_s"], seconds=result["seconds"], errors=result["errors"])
                best["whole_s"] = min(best["whole_s"], whole)
                best["startup_s"] = min(best["startup_s"], result["startup_s"])
                best["bootstrap_s"] = min(best["bootstrap_s"], result["bootstrap_s"])
    return best


def watcher_whole_s(watcher: dict[str, Any], notifications: int) -> tuple[float, bool]:
    """Watcher's whole run over ``notifications``: measured when it ran that many, else its start-up plus
    that many at its measured rate; and whether it was measured."""
    if watcher["notifications"] >= notifications:
        return float(watcher["whole_s"]), True
    return float(watcher["startup_s"]) + notifications / float(watcher["per_s"]), False


def measure_command(hosts: int, instances: int, notifications: int, seed: int, repeat: int) -> dict[str, float]:
    """``novawatch model replay STREAM --initial SNAPSHOT --out MODEL`` as a user runs it: wall time of the
    whole process (interpreter start-up, imports, reading both files, writing the snapshot), best of ``repeat``."""
    snapshot = initial_snapshot(hosts, instances, seed)
    stream = StreamMaker(hosts, instances, seed).stream(notifications, snapshot)
    with tempfile.TemporaryDirectory(prefix="novawatch-bench-") as tmp:
        snap_path, stream_path, out = Path(tmp) / "initial.json", Path(tmp) / "stream.jsonl", Path(tmp) / "out.json"
        snap_path.write_bytes(dumps(snapshot))
        stream_path.write_bytes(b"\n".join(stream) + b"\n")
        command = [sys.executable, "-m", "novawatch.cli", "model", "replay", str(stream_path), "--initial",
                   str(snap_path), "--out", str(out), "--no-progress"]
        # Bytecode compiled once, into a folder of this run: what an installed package starts from.
        env = {**os.environ, "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        best, best_cpu = best_run(command, env, repeat, f"applied {len(stream)}")
        bounds = {f"{mode}_s": best_run([sys.executable, str(BOUNDS_SCRIPT), mode, str(stream_path)], env, repeat,
                                        str(len(stream)))[0]
                  for mode in ("scan", "decode")}
    return {"command_s": best, "command_per_s": len(stream) / best, "command_cpu_s": best_cpu, **bounds}


#: Two bounds no whole ``model replay`` can beat, timed as processes of their own: ``scan`` (msgspec finding
#: one field in each line) and ``decode`` (the model's decoder, nothing applied).
BOUNDS_SCRIPT = Path(__file__).with_name("replay_bounds.py")


def best_run(command: list[str], env: dict[str, str], repeat: int, expected: str) -> tuple[float, float]:
    """The shortest wall time and CPU time of ``repeat`` runs of ``command``, after one more that compiles the
    bytecode and is not counted; RuntimeError when a run fails or its output lacks ``expected``."""
    best = best_cpu = float("inf")
    for run in range(repeat + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0 or expected not in proc.stdout:
            raise RuntimeError(f"{' '.join(command[1:3])} failed: {proc.stdout[-500:]} {proc.stderr[-2000:]}")
        if run:
            best = min(best, elapsed)
            best_cpu = min(best_cpu, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return best, best_cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000x10000,10000x100000", help="HOSTSxINSTANCES,...")
    parser.add_argument("--notifications", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="replay runs per size; the best is shown")
    parser.add_argument("--watcher", action="store_true",
                        help=f"also run Watcher's own data model ({WATCHER}, in a separate venv) and print the ratio")
    parser.add_argument("--watcher-repeat", type=int, default=3,
                        help="Watcher runs per size; the best is shown, as for novawatch")
    parser.add_argument("--watcher-venv", type=Path, default=DEFAULT_WATCHER_VENV, help="where that venv lives")
    parser.add_argument("--watcher-notifications", type=int, default=1_000,
                        help="notifications Watcher applies per size (it is slow at scale); 0 for the whole stream")
    args = parser.parse_args(argv)
    if not SAMPLES.is_dir():
        print(f"Nova's notification samples are needed at {SAMPLES}", file=sys.stderr)
        return 2
    header = (f"{'hosts':>6} {'instances':>9} {'notifs':>7} {'avg B':>6} {'replay/s':>10} {'decode/s':>10} "
              f"{'bootstrap':>10} {'boot file':>10} {'B/instance':>10}")
    print(header)
    print("-" * len(header))
    python = watcher_python(args.watcher_venv) if args.watcher else None
    for size in args.sizes.split(","):
        hosts, instances = (int(x) for x in size.lower().split("x"))
        r = measure(hosts, instances, args.notifications, args.seed, args.repeat)
        print(f"{hosts:>6} {instances:>9} {int(r['notifications']):>7} {r['mean_bytes']:>6.0f} "
              f"{r['replay_per_s']:>10,.0f} {r['decode_per_s']:>10,.0f} {r['bootstrap_s']:>9.3f}s "
              f"{r['bootstrap_file_s']:>9.3f}s {r['bytes_per_instance']:>10.0f}", flush=True)
        print(f"{'':>6} replay per second of CPU: {r['replay_per_cpu_s']:,.0f}/s", flush=True)
        if python is not None:
            c = measure_command(hosts, instances, args.notifications, args.seed, args.repeat)
            print(f"{'':>6} novawatch model replay as a command: {c['command_s']:.3f}s for {int(r['notifications'])} "
                  f"({c['command_per_s']:,.0f}/s, start-up and file I/O included; {c['command_cpu_s']:.3f}s of CPU)",
                  flush=True)
            count = args.watcher_notifications or args.notifications
            w = measure_watcher(python, hosts, instances, count, args.seed, args.watcher_repeat)
            whole, measured = watcher_whole_s(w, int(r["notifications"]))
            print(f"{'':>6} Watcher 17: {w['per_s']:,.0f}/s over {w['notifications']} notifications "
                  f"({w['errors']} raised), bootstrap {w['bootstrap_s']:.2f}s; novawatch is "
                  f"{r['replay_per_s'] / w['per_s']:,.0f}x faster in process, "
                  f"{c['command_per_s'] / w['per_s']:,.0f}x as a whole command (against Watcher's rate in "
                  f"process)", flush=True)
            how = ("measured" if measured else
                   f"its start-up {w['startup_s']:.2f}s + {int(r['notifications'])} at its rate")
            print(f"{'':>6} whole run against whole run: Watcher {whole:.1f}s ({how}), novawatch "
                  f"{c['command_s']:.3f}s: {whole / c['command_s']:,.0f}x", flush=True)
            print(f"{'':>6} bounds on any Python replay of this stream, whole runs: scanning it {c['scan_s']:.3f}s "
                  f"(at most {whole / c['scan_s']:,.0f}x), decoding it with the model's decoder and applying "
                  f"nothing {c['decode_s']:.3f}s (at most {whole / c['decode_s']:,.0f}x)", flush=True)
    print("targets: replay >= 150,000/s at 100 hosts / 1,000 instances and flat across sizes; as a whole command "
          ">= 100x Watcher 17 (--watcher); bootstrap of 100,000 instances <= 1 s; <= 1,024 B/instance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
