"""Interoperability check: Nova's own code is the producer; novawatch's model must end where Nova's API ends.

    .venv/bin/python interop/nova/check.py [--save CAPTURE.json] [--json REPORT.json]
    .venv/bin/python interop/nova/check.py --capture CAPTURE.json        # check a capture again, no Nova run

1. Creates (once, cached under ``.venv-nova/<version>``, rebuilt when ``constraints.txt`` changes) a
   virtual environment with ``nova==<version>`` and what its functional-test fixtures need, and puts
   ``etc/nova/api-paste.ini`` and ``doc/notification_samples/`` from Nova's sdist where the fixtures
   look for them (the wheel lacks both).
2. Runs ``runner.py`` inside it: the workload of ``workload.py`` in Nova's in-process functional-test
   cloud, capturing every notification (versioned and legacy, in emission order, with topics) and
   Nova's API views before and after the workload.
3. In novawatch's environment, for each mode (the whole stream, versioned only, legacy only):
   bootstraps a model from the "before" view through :mod:`novawatch.sources.nova_views` (the conversion
   ``model serve`` uses for a Nova endpoint), feeds it the notifications emitted after that view, and
   compares it with the "after" view converted the same way. Legacy only is compared on the fields
   legacy payloads carry (docs/model.md, "What the legacy format cannot tell").

Exit status: 0 when every mode has 0 differences and 0 rejected notifications, 1 otherwise, 2 on a
setup failure (the environment could not be built, or Nova's workload failed).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
NOVA_VERSION = "34.0.0"
RUNNER = HERE / "runner.py"
CONSTRAINTS = HERE / "constraints.txt"
#: Nova and the test libraries its functional fixtures import (nova/test.py, nova/tests/fixtures,
#: nova/tests/functional): Placement's fixture, fixtures, oslotest, testtools, wsgi-intercept.
PACKAGES = ("openstack-placement", "fixtures", "oslotest", "testtools", "wsgi-intercept")
#: Files the functional fixtures read that only Nova's sdist has: sdist path -> path under site-packages
#: (Nova's ``pybasedir``, which ``$state_path`` defaults to).
SDIST_DATA = {"etc/nova/api-paste.ini": "etc/nova/api-paste.ini",
              "doc/notification_samples": "doc/notification_samples"}
CAPTURE_FORMAT = "novawatch.nova-capture/1"
MODES = ("all", "versioned", "legacy")

#: Fields a legacy-only stream can tell (docs/model.md): legacy payloads carry no power state, lock,
#: swap or block devices, Nova sends no legacy notification for services, lock or volume swap.
LEGACY_INSTANCE_FIELDS = frozenset({"host", "node", "project_id", "display_name", "state", "task_state",
                                    "vcpus", "memory_mb", "disk_gb"})
LEGACY_NODE_FIELDS = frozenset({"host", "hypervisor_hostname", "vcpus", "memory_mb", "local_gb", "vcpus_used",
                                "memory_mb_used", "local_gb_used", "running_vms"})


#: Version differences between Nova 34's emission and the catalog that are known, with the reason. Any other
#: difference (or a field Nova sends that the catalog lacks) fails the check.
KNOWN_VERSION_DIFFERENCES = {
    "ImageMetaPropsPayload: Nova 1.20, catalog 1.19": (
        "the catalog follows the project's reference samples, which say 1.19; Nova 34's code and its own "
        "doc/notification_samples say 1.20 (1.20 added 'intel-tdx' to hw_mem_encryption_model, which the "
        "catalog's enum already has); a reader accepts either minor version"),
}


class SetupError(RuntimeError):
    """The Nova environment could not be created, or the Nova workload failed."""


# --- the Nova virtual environment --------------------------------------------------------------------


def venv_dir(version: str = NOVA_VERSION, root: Path | None = None) -> Path:
    """Where the environment for ``version`` lives (``$NOVAWATCH_NOVA_VENVS`` or ``<repo>/.venv-nova``)."""
    base = root or Path(os.environ.get("NOVAWATCH_NOVA_VENVS") or REPO / ".venv-nova")
    return base / version


def environment_key(version: str = NOVA_VERSION) -> str:
    """What the environment is built from; a change rebuilds it."""
    text = "\n".join([version, *PACKAGES, CONSTRAINTS.read_text()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two test sessions (or CI jobs) on one machine must not build the same environment at once.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _base_python() -> str:
    return getattr(sys, "_base_executable", None) or sys.executable


def _run(step: list[str], quiet: bool) -> None:
    done = subprocess.run(step, capture_output=quiet, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout or "")[-3000:] if quiet else ""
        raise SetupError(f"{' '.join(step[:5])} ... failed ({done.returncode}):\n{tail}")


def _site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def _install_sdist_data(python: Path, version: str, quiet: bool) -> None:
    """Nova's api-paste.ini and notification samples, from its sdist, where its fixtures read them."""
    site = _site_packages(python)
    with tempfile.TemporaryDirectory(prefix="novawatch-nova-sdist-") as tmp:
        _run([str(python), "-m", "pip", "download", *(["-q"] if quiet else []), "--disable-pip-version-check",
              "--no-deps", "--no-binary", ":all:", "-d", tmp, f"nova=={version}"], quiet)
        archives = sorted(Path(tmp).glob(f"nova-{version}.tar.gz"))
        if not archives:
            raise SetupError(f"pip download of nova=={version} gave no sdist in {tmp}")
        prefix = f"nova-{version}/"
        with tarfile.open(archives[0]) as tar:
            for member in tar.getmembers():
                if not member.name.startswith(prefix) or not (member.isfile() or member.isdir()):
                    continue
                inner = member.name[len(prefix):]
                for source, target in SDIST_DATA.items():
                    if inner == source or inner.startswith(source + "/"):
                        dest = site / (target + inner[len(source):])
                        if member.isdir():
                            dest.mkdir(parents=True, exist_ok=True)
                            continue
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        extracted = tar.extractfile(member)
                        assert extracted is not None
                        dest.write_bytes(extracted.read())
    missing = [t for t in SDIST_DATA.values() if not (site / t).exists()]
    if missing:
        raise SetupError(f"Nova's sdist lacks {missing}")


def ensure_venv(version: str = NOVA_VERSION, root: Path | None = None, *, quiet: bool = True) -> Path:
    """The Python of a virtual environment with ``nova==version`` and its functional fixtures; built on first use."""
    target = venv_dir(version, root)
    python = target / "bin" / "python"
    ready = target / ".novawatch-ready"
    key = environment_key(version)

    def is_ready() -> bool:
        return python.exists() and ready.exists() and ready.read_text().strip() == key

    if is_ready():
        return python
    with _locked(target.parent / f"{version}.lock"):
        if is_ready():
            return python
        # Build beside the target and rename: an interrupted install never looks complete.
        building = target.parent / f"{version}.building"
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        new_python = building / "bin" / "python"
        _run([_base_python(), "-m", "venv", str(building)], quiet)
        _run([str(new_python), "-m", "pip", "install", *(["-q"] if quiet else []), "--disable-pip-version-check",
              "-c", str(CONSTRAINTS), f"nova=={version}", *PACKAGES], quiet)
        _install_sdist_data(new_python, version, quiet)
        (building / ".novawatch-ready").write_text(key + "\n")
        building.rename(target)
    # The venv's scripts name the build path; the runner is started with `python runner.py`, which is fine.
    return python


# --- running Nova ----------------------------------------------------------------------------------------


#: How long Nova's run (the workload and the two hand-overs) may take before the check gives up.
RUN_TIMEOUT = float(os.environ.get("NOVAWATCH_NOVA_RUN_TIMEOUT", "1200"))
#: The token the check reads Nova's API with: an admin of project "admin" (see runner.py, --serve).
ADMIN_TOKEN = "admin:admin"
VIEWS = ("before", "after")


def read_live(url: str) -> dict[str, Any]:
    """Nova's API read through the data model's own Nova source (what ``model serve --compute-url`` uses):
    ``{"snapshot": <novawatch.model/1 dict>}``, or ``{"error": <what went wrong>}``."""
    from novawatch import snapshot
    from novawatch.sources.cloud import open_endpoint
    from novawatch.sources.errors import SourceError

    try:
        source = open_endpoint(url, token=ADMIN_TOKEN)
        try:
            snap = source.snapshot()
            problems = list(source.problems)
        finally:
            source.close()
    except SourceError as exc:
        return {"error": str(exc)}
    out: dict[str, Any] = {"snapshot": json.loads(snapshot.dumps(snap))}
    if problems:
        out["problems"] = problems
    return out


def run_nova(python: Path, out: Path, log: Path | None = None, *, live: bool = True) -> dict[str, Any]:
    """Run the workload in Nova's functional-test cloud; the capture (also written to ``out``).

    With ``live`` Nova's API is also served on loopback, and at each view the check reads it through
    :func:`read_live`; the result goes into the capture as ``views.<view>.source``.
    """
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    with tempfile.TemporaryDirectory(prefix="novawatch-nova-run-") as tmp:
        serve = Path(tmp) / "serve"
        serve.mkdir()
        cmd = [str(python), str(RUNNER), "--out", str(out)]
        if log is not None:
            cmd += ["--log", str(log)]
        if live:
            cmd += ["--serve", str(serve)]
        live_views: dict[str, dict[str, Any]] = {}
        # Output to files, not pipes: a full pipe would stall the runner while this loop waits on it.
        with open(Path(tmp) / "stdout", "w+") as stdout, open(Path(tmp) / "stderr", "w+") as stderr:
            proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=env, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + RUN_TIMEOUT
            try:
                while proc.poll() is None:
                    for view in VIEWS:
                        ready = serve / f"{view}.url"
                        if view not in live_views and ready.exists():
                            live_views[view] = read_live(ready.read_text().strip())
                            (serve / f"{view}.done").touch()
                    if time.monotonic() > deadline:
                        raise SetupError(f"Nova's run took more than {RUN_TIMEOUT:.0f} s")
                    time.sleep(0.1)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            stderr.seek(0)
            errors = stderr.read()
        if proc.returncode != 0 or not out.exists():
            raise SetupError(f"the Nova runner failed ({proc.returncode}):\n{errors[-5000:]}")
    capture = read_capture(out)
    if live:
        for view in VIEWS:
            capture["views"][view]["source"] = live_views.get(view, {"error": "the runner never handed it over"})
        out.write_text(json.dumps(capture, indent=1) + "\n")
    return capture


def read_capture(path: Path) -> dict[str, Any]:
    """A capture file, checked for its format."""
    try:
        capture = json.loads(path.read_text())
    except OSError as exc:
        raise SetupError(f"cannot read the capture {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SetupError(f"{path} is not JSON ({exc}); was it written by interop/nova/runner.py?") from None
    if not isinstance(capture, dict) or capture.get("format") != CAPTURE_FORMAT:
        found = capture.get("format") if isinstance(capture, dict) else type(capture).__name__
        raise SetupError(f"{path} is not a {CAPTURE_FORMAT} capture (format {found!r})")
    result: dict[str, Any] = capture
    return result


# --- the comparison ---------------------------------------------------------------------------------


def is_versioned(record: dict[str, Any]) -> bool:
    """Whether a captured notification went out on a versioned topic (``versioned_notifications.<priority>``)."""
    return str(record["topic"]).rsplit(".", 1)[0] == "versioned_notifications"


def stream(capture: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    """The notifications emitted after the "before" view, in emission order, of one mode."""
    start = capture["views"]["before"]["at"]
    records = [r for r in capture["notifications"] if r["seq"] >= start]
    if mode == "versioned":
        records = [r for r in records if is_versioned(r)]
    elif mode == "legacy":
        records = [r for r in records if not is_versioned(r)]
    return records


def view_snapshot(view: dict[str, Any]) -> Any:
    """A Nova API view (hypervisors, servers, soft-deleted servers, flavors) as a ``novawatch.model/1`` snapshot."""
    from novawatch.sources import nova_views

    flavors = {str(f["id"]): f for f in view.get("flavors", [])}
    return nova_views.snapshot_from_views(view["hypervisors"], [*view["servers"], *view["soft_deleted_servers"]],
                                          flavors)


@dataclass
class ModeResult:
    """What one mode gave: counts, rejections and differences."""

    mode: str
    notifications: int
    stats: dict[str, int]
    rejections: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        noted = self.stats.get("future_timestamps", 0) + self.stats.get("reused_ids", 0)
        return not self.rejections and not self.differences and not noted


def _swap_instances(capture: dict[str, Any]) -> set[str]:
    """Servers whose flavor had swap at some point (legacy payloads do not carry swap, so a legacy-only model
    cannot tell their local disk): from the API views and from the versioned payloads of the capture."""
    views = capture["views"]
    servers = [s for v in (views["before"], views["after"]) for s in [*v["servers"], *v["soft_deleted_servers"]]]
    out = {s["id"] for s in servers if isinstance(s.get("flavor"), dict) and (s["flavor"].get("swap") or 0)}
    for record in capture["notifications"]:
        data = record["message"].get("payload", {}).get("nova_object.data", {})
        flavor = data.get("flavor", {}).get("nova_object.data", {}) if isinstance(data, dict) else {}
        if isinstance(flavor, dict) and (flavor.get("swap") or 0) and "uuid" in data:
            out.add(data["uuid"])
    return out


def _differences(model: Any, truth: Any, mode: str, swap: set[str]) -> tuple[list[str], list[str]]:
    """(differences, fields left out of the comparison) between the model's snapshot and the truth."""
    from novawatch.model import audit_snapshots

    lines, skipped = [], []
    swap_hosts = {i.host for i in truth.instances if i.uuid in swap} | {i.host for i in model.instances
                                                                          if i.uuid in swap}
    for drift in audit_snapshots(model, truth):
        if drift.problem != "differs":
            lines.append(drift.describe())
            continue
        kept = []
        for diff in drift.fields:
            if mode == "legacy":
                allowed = LEGACY_INSTANCE_FIELDS if drift.kind == "instance" else LEGACY_NODE_FIELDS
                host = next((n.host for n in truth.nodes if n.uuid == drift.uuid), None)
                swap_bound = (drift.kind == "instance" and diff.field == "disk_gb" and drift.uuid in swap) or (
                    drift.kind == "node" and diff.field == "local_gb_used" and host in swap_hosts)
                if diff.field not in allowed or swap_bound:
                    skipped.append(f"{drift.kind} {drift.uuid} {diff.field}: model={diff.model!r} "
                                   f"nova={diff.source!r}")
                    continue
            kept.append(diff)
        if kept:
            lines.append(f"{drift.kind} {drift.uuid} differs: " + "; ".join(
                f"{d.field} model={d.model!r} nova={d.source!r}" for d in kept))
    return lines, skipped


def source_snapshot(view: dict[str, Any]) -> Any:
    """The view as the data model's Nova source read it live (``views.<view>.source``), else the captured
    JSON converted by :func:`view_snapshot`."""
    from novawatch import snapshot

    live = view.get("source", {})
    if "snapshot" in live:
        return snapshot.loads(json.dumps(live["snapshot"]).encode())
    return view_snapshot(view)


def source_agreement(capture: dict[str, Any]) -> dict[str, Any]:
    """For each view: did the live read through the Nova source work, and does it equal the captured JSON
    converted by nova_views? (``{"before": {"read": bool, "error": ..., "differences": [...]}, ...}``)"""
    from novawatch.model import audit_snapshots

    out: dict[str, Any] = {}
    for name in VIEWS:
        view = capture["views"][name]
        live = view.get("source")
        if live is None:
            out[name] = {"read": False, "error": None, "differences": []}
            continue
        if "snapshot" not in live:
            out[name] = {"read": False, "error": live.get("error", "no snapshot"), "differences": []}
            continue
        differences = [d.describe() for d in audit_snapshots(source_snapshot(view), view_snapshot(view))]
        out[name] = {"read": True, "error": None, "differences": differences, "problems": live.get("problems", [])}
    return out


def check_mode(capture: dict[str, Any], mode: str) -> ModeResult:
    """Bootstrap from the "before" view, feed one mode's stream, compare with the "after" view."""
    from novawatch import snapshot
    from novawatch.model import Consumer, from_snapshot, to_snapshot

    before = source_snapshot(capture["views"]["before"])
    truth = source_snapshot(capture["views"]["after"])
    cluster = from_snapshot(before)
    consumer = Consumer(cluster)
    records = stream(capture, mode)
    for record in records:
        # The topic tells the format, as it does for the model service on Nova's RabbitMQ.
        consumer.process(json.dumps(record["message"]).encode(), record["seq"], legacy=not is_versioned(record))
    stats = consumer.stats
    model = snapshot.loads(snapshot.dumps(to_snapshot(cluster, reported=False)))
    differences, skipped = _differences(model, truth, mode, _swap_instances(capture))
    rejections = [f"#{d.where} {d.event_type}: {d.reason}" for d in consumer.dead_letters]
    if consumer.dead_letters.total > len(rejections):  # more than the dead-letter store keeps
        rejections.append(f"... and {consumer.dead_letters.total - len(rejections)} more")
    return ModeResult(mode, len(records), {"applied": stats.applied, "ignored": stats.ignored,
                                           "stale": stats.stale, "duplicate": stats.duplicate,
                                           "rejected": stats.rejected,
                                           "future_timestamps": stats.future_timestamps,
                                           "reused_ids": stats.reused_ids},
                      rejections, differences, skipped)


def _walk(raw: Any, decoded: Any, extra: set[str], versions: set[str]) -> None:
    """Nova's keys the catalog lacks, and versions that differ, in one payload and the objects inside it."""
    if isinstance(raw, dict) and isinstance(raw.get("nova_object.data"), dict):
        data = getattr(decoded, "data", decoded)
        name = raw.get("nova_object.name", type(data).__name__)
        mine = getattr(type(data), "VERSION", None)
        if mine is not None and raw.get("nova_object.version") != mine:
            versions.add(f"{name}: Nova {raw.get('nova_object.version')}, catalog {mine}")
        fields = set(getattr(type(data), "__struct_fields__", ()))
        for key, value in raw["nova_object.data"].items():
            if key in fields:
                _walk(value, getattr(data, key), extra, versions)
            else:
                extra.add(f"{name}.{key}")
    elif isinstance(raw, list) and isinstance(decoded, list | tuple):
        for item, decoded_item in zip(raw, decoded, strict=False):
            _walk(item, decoded_item, extra, versions)


def catalog_conformance(capture: dict[str, Any]) -> dict[str, Any]:
    """Every captured notification against novawatch's catalog: event types it does not know, and for
    versioned payloads the fields Nova sent that the catalog lacks and the versions that differ."""
    from novawatch.notifications import Rejected, UnknownEvent, decode, warnings_of

    warnings: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    extra: set[str] = set()
    versions: set[str] = set()
    payloads: set[str] = set()
    for record in capture["notifications"]:
        message = record["message"]
        try:
            # No topic given: the decoder tells versioned from legacy by the payload's shape, as for a stream file.
            notification = decode(json.dumps(message))
        except UnknownEvent:
            unknown[message["event_type"]] += 1
            continue
        except Rejected:
            rejected[message["event_type"]] += 1
            continue
        for text in warnings_of(notification):
            warnings[f"{message['event_type']}: {text}"] += 1
        payload = message["payload"]
        if isinstance(payload, dict) and "nova_object.data" in payload:
            payloads.add(f"{payload.get('nova_object.name')} {payload.get('nova_object.version')}")
            _walk(payload, notification.payload, extra, versions)
    return {"unknown_event_types": dict(unknown), "rejected_event_types": dict(rejected), "warnings": dict(warnings),
            "versioned_payloads": sorted(payloads), "extra_fields": sorted(extra),
            "version_differences": sorted(v for v in versions if v not in KNOWN_VERSION_DIFFERENCES),
            "known_version_differences": {v: KNOWN_VERSION_DIFFERENCES[v] for v in sorted(versions)
                                          if v in KNOWN_VERSION_DIFFERENCES}}


def step_counts(capture: dict[str, Any]) -> list[dict[str, Any]]:
    """Each workload step with the number of versioned and legacy notifications it produced."""
    out = []
    for step in capture["steps"]:
        records = capture["notifications"][step["first"]:step["end"]]
        versioned = sum(1 for r in records if is_versioned(r))
        out.append({"name": step["name"], "phase": step["phase"], "first": step["first"], "end": step["end"],
                    "versioned": versioned, "legacy": len(records) - versioned})
    return out


def check(capture: dict[str, Any]) -> dict[str, Any]:
    """The whole report for a capture: figures, per-mode results, per-step counts."""
    streamed = stream(capture, "all")
    versioned = sum(1 for r in streamed if is_versioned(r))
    results = [check_mode(capture, mode) for mode in MODES]
    catalog = catalog_conformance(capture)
    source = source_agreement(capture)
    source_ok = all(not v["error"] and not v["differences"] and not v.get("problems") for v in source.values())
    return {
        "nova_version": capture.get("nova_version"),
        "captured": {"total": len(capture["notifications"]), "stream": len(streamed), "versioned": versioned,
                     "legacy": len(streamed) - versioned,
                     "event_types": dict(Counter(r["message"]["event_type"] for r in streamed).most_common())},
        "nova_seconds": capture.get("seconds"),
        "steps": step_counts(capture),
        "modes": {r.mode: {"notifications": r.notifications, **r.stats, "differences": r.differences,
                           "rejections": r.rejections, "not_compared": r.not_compared} for r in results},
        "catalog": catalog,
        "source": source,
        "ok": (all(r.ok for r in results) and not catalog["extra_fields"] and not catalog["version_differences"]
               and not catalog["rejected_event_types"] and not catalog["warnings"] and source_ok),
    }


def _print(report: dict[str, Any], out: Any = None) -> None:
    out = out or sys.stdout  # looked up when called: pytest's capsys replaces it
    cap = report["captured"]
    print(f"Nova {report['nova_version']}: {cap['total']} notifications captured, {cap['stream']} after the "
          f"bootstrap view ({cap['versioned']} versioned, {cap['legacy']} legacy), "
          f"{len([s for s in report['steps'] if s['phase'] == 'workload'])} workload steps", file=out)
    for mode, r in report["modes"].items():
        noted = r["future_timestamps"] + r["reused_ids"]
        print(f"  {mode:<9} {r['notifications']:>4} notifications: applied {r['applied']}, ignored {r['ignored']}, "
              f"rejected {r['rejected']}" + (f", noted {noted} (timestamps ahead, reused ids)" if noted
                                             else "") + f"; {len(r['differences'])} differences", file=out)
        # Rejections repeat (one per scheduling, say): one line per event type and reason.
        grouped: dict[str, list[str]] = {}
        for line in r["rejections"]:
            where, _, what = line.partition(" ")
            grouped.setdefault(what, []).append(where)
        for what, wheres in grouped.items():
            shown = ", ".join(wheres[:3]) + (", ..." if len(wheres) > 3 else "")
            print(f"    rejected {len(wheres)}x {what} ({shown})", file=out)
        for line in r["differences"]:
            print(f"    {line}", file=out)
    for name, v in report["source"].items():
        if v["read"]:
            print(f"  {name:<9} view read live through the Nova source: {len(v['differences'])} differences from "
                  "the captured JSON", file=out)
        elif v["error"]:
            print(f"  {name:<9} view: the Nova source failed: {v['error']}", file=out)
        for line in [*v["differences"], *v.get("problems", [])]:
            print(f"    {line}", file=out)
    cat = report["catalog"]
    print(f"  catalog: {len(cat['versioned_payloads'])} versioned payload versions seen, "
          f"{len(cat['extra_fields'])} fields the catalog lacks, {len(cat['version_differences'])} version "
          f"differences; event types it does not know: {', '.join(sorted(cat['unknown_event_types'])) or 'none'}",
          file=out)
    for event_type, count in cat["rejected_event_types"].items():
        print(f"    decoded without the topic (by payload shape): {count}x {event_type} rejected", file=out)
    for line, count in cat["warnings"].items():
        print(f"    decoded without the topic (by payload shape): {count}x warned, {line}", file=out)
    for line in cat["extra_fields"]:
        print(f"    Nova sends {line}, which the catalog lacks", file=out)
    for line in cat["version_differences"]:
        print(f"    version differs: {line}", file=out)
    for line, reason in cat["known_version_differences"].items():
        print(f"    version differs (known): {line} -- {reason}", file=out)
    print("OK: novawatch's model equals Nova's API in every mode" if report["ok"]
          else "FAILED: differences or rejections above", file=out)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capture", type=Path, help="check this capture instead of running Nova")
    parser.add_argument("--save", type=Path, help="write the capture of the Nova run here")
    parser.add_argument("--log", type=Path, help="write Nova's log of the run here")
    parser.add_argument("--json", type=Path, help="write the report here (JSON)")
    parser.add_argument("--verbose", action="store_true", help="show pip's output while building the environment")
    parser.add_argument("--no-live", action="store_true",
                        help="do not read Nova's API live through the Nova source (captured JSON only)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        if args.capture is not None:
            capture = read_capture(args.capture)
        else:
            t0 = time.monotonic()
            python = ensure_venv(quiet=not args.verbose)
            t1 = time.monotonic()
            with tempfile.TemporaryDirectory(prefix="novawatch-nova-") as tmp:
                capture = run_nova(python, args.save or Path(tmp) / "capture.json", args.log, live=not args.no_live)
            print(f"Nova environment ready in {t1 - t0:.1f} s ({venv_dir()}); Nova's workload ran in "
                  f"{time.monotonic() - t1:.1f} s", flush=True)
    except SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    report = check(capture)
    _print(report)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    sys.exit(main())
