"""Runs Watcher's own compute data model on a novawatch stream; executed by bench_model.py in Watcher's venv.

Usage: ``python watcher_driver.py SNAPSHOT.json STREAM.jsonl [LIMIT]``; prints one JSON line with the rate.
It imports only python-watcher (and its dependencies), never novawatch, so it runs in a separate venv.
The model is built from the snapshot the way Watcher's collector would, and every notification goes through
``VersionedNotification.info`` (Watcher's oslo.messaging entry point) after ``json.loads``, as
oslo.messaging would hand it over.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import warnings
from typing import Any


def main() -> int:
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    from watcher.decision_engine.model import element, model_root
    from watcher.decision_engine.model.notification import nova

    snapshot_path, stream_path = sys.argv[1], sys.argv[2]
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
    with open(snapshot_path, "rb") as f:
        snapshot = json.load(f)
    root = model_root.ModelRoot()
    by_host = {}
    started = time.perf_counter()
    for n in snapshot["nodes"]:
        node = element.ComputeNode(
            uuid=n["uuid"], hostname=n["host"], memory=n["memory_mb"], disk=n["local_gb"], vcpus=n["vcpus"],
            state="up" if n["state"] == "up" else "down", status=n["status"], disabled_reason=n["disabled_reason"],
            memory_mb_reserved=0, disk_gb_reserved=0, vcpu_reserved=0, memory_ratio=1.0, vcpu_ratio=1.0,
            disk_ratio=1.0,
        )
        root.add_node(node)
        by_host[n["host"]] = node
    for i in snapshot["instances"]:
        inst = element.Instance(
            uuid=i["uuid"], name=i["display_name"], state=i["state"], memory=i["memory_mb"], disk=i["disk_gb"],
            vcpus=i["vcpus"], metadata={}, project_id=i["project_id"], locked=i["locked"], host=i["host"] or "",
            hypervisor_hostname=i["node"] or "",
        )
        root.add_instance(inst)
        if i["host"] in by_host:
            root.map_instance(inst, by_host[i["host"]])
    bootstrap = time.perf_counter() - started

    class Collector:
        cluster_data_model = root
        sync_lock = threading.Lock()

    endpoint = nova.VersionedNotification(Collector())
    with open(stream_path, "rb") as f:
        lines = [line for line in f if line.strip()]
    if limit is not None:
        lines = lines[:limit]
    errors = 0
    started = time.perf_counter()
    for line in lines:
        doc: dict[str, Any] = json.loads(line)
        try:
            endpoint.info({}, doc["publisher_id"], doc["event_type"], doc["payload"], {})
        except Exception:  # Watcher's own failures count, they do not stop the run
            errors += 1
    elapsed = time.perf_counter() - started
    print(json.dumps({"notifications": len(lines), "seconds": elapsed, "per_s": len(lines) / elapsed,
                      "errors": errors, "bootstrap_s": bootstrap}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
