"""Interoperability check: Watcher's own compute data model versus novawatch's, on the same stream.

    .venv/bin/python interop/watcher/check.py [--hosts 6 --instances 30 --actions 400 --seed 1]
    .venv/bin/python interop/watcher/check.py --initial I.json --stream S.jsonl [--truth T.json]

1. Creates (once, cached under ``.venv-watcher/<version>``) a separate virtual environment with
   ``python-watcher==<version>`` from PyPI.
2. Without ``--stream``, runs ``novawatch simulate`` to write an initial snapshot, a stream and the truth.
3. Runs ``runner.py`` inside that environment: Watcher's ``VersionedNotification`` endpoint applies the
   stream to a Watcher model built from the initial snapshot; it prints Watcher's instance -> host
   mapping and instance states as JSON.
4. Replays the same stream into novawatch's model and reports every difference, each with its kind
   and the reason (the kinds are explained in docs/openstack.md).

Exit status: 0 when the check ran (differences are expected and explained), 1 when a difference has no
known explanation (kind ``unexplained``) or with ``--strict`` when there is any, 2 on a setup failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:  # run as a script: interop.venvs is found from the repository's root
    sys.path.insert(0, str(REPO))
from interop.venvs import SetupError, cached, run  # noqa: E402

WATCHER_VERSION = "17.0.0"
RUNNER = HERE / "runner.py"

#: Watcher 17's ``VersionedNotification.notification_mapping`` (watcher/decision_engine/model/notification/nova.py).
WATCHER_EVENTS = frozenset({
    "instance.create.end", "instance.lock", "instance.unlock", "instance.pause.end", "instance.power_off.end",
    "instance.power_on.end", "instance.resize_confirm.end", "instance.restore.end", "instance.resume.end",
    "instance.shelve.end", "instance.shutdown.end", "instance.suspend.end", "instance.unpause.end",
    "instance.unrescue.end", "instance.unshelve.end", "instance.rebuild.end", "instance.rescue.end",
    "instance.update", "instance.live_migration_force_complete.end", "instance.live_migration_post_dest.end",
    "instance.delete.end", "instance.soft_delete.end", "service.create", "service.delete", "service.update",
})


# --- the Watcher virtual environment ---------------------------------------------------------------


def venv_dir(version: str = WATCHER_VERSION, root: Path | None = None) -> Path:
    """Where the environment for ``version`` lives (``$NOVAWATCH_WATCHER_VENVS`` or ``<repo>/.venv-watcher``)."""
    base = root or Path(os.environ.get("NOVAWATCH_WATCHER_VENVS") or REPO / ".venv-watcher")
    return base / version


def ensure_venv(version: str = WATCHER_VERSION, root: Path | None = None, *, quiet: bool = True) -> Path:
    """The Python of a virtual environment with ``python-watcher==version``; created on first use."""
    def fill(folder: Path) -> None:
        run([str(folder / "bin" / "python"), "-m", "pip", "install", *(["-q"] if quiet else []),
             "--disable-pip-version-check", f"python-watcher=={version}"], quiet=quiet)

    return cached(venv_dir(version, root), version, fill, quiet=quiet) / "bin" / "python"


# --- running both models ------------------------------------------------------------------------


def run_watcher(python: Path, initial: Path, stream: Path, hypervisors: Path | None = None) -> dict[str, Any]:
    """Watcher's model after the stream: ``{"instances": {uuid: {host, state, ...}}, "nodes": ..., "counts": ...}``."""
    with tempfile.TemporaryDirectory(prefix="novawatch-watcher-") as tmp:
        out = Path(tmp) / "watcher.json"
        cmd = [str(python), str(RUNNER), "--initial", str(initial), "--stream", str(stream), "--out", str(out)]
        if hypervisors is not None:
            cmd += ["--hypervisors", str(hypervisors)]
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if done.returncode != 0:
            raise SetupError(f"the Watcher runner failed ({done.returncode}):\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def novawatch_model(initial: Path, stream: Path) -> dict[str, Any]:
    """novawatch's model after the same stream, as a snapshot dict (``novawatch.model/1``)."""
    from novawatch import snapshot
    from novawatch.model import Consumer, from_file, to_snapshot

    cluster = from_file(initial)
    consumer = Consumer(cluster)
    with open(stream, "rb") as fh:
        consumer.process_all(line for line in fh if line.strip())
    data: dict[str, Any] = json.loads(snapshot.dumps(to_snapshot(cluster, reported=False)))
    return data


def read_stream(stream: Path) -> list[dict[str, Any]]:
    messages = []
    with open(stream, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                doc = json.loads(line)
                messages.append(json.loads(doc["oslo.message"]) if "oslo.message" in doc else doc)
    return messages


# --- comparing -------------------------------------------------------------------------------------------


@dataclass
class Difference:
    """One way Watcher's model differs from novawatch's, with the reason."""

    kind: str
    entity: str  # instance | node
    uuid: str
    field: str
    novawatch: Any
    watcher: Any
    reason: str

    def line(self) -> str:
        return (f"{self.kind:<34} {self.entity} {self.uuid} {self.field}: novawatch={self.novawatch!r} "
                f"watcher={self.watcher!r} -- {self.reason}")


def _delivered(message: dict[str, Any]) -> bool:
    """Whether Watcher's endpoint gets and handles the message (INFO, ``nova-*`` publisher, mapped event)."""
    return (str(message.get("priority", "")).upper() == "INFO"
            and str(message.get("publisher_id", "")).startswith("nova-")
            and message.get("event_type") in WATCHER_EVENTS)


def _data(message: dict[str, Any]) -> dict[str, Any]:
    payload = message.get("payload")
    if isinstance(payload, dict) and isinstance(payload.get("nova_object.data"), dict):
        data: dict[str, Any] = payload["nova_object.data"]
        return data
    return {}


def _history(messages: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Versioned instance messages per instance uuid, in stream order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for m in messages:
        data = _data(m)
        if str(m.get("event_type", "")).startswith("instance.") and "uuid" in data:
            out.setdefault(data["uuid"], []).append(m)
    return out


def _label(m: dict[str, Any]) -> str:
    prio = str(m.get("priority", "")).upper()
    return f"{m.get('event_type')}" + (" (ERROR priority)" if prio == "ERROR" else "")


def _ignored_kind(m: dict[str, Any]) -> str:
    if str(m.get("priority", "")).upper() != "INFO":
        return "ignored-error:" + str(m.get("event_type"))
    if _data(m).get("state") == "building" and m.get("event_type") == "instance.update":
        return "ignored-building-update"
    return "ignored:" + str(m.get("event_type"))


def explain_instance(field: str, nw_value: Any, w_value: Any, events: list[dict[str, Any]]) -> tuple[str, str]:
    """(kind, reason) of an instance difference in ``field`` (host or state), from the instance's events."""
    key = "host" if field == "host" else "state"
    if field == "host" and nw_value is None and w_value is not None:
        handled_hostless = [m for m in events if _delivered(m) and _data(m).get("host") is None
                            and _data(m).get("state") != "building"]
        if handled_hostless:
            return ("stale-mapping-without-host",
                    f"{handled_hostless[-1]['event_type']} with host null reached Watcher's update_instance_mapping"
                    "(node=None), which keeps the old mapping")
    # The last message carrying novawatch's value that Watcher did not act on explains the difference.
    for m in reversed(events):
        if _data(m).get(key) == nw_value and not (_delivered(m) and _data(m).get("state") != "building"):
            later_handled = [x for x in events[events.index(m) + 1:] if _delivered(x)]
            if not later_handled:
                return _ignored_kind(m), f"Watcher does not act on {_label(m)}, which set {key}={nw_value!r}"
    handled = [m for m in events if _delivered(m)]
    last = handled[-1]["event_type"] if handled else "none"
    return "unexplained", f"last event Watcher handled: {last}"


def compare(nw: dict[str, Any], watcher: dict[str, Any], messages: list[dict[str, Any]],
            initial: dict[str, Any]) -> list[Difference]:
    """Every difference in instance presence, host mapping and state, and in node presence and status."""
    diffs: list[Difference] = []
    history = _history(messages)
    nw_instances = {i["uuid"]: i for i in nw["instances"]}
    w_instances: dict[str, dict[str, Any]] = watcher["instances"]
    initial_instances = {i["uuid"]: i for i in initial["instances"]}
    for uuid in sorted(set(nw_instances) | set(w_instances)):
        mine, theirs, events = nw_instances.get(uuid), w_instances.get(uuid), history.get(uuid, [])
        if mine is not None and theirs is None:
            diffs.append(_missing_in_watcher(uuid, mine, events, initial_instances.get(uuid)))
            continue
        if mine is None and theirs is not None:
            deleted = [m for m in events if m.get("event_type") in ("instance.delete.end",)]
            reason = ("deleted; Watcher re-created it from a later notification" if deleted
                      else "novawatch has no such instance")
            diffs.append(Difference("extra-in-watcher", "instance", uuid, "presence", None, theirs.get("state"),
                                    reason))
            continue
        assert mine is not None and theirs is not None
        for field, w_field in (("host", "host"), ("state", "state")):
            if mine[field] != theirs[w_field]:
                kind, reason = explain_instance(field, mine[field], theirs[w_field], events)
                diffs.append(Difference(kind, "instance", uuid, field, mine[field], theirs[w_field], reason))
    diffs.extend(_node_differences(nw, watcher, messages))
    return diffs


def _missing_in_watcher(uuid: str, mine: dict[str, Any], events: list[dict[str, Any]],
                        initial: dict[str, Any] | None) -> Difference:
    def diff(kind: str, reason: str) -> Difference:
        return Difference(kind, "instance", uuid, "presence", mine["state"], None, reason)

    if mine["state"] == "soft-delete":
        return diff("soft-deleted-removed", "Watcher handles instance.soft_delete.end as a delete; the snapshot "
                    "contract keeps soft-deleted instances")
    handled = [m for m in events if _delivered(m) and _data(m).get("state") != "building"]
    if not handled:
        if initial is not None and (initial.get("host") is None or initial["state"] == "soft-delete"):
            return diff("not-in-watcher-bootstrap", "Watcher's collector lists servers per host (and Nova hides "
                        "soft-deleted ones), so it never had this instance, and no event since named it")
        if events:
            return diff(_ignored_kind(events[-1]), "every notification about it is one Watcher ignores (last: "
                        f"{_label(events[-1])})")
        return diff("unexplained", "no notification about it in the stream")
    last = handled[-1]
    if last.get("event_type") in ("instance.delete.end", "instance.soft_delete.end"):
        later = [m for m in events[events.index(last) + 1:]]
        if later:
            return diff(_ignored_kind(later[-1]), f"Watcher removed it on {last['event_type']}; it does not act "
                        f"on {_label(later[-1])}, which brought it back")
    return diff("unexplained", f"last event Watcher handled: {last.get('event_type')}")


def _node_differences(nw: dict[str, Any], watcher: dict[str, Any],
                      messages: list[dict[str, Any]]) -> list[Difference]:
    diffs: list[Difference] = []
    mine = {n["uuid"]: n for n in nw["nodes"]}
    theirs: dict[str, dict[str, Any]] = watcher["nodes"]
    for uuid in sorted(set(mine) | set(theirs)):
        a, b = mine.get(uuid), theirs.get(uuid)
        if a is not None and b is None:
            diffs.append(Difference("node-not-in-watcher", "node", uuid, "presence", a["host"], None,
                                    "Watcher ignores compute_node.create; service.create comes before the node "
                                    "exists, so its lookup finds nothing until an instance event names the host"))
        elif a is None and b is not None:
            diffs.append(Difference("node-extra-in-watcher", "node", uuid, "presence", None, b["host"],
                                    "Watcher ignores compute_node.delete"))
        elif a is not None and b is not None:
            for field in ("state", "status", "disabled_reason"):
                if a[field] != b[field]:
                    diffs.append(Difference("node-" + field, "node", uuid, field, a[field], b[field],
                                            "service notifications about this host were applied differently"))
    return diffs


# --- the command ---------------------------------------------------------------------------------


def simulate(workdir: Path, hosts: int, instances: int, actions: int, seed: int) -> tuple[Path, Path, Path]:
    """``novawatch simulate`` into ``workdir``: (initial, stream, truth)."""
    initial, stream, truth = workdir / "initial.json", workdir / "stream.jsonl", workdir / "truth.json"
    cmd = [sys.executable, "-m", "novawatch.cli", "simulate", "--hosts", str(hosts), "--instances", str(instances),
           "--actions", str(actions), "--seed", str(seed), "--stream", str(stream), "--initial", str(initial),
           "--truth", str(truth)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SetupError(f"novawatch simulate failed:\n{done.stderr[-3000:]}")
    return initial, stream, truth


def check(initial: Path, stream: Path, truth: Path | None, python: Path) -> dict[str, Any]:
    """Run both models and compare; the report as a dict (``differences`` is a list of dicts)."""
    watcher = run_watcher(python, initial, stream, truth)
    nw = novawatch_model(initial, stream)
    diffs = compare(nw, watcher, read_stream(stream), json.loads(initial.read_text()))
    kinds: dict[str, int] = {}
    for d in diffs:
        kinds[d.kind] = kinds.get(d.kind, 0) + 1
    return {
        "watcher": {"instances": watcher["instances"], "counts": watcher["counts"],
                    "version": watcher.get("watcher_version")},
        "novawatch": {"instances": {i["uuid"]: {"host": i["host"], "state": i["state"]} for i in nw["instances"]}},
        "differences": [asdict(d) for d in diffs],
        "kinds": dict(sorted(kinds.items())),
        "lines": [d.line() for d in diffs],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare Watcher's compute data model with novawatch's.")
    parser.add_argument("--watcher-version", default=WATCHER_VERSION)
    parser.add_argument("--initial", type=Path, help="initial snapshot (with --stream; default: simulate one)")
    parser.add_argument("--stream", type=Path, help="notification stream (JSONL)")
    parser.add_argument("--truth", type=Path, help="snapshot whose nodes Watcher's Nova lookups see")
    parser.add_argument("--hosts", type=int, default=6)
    parser.add_argument("--instances", type=int, default=30)
    parser.add_argument("--actions", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the whole report here")
    parser.add_argument("--strict", action="store_true", help="exit 1 on any difference")
    args = parser.parse_args(argv)
    try:
        python = ensure_venv(args.watcher_version)
        with tempfile.TemporaryDirectory(prefix="novawatch-interop-") as tmp:
            if args.stream is not None:
                if args.initial is None:
                    parser.error("--stream needs --initial")
                initial, stream, truth = args.initial, args.stream, args.truth
            else:
                initial, stream, truth = simulate(Path(tmp), args.hosts, args.instances, args.actions, args.seed)
            report = check(initial, stream, truth, python)
    except SetupError as exc:
        print(f"interop check could not run: {exc}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    counts = report["watcher"]["counts"]
    print(f"python-watcher {report['watcher']['version']}: {counts['notifications']} notifications, "
          f"{counts['delivered']} delivered to Watcher's endpoint, {counts['handled']} handled")
    print(json.dumps({"watcher": report["watcher"]["instances"]}, indent=1, sort_keys=True))
    print(f"{len(report['lines'])} differences from novawatch's model:")
    for line in report["lines"]:
        print("  " + line)
    print("by kind: " + (", ".join(f"{k} {n}" for k, n in report["kinds"].items()) or "none"))
    if "unexplained" in report["kinds"] or (args.strict and report["lines"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
