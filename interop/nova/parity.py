"""Nova's notifications against novawatch's, step by step: the workload of ``workload.py`` run on novawatch's
compute service, compared with what Nova 34 emitted for the same steps (a ``runner.py`` capture).

For each step of the workload (setup included) the comparison looks at

(a) the ordered list of event types, versioned and legacy interleaved as they were emitted (each tagged
    ``V`` or ``L`` by its topic), aligned with :class:`difflib.SequenceMatcher`: a notification one side
    sends and the other does not is a difference;
(b) for each pair of aligned notifications, the payload's shape: for versioned payloads the object name,
    version and key set at every level (nested ``nova_object`` included), for legacy payloads the key set
    of every dict, and everywhere the type of each value (``null``, ``bool``, ``int``, ``float``, ``str``,
    ``list``, ``dict``; list items pairwise). Values themselves differ (ids, times, host names) and are not
    compared.

Each difference names the step and the notification's index in Nova's capture (``#seq``, its emission
order) and novawatch's index within the step. ``compute_node.*`` notifications are novawatch's own (the
hypervisor spec's, which Nova never shipped) and are left out.

The novawatch side is the compute service itself, driven as its Nova-compatible API drives it (a live
migration runs to completion, as ``os-migrateLive`` does), on an in-memory SQLite database with
``notification_format = both`` and ``notify_on_state_change = vm_and_task_state``, as the Nova cloud of
``runner.py`` is configured. Runs in novawatch's environment (imports novawatch).
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent

#: Differences novawatch keeps on purpose, by the text of the difference after its location, with the reason
#: (docs/compute.md explains each). Empty: novawatch sends what Nova sends.
KNOWN_DIFFERENCES: dict[str, str] = {}

#: Parts of Nova's payloads that are not compared beyond their type, with the reason (docs/compute.md).
OPAQUE: dict[str, str] = {
    "payload.request_spec.instance_properties.pci_requests": (
        "Nova's legacy request spec dumps the PCI requests object's internal state, request context included; "
        "its keys change with Nova's process state from one call to the next (_obj_instance_uuid, "
        "_enginefacade_context, db_connection and mq_connection as dicts or null), so only its type is compared"),
}

#: The hosts' capacity in Nova's functional cloud (the fake driver's): what the "huge" flavor cannot fit.
HOST_CAPACITY = {"vcpus": 1000, "memory_mb": 800000, "local_gb": 600000}


def _workload() -> ModuleType:
    name = "novawatch_interop_nova_workload"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "workload.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


# --- the workload on novawatch ------------------------------------------------------------------------


class NovawatchCloud:
    """novawatch's compute service with the hosts, flavors, images and volumes of the Nova cloud."""

    def __init__(self, ids: dict[str, dict[str, str]]) -> None:
        from novawatch.compute.clock import Ids, SimClock
        from novawatch.compute.repository import make_engine, upgrade
        from novawatch.compute.service import start_service
        from novawatch.notifications import NotificationFormat, Notifier
        from novawatch.notifications.drivers import MemoryDriver

        wl = _workload()
        self.memory = MemoryDriver()
        self.clock = SimClock()
        notifier = Notifier([self.memory], notification_format=NotificationFormat.BOTH, clock=self.clock.tick,
                            message_ids=Ids(1))
        self.engine = make_engine("sqlite://")
        upgrade(self.engine)
        self.svc = start_service(self.engine, notifier, clock=self.clock, ids=Ids(2))
        self.images = dict(ids.get("images", {}))
        self.flavors = {name: self.svc.create_flavor(name, vcpus=f["vcpus"], memory_mb=f["ram"], root_gb=f["disk"],
                                                      ephemeral_gb=f["ephemeral"], swap=f["swap"])
                        for name, f in wl.FLAVORS.items()}
        for host in wl.HOSTS:
            self.svc.create_service(host, **HOST_CAPACITY)
        self.volumes = {name: self.svc.create_volume(1).id for name in wl.VOLUMES if name != "boot"}
        self.servers: dict[str, str] = {}
        self.svc.commit()

    def close(self) -> None:
        self.svc.close(dispose=True)

    def run(self, steps: tuple[Any, ...]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(steps with their notification ranges, notifications as ``runner.py`` captures them)."""
        records: list[dict[str, Any]] = []
        out = []
        self.memory.clear()
        for step in steps:
            first = len(records)
            error = None
            try:
                self.do(step)
                self.svc.commit()
            except Exception as exc:  # reported as a difference of the step; the next steps still run
                self.svc.abort()
                error = f"{type(exc).__name__}: {exc}"
            for sent in self.memory.sent:
                message = json.loads(sent.body)
                versioned = isinstance(message.get("payload"), dict) and "nova_object.data" in message["payload"]
                topic = f"{'versioned_notifications' if versioned else 'notifications'}.{message['priority'].lower()}"
                records.append({"seq": len(records), "topic": topic, "message": message})
            self.memory.clear()
            out.append({**step.as_dict(), "first": first, "end": len(records), "error": error})
        return out, records

    def do(self, step: Any) -> None:
        svc, name, args = self.svc, step.server, step.args
        uuid = self.servers.get(name or "", "")
        action = step.action
        if action == "boot":
            flavor = self.flavors[args["flavor"]]
            kwargs: dict[str, Any] = {"host": step.host}
            if args.get("fails_once"):
                svc.failures.fail_next["boot"] = 1
            if args.get("volume"):
                kwargs["boot_volume_gb"] = flavor.root_gb or 1
            else:
                kwargs["image_ref"] = self.images.get(args.get("image") or "default",
                                                      "155d900f-4e14-4e4c-a73d-069cbf4541e6")
            inst = svc.boot(name, flavor, **kwargs)
            self.servers[name] = inst.uuid
            expected = "error" if args.get("fails") else "active"
            if inst.vm_state != expected:
                raise RuntimeError(f"step {step.name!r}: {name} is {inst.vm_state}, not {expected}")
        elif action == "resize":
            svc.resize(uuid, self.flavors[args["flavor"]])
        elif action == "migrate":
            svc.migrate(uuid, host=step.host)
        elif action == "live_migrate":
            if args.get("fails"):
                svc.failures.fail_next["live_migrate"] = 1
            block = args.get("block_migration")
            inst = svc.live_migrate(uuid, host=step.host, block_migration=None if block == "auto" else block)
            if inst.task_state == "migrating":  # what os-migrateLive does: the migration runs to its end
                svc.live_migration_complete(uuid)
        elif action in ("attach_volume", "detach_volume"):
            getattr(svc, action)(uuid, self.volumes[args["volume"]])
        elif action == "swap_volume":
            svc.swap_volume(uuid, self.volumes[args["volume"]], self.volumes[args["new_volume"]])
        elif action == "stop":
            svc.power_off(uuid)
        elif action == "start":
            svc.power_on(uuid)
        elif action == "reboot":
            svc.reboot(uuid, hard=bool(args.get("hard")))
        elif action == "lock":
            svc.lock(uuid, args.get("reason"))
        elif action == "rebuild":
            svc.rebuild(uuid, self.images[args["image"]])
        elif action == "evacuate":
            svc.evacuate(uuid, host=step.host)
        elif action == "host_down":
            svc.force_down_service(step.host, True)
        elif action == "host_up":
            svc.force_down_service(step.host, False)
        elif action == "disable_service":
            svc.disable_service(step.host, args.get("reason"))
        elif action == "enable_service":
            svc.enable_service(step.host)
        elif action in ("confirm_resize", "revert_resize", "shelve", "shelve_offload", "unshelve", "pause",
                        "unpause", "suspend", "resume", "rescue", "unrescue", "unlock", "soft_delete", "restore",
                        "delete"):
            getattr(svc, action)(uuid)
        else:
            raise ValueError(f"step {step.name!r}: no novawatch driver for {action!r}")


def run_novawatch(ids: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """The workload (setup and steps) on novawatch's compute service, as a capture-like dict."""
    wl = _workload()
    cloud = NovawatchCloud(ids or {})
    try:
        setup, records = cloud.run(wl.SETUP)
        for s in setup:
            s["phase"] = "setup"
        workload, more = cloud.run(wl.WORKLOAD)
    finally:
        cloud.close()
    offset = len(records)
    for s in workload:
        s.update(phase="workload", first=s["first"] + offset, end=s["end"] + offset)
    for r in more:
        r["seq"] += offset
    return {"steps": [*setup, *workload], "notifications": [*records, *more]}


# --- the comparison -------------------------------------------------------------------------------------


def _kind(record: dict[str, Any]) -> str:
    return "V" if str(record["topic"]).startswith("versioned_notifications.") else "L"


def _compared(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if not r["message"]["event_type"].startswith("compute_node.")]


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object" if "nova_object.data" in value else "dict"
    return type(value).__name__


def shape_differences(nova: Any, ours: Any, path: str = "payload") -> list[str]:
    """How the shape of ``ours`` differs from ``nova``'s (object names, versions, keys, value types)."""
    tn, to = _type(nova), _type(ours)
    if tn != to:
        return [f"{path}: Nova {tn} {_show(nova)}, novawatch {to} {_show(ours)}"]
    if path in OPAQUE:
        return []
    out: list[str] = []
    if tn == "object":
        for key in ("nova_object.name", "nova_object.version", "nova_object.namespace"):
            if nova.get(key) != ours.get(key):
                out.append(f"{path} {key.split('.')[1]}: Nova {nova.get(key)}, novawatch {ours.get(key)}")
        name = nova.get("nova_object.name", "?")
        out += shape_differences(nova["nova_object.data"], ours["nova_object.data"], f"{path}<{name}>")
    elif tn == "dict":
        missing, extra = sorted(set(nova) - set(ours)), sorted(set(ours) - set(nova))
        if missing:
            out.append(f"{path}: novawatch lacks {', '.join(missing)}")
        if extra:
            out.append(f"{path}: novawatch adds {', '.join(extra)}")
        for key in nova:
            if key in ours:
                out += shape_differences(nova[key], ours[key], f"{path}.{key}")
    elif tn == "list":
        # How many items there are is a value (addresses, tags); the items' shapes are compared pairwise.
        for i, (a, b) in enumerate(zip(nova, ours, strict=False)):
            out += shape_differences(a, b, f"{path}[{i}]")
    return out


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class StepResult:
    """One step compared: its notification counts and its differences."""

    name: str
    phase: str
    nova: int
    novawatch: int
    differences: list[str] = field(default_factory=list)


def compare_step(name: str, phase: str, nova: list[dict[str, Any]], ours: list[dict[str, Any]]) -> StepResult:
    """The differences between Nova's notifications of one step and novawatch's."""
    nova, ours = _compared(nova), _compared(ours)
    keys_n = [f"{_kind(r)} {r['message']['event_type']}" for r in nova]
    keys_o = [f"{_kind(r)} {r['message']['event_type']}" for r in ours]
    result = StepResult(name, phase, len(nova), len(ours))
    out = result.differences
    matcher = difflib.SequenceMatcher(a=keys_n, b=keys_o, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                where = f"#{nova[i]['seq']} (novawatch {j})"
                for line in shape_differences(nova[i]["message"]["payload"], ours[j]["message"]["payload"]):
                    out.append(f"{where} {keys_n[i]}: {line}")
            continue
        for i in range(i1, i2):
            at = f"novawatch {j1}" if j1 < len(ours) else "novawatch at the end"
            out.append(f"#{nova[i]['seq']} ({at}) {keys_n[i]}: Nova sends it, novawatch does not")
        for j in range(j1, j2):
            at = f"#{nova[i1]['seq']}" if i1 < len(nova) else "after Nova's last"
            out.append(f"{at} (novawatch {j}) {keys_o[j]}: novawatch sends it, Nova does not")
    return result


def compare(nova: dict[str, Any], ours: dict[str, Any]) -> list[StepResult]:
    """Every step of Nova's capture against the step of the same name in novawatch's run."""
    by_name = {s["name"]: s for s in ours["steps"]}
    results = []
    for step in nova["steps"]:
        mine = by_name.get(step["name"])
        if mine is None:
            results.append(StepResult(step["name"], step["phase"], step["end"] - step["first"], 0,
                                      ["novawatch did not run this step"]))
            continue
        result = compare_step(step["name"], step["phase"], nova["notifications"][step["first"]:step["end"]],
                              ours["notifications"][mine["first"]:mine["end"]])
        if mine.get("error"):
            result.differences.insert(0, f"novawatch failed the step: {mine['error']}")
        results.append(result)
    return results


def report(nova: dict[str, Any], ours: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parity report: per step counts and differences, the known differences apart, and the totals."""
    if ours is None:
        ours = run_novawatch(nova.get("ids"))
    steps = compare(nova, ours)
    unexplained: list[str] = []
    known: dict[str, str] = {}
    for s in steps:
        for line in s.differences:
            reason = next((r for k, r in KNOWN_DIFFERENCES.items() if k in line), None)
            if reason is None:
                unexplained.append(f"{s.name}: {line}")
            else:
                known[f"{s.name}: {line}"] = reason
    compared = sum(s.nova for s in steps)
    return {"steps": [{"name": s.name, "phase": s.phase, "nova": s.nova, "novawatch": s.novawatch,
                       "differences": s.differences} for s in steps],
            "notifications": {"nova": compared, "novawatch": sum(s.novawatch for s in steps)},
            "differences": unexplained, "known_differences": known}
