"""Runs INSIDE the python-watcher virtual environment: feeds Watcher's own compute data model a stream.

Usage: python runner.py --initial SNAPSHOT.json --stream STREAM.jsonl [--hypervisors SNAPSHOT.json] --out OUT.json

1. Builds Watcher's ``ModelRoot`` from a ``novawatch.model/1`` snapshot the way Watcher's collector
   builds it from Nova's API (``NovaModelBuilder``): every compute node, and the instances Nova lists
   per host (so instances without a host, and soft-deleted ones, which Nova hides from lists, are left out).
2. Delivers each notification through oslo.messaging's own ``NotificationDispatcher`` to Watcher's
   ``VersionedNotification`` endpoint: priorities and the publisher filter apply as in production.
3. Where Watcher would call Nova (a node it does not know), a stand-in answers from ``--hypervisors``
   (default: the initial snapshot), with no Placement service, as Watcher falls back to then.
4. Writes Watcher's instance -> host mapping, instance states and nodes as JSON.

Only the standard library and Watcher's own dependencies are imported here.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import warnings
from typing import Any


def _read_stream(path: str) -> list[dict[str, Any]]:
    messages = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            doc = json.loads(line)
            if "oslo.message" in doc:
                doc = json.loads(doc["oslo.message"])
            messages.append(doc)
    return messages


class _Incoming:
    """What oslo.messaging's dispatcher reads from a received message."""

    def __init__(self, message: dict[str, Any]) -> None:
        self.ctxt: dict[str, Any] = {}
        self.message = message


class _Collector:
    """The parts of ``NovaClusterDataModelCollector`` the notification endpoint touches."""

    def __init__(self, model: Any) -> None:
        self.cluster_data_model = model
        self.sync_lock = threading.Lock()


class _Placement:
    def get_inventories(self, rp_uuid: str) -> None:
        return None  # no Placement: Watcher falls back to the hypervisor's own capacity


class _Nova:
    """Answers ``NovaHelper``'s node lookups from a snapshot's nodes, as Nova's hypervisor API would."""

    def __init__(self, nodes: list[dict[str, Any]]) -> None:
        from watcher.common import nova_helper

        self.lookups = 0
        self._by_uuid = {}
        self._by_host = {}
        for n in nodes:
            hyp = nova_helper.Hypervisor(
                uuid=n["uuid"], hypervisor_hostname=n["hypervisor_hostname"], hypervisor_type="fake",
                state=n["state"], status=n["status"], vcpus=n["vcpus"], vcpus_used=n.get("vcpus_used", 0),
                memory_mb=n["memory_mb"], memory_mb_used=n.get("memory_mb_used", 0), local_gb=n["local_gb"],
                local_gb_used=n.get("local_gb_used", 0), service_host=n["host"], service_id=None,
                service_disabled_reason=n.get("disabled_reason"), servers=[],
            )
            self._by_uuid[n["uuid"]] = hyp
            self._by_host[n["host"]] = hyp

    def _get(self, table: dict[str, Any], key: str) -> Any:
        from watcher.common import exception

        self.lookups += 1
        try:
            return table[key]
        except KeyError:
            raise exception.ComputeNodeNotFound(name=key) from None

    def get_compute_node_by_hostname(self, host: str) -> Any:
        return self._get(self._by_host, host)

    def get_compute_node_by_uuid(self, uuid: str) -> Any:
        return self._get(self._by_uuid, uuid)


def build_model(initial: dict[str, Any]) -> Any:
    """Watcher's ModelRoot as its collector would build it from Nova's API for this snapshot."""
    from watcher.decision_engine.model import element, model_root

    model = model_root.ModelRoot()
    model.extended_attributes_enabled = False
    nodes = {}
    for n in initial["nodes"]:
        node = element.ComputeNode(
            uuid=n["uuid"], hostname=n["host"], memory=n["memory_mb"], memory_mb_reserved=0, memory_ratio=1.0,
            disk=n["local_gb"], disk_gb_reserved=0, disk_ratio=1.0, vcpus=n["vcpus"], vcpu_reserved=0,
            vcpu_ratio=1.0, state=n["state"], status=n["status"], disabled_reason=n.get("disabled_reason"),
        )
        model.add_node(node)
        nodes[n["host"]] = node
    for i in initial["instances"]:
        # Watcher lists servers per host; Nova's list hides soft-deleted servers.
        if i.get("host") not in nodes or i["state"] in ("deleted", "soft-delete"):
            continue
        inst = element.Instance(
            uuid=i["uuid"], name=i["display_name"], memory=i["memory_mb"], disk=i["disk_gb"], vcpus=i["vcpus"],
            state=i["state"], metadata={}, project_id=i["project_id"], locked=i.get("locked", False),
            host=i["host"], hypervisor_hostname=i.get("node") or i["host"], flavor_extra_specs={}, pinned_az="",
        )
        model.add_instance(inst)
        model.map_instance(inst, nodes[i["host"]])
    return model


def describe(model: Any) -> dict[str, Any]:
    """Instances (uuid -> mapped host, state, sizes) and nodes (uuid -> host, state, status) of the model."""
    from watcher.common import exception

    instances = {}
    for uuid, inst in sorted(model.get_all_instances().items()):
        try:
            host = model.get_node_by_instance_uuid(uuid).hostname
        except exception.ComputeResourceNotFound:
            host = None
        instances[uuid] = {
            "host": host, "state": inst.state, "locked": bool(inst.locked), "vcpus": inst.vcpus,
            "memory_mb": inst.memory, "disk_gb": inst.disk,
            "host_attribute": inst.host if inst.obj_attr_is_set("host") else None,
        }
    nodes = {
        uuid: {"host": node.hostname, "state": node.state, "status": node.status,
               "disabled_reason": node.disabled_reason}
        for uuid, node in sorted(model.get_all_compute_nodes().items())
    }
    return {"instances": instances, "nodes": nodes}


def run(initial: dict[str, Any], messages: list[dict[str, Any]], hypervisors: dict[str, Any]) -> dict[str, Any]:
    from oslo_messaging.notify import dispatcher
    from watcher.decision_engine.model.notification import nova

    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        # Watcher's imports reset the warning filters (eventlet, oslo): silence them again.
        warnings.simplefilter("ignore")
    model = build_model(initial)
    endpoint = nova.VersionedNotification(_Collector(model))
    stand_in = _Nova(hypervisors["nodes"])
    endpoint._nova = stand_in
    endpoint._placement_helper = _Placement()
    handled: dict[str, int] = {}
    seen_by_endpoint: dict[str, int] = {}
    original = endpoint.process_info

    def counting(ctxt: Any, publisher_id: str, event_type: str, payload: Any, metadata: Any) -> Any:
        seen_by_endpoint[event_type] = seen_by_endpoint.get(event_type, 0) + 1
        if event_type in endpoint.notification_mapping:
            handled[event_type] = handled.get(event_type, 0) + 1
        return original(ctxt, publisher_id, event_type, payload, metadata)

    endpoint.process_info = counting
    disp = dispatcher.NotificationDispatcher([endpoint], None)
    requeued = []
    for number, message in enumerate(messages, 1):
        result = disp.dispatch(_Incoming(message))
        if result == dispatcher.NotificationResult.REQUEUE:
            # A handler raised: oslo.messaging would redeliver it, and it would fail the same way.
            requeued.append({"line": number, "event_type": message.get("event_type")})
    out = describe(model)
    out["counts"] = {
        "notifications": len(messages),
        "delivered": sum(seen_by_endpoint.values()),
        "handled": sum(handled.values()),
        "handled_by_event": dict(sorted(handled.items())),
        "requeued": requeued,
        "nova_lookups": stand_in.lookups,
    }
    import watcher

    out["watcher_version"] = getattr(watcher, "__version__", None) or _dist_version()
    return out


def _dist_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("python-watcher")
    except Exception:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--initial", required=True)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--hypervisors", help="snapshot whose nodes Nova's API would return (default: --initial)")
    parser.add_argument("--out", help="output JSON (default stdout)")
    parser.add_argument("--verbose", action="store_true", help="show Watcher's own log")
    args = parser.parse_args(argv)
    # Watcher logs every event and a traceback for each node it cannot find: keep stdout clean.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.CRITICAL, stream=sys.stderr)
    if not args.verbose:
        # eventlet's deprecation and oslo's UUIDField warnings (project ids need not be UUIDs) are noise here.
        warnings.simplefilter("ignore")
    with open(args.initial, encoding="utf-8") as fh:
        initial = json.load(fh)
    hypervisors = initial
    if args.hypervisors:
        with open(args.hypervisors, encoding="utf-8") as fh:
            hypervisors = json.load(fh)
    result = run(initial, _read_stream(args.stream), hypervisors)
    text = json.dumps(result, indent=1, sort_keys=True) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
