"""A hook package written for Nova (``nova.hooks`` entry point group, hook ``instance_network_info``) runs
unchanged in novawatch's compute service.

The package is built the way Nova's hook documentation showed (a ``setup.py`` declaring the entry point, a
class with ``pre(*args, **kwargs)`` / ``post(rv, *args, **kwargs)``), installed with pip into a directory, and
the compute service runs in a fresh interpreter that has it on its path: what the hook saw is written to a file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

#: The hook package, as a Nova deployer wrote it: it uses Nova's arguments of
#: ``update_instance_cache_with_nw_info(impl, context, instance, nw_info=None, update_cells=True)`` and reads
#: them as Nova's objects allow (attributes and keys of the instance, the NetworkInfo model's helpers).
HOOK_MODULE = '''
import json
import os


class FatalHookException(Exception):
    """Stands in for nova.hooks.FatalHookException (same name)."""


def _seen(phase, rv, context, instance, nw_info):
    return {
        "phase": phase,
        "rv": rv,
        "uuid": instance.uuid,
        "uuid_by_key": instance["uuid"],
        "host": instance.host,
        "node": instance.get("node"),
        "deleted": instance.deleted,
        "power_state": instance.power_state,
        "flavor": [instance.flavor.name, instance.flavor["memory_mb"]],
        "request_id": context.request_id,
        "project_id": context.project_id,
        "ports": [vif["id"] for vif in nw_info],
        "macs": [vif["address"] for vif in nw_info],
        "labels": [vif["network"]["label"] for vif in nw_info],
        "addresses": [ip["address"] for ip in nw_info.fixed_ips()],
        "first_ip": [vif["network"]["subnets"][0]["ips"][0]["address"] for vif in nw_info],
        "cached": [vif["id"] for vif in instance.info_cache.network_info],
        "json": json.loads(nw_info.json()) == list(nw_info),
    }


class RecordNetworkInfo(object):
    def pre(self, impl, context, instance, nw_info=None, update_cells=True):
        self._write(_seen("pre", None, context, instance, nw_info))
        if os.environ.get("VETO") and len(nw_info) > 1:  # a second port
            raise FatalHookException("no ports for you")

    def post(self, rv, impl, context, instance, nw_info=None, update_cells=True):
        self._write(_seen("post", rv, context, instance, nw_info))

    def _write(self, record):
        with open(os.environ["SEEN_FILE"], "a") as fh:
            fh.write(json.dumps(record) + "\\n")

'''

SETUP_PY = """
from setuptools import setup

setup(
    name="site-nova-hooks",
    version="1.0",
    py_modules=["site_nova_hooks"],
    entry_points={
        "nova.hooks": [
            "instance_network_info = site_nova_hooks:RecordNetworkInfo",
        ],
    },
)
"""

#: Boots an instance, attaches and detaches a port, deletes it; prints what the service holds.
PROGRAM = """
import json, os, sys
from novawatch.compute.clock import Ids, SimClock
from novawatch.compute.repository import make_engine, upgrade
from novawatch.compute.service import start_service
from novawatch.hooks import FatalHookError
from novawatch.notifications import Notifier
from novawatch.notifications.drivers import MemoryDriver

clock = SimClock()
engine = make_engine("sqlite://")
upgrade(engine)
svc = start_service(engine, Notifier([MemoryDriver()], clock=clock.tick, message_ids=Ids(1)), clock=clock, ids=Ids(2))
svc.create_service("h1")
inst = svc.boot("vm", svc.create_flavor("small", vcpus=1, memory_mb=512, root_gb=1), host="h1")
svc.commit()
if os.environ.get("VETO"):
    try:
        svc.attach_interface(inst.uuid)
    except FatalHookError as exc:
        print("vetoed:", exc, file=sys.stderr)
    svc.abort()
    print(json.dumps({"after_veto": [v["id"] for v in svc.instance(inst.uuid).info_cache.network_info]}))
else:
    port = svc.attach_interface(inst.uuid)
    ports = [v["id"] for v in svc.instance(inst.uuid).info_cache.network_info]
    svc.detach_interface(inst.uuid, port)
    svc.delete(inst.uuid)
    print(json.dumps({"uuid": inst.uuid, "ports": ports, "port": port}))
svc.close()
"""


@pytest.fixture(scope="module")
def hook_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hook package, built from its setup.py and installed with pip into a directory of its own."""
    root = tmp_path_factory.mktemp("nova-hook")
    src = root / "src"
    src.mkdir()
    (src / "site_nova_hooks.py").write_text(HOOK_MODULE)
    (src / "setup.py").write_text(textwrap.dedent(SETUP_PY))
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(src)], check=True, capture_output=True)
    (dist,) = target.glob("site_nova_hooks-1.0.dist-info")
    assert "nova.hooks" in (dist / "entry_points.txt").read_text()
    return target


def _run(site: Path, seen: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(site), "SEEN_FILE": str(seen), **env}
    return subprocess.run([sys.executable, "-c", PROGRAM], env=full, capture_output=True, text=True, timeout=300)


def test_a_nova_hook_package_sees_nova_shaped_arguments_at_every_cache_update(hook_site: Path,
                                                                              tmp_path: Path) -> None:
    seen = tmp_path / "seen.jsonl"
    done = _run(hook_site, seen)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    records: list[dict[str, Any]] = [json.loads(line) for line in seen.read_text().splitlines()]
    # boot, attach, detach, delete: each a pre and a post, in that order.
    assert [r["phase"] for r in records] == ["pre", "post"] * 4
    assert {r["uuid"] for r in records} == {r["uuid_by_key"] for r in records} == {out["uuid"]}
    boot_pre, boot_post, attach_pre, attach_post, detach_pre, detach_post, delete_pre, delete_post = records
    assert boot_post["host"] == "h1" and boot_post["node"]
    assert boot_post["flavor"] == ["small", 512]
    assert boot_post["power_state"] == 0  # Nova's NOSTATE: ports are allocated before the guest is spawned
    assert attach_post["power_state"] == 1  # RUNNING
    assert boot_post["request_id"].startswith("req-") and boot_post["project_id"]
    assert boot_post["rv"] is None and boot_post["deleted"] is False
    # nw_info is the full network info after the change, as Nova's NetworkInfo model.
    assert len(boot_post["ports"]) == 1 and boot_post["labels"] == ["private"]
    assert attach_post["ports"] == out["ports"] and out["port"] in attach_post["ports"]
    assert attach_pre["cached"] == boot_post["ports"]  # pre runs before the cache is written
    assert attach_post["cached"] == out["ports"]  # post after
    assert detach_post["ports"] == boot_post["ports"]
    assert delete_post["ports"] == [] and delete_post["cached"] == []
    for r in (boot_post, attach_post):
        assert all(mac.startswith("fa:16:3e:") for mac in r["macs"])
        assert len(r["addresses"]) == 2 * len(r["ports"])  # one IPv4 and one IPv6 address per port
        assert r["first_ip"] == [a for a in r["addresses"] if "." in a]
        assert r["json"] is True
    assert boot_pre["request_id"] == boot_post["request_id"] != attach_post["request_id"]
    assert delete_pre["phase"] == "pre" and detach_pre["ports"] == detach_post["ports"]


def test_novas_fatal_hook_exception_stops_the_call_and_nothing_is_kept(hook_site: Path, tmp_path: Path) -> None:
    seen = tmp_path / "seen.jsonl"
    done = _run(hook_site, seen, VETO="1")
    assert done.returncode == 0, done.stderr
    assert "vetoed: no ports for you" in done.stderr
    assert "fatal error" in done.stderr and "site_nova_hooks:RecordNetworkInfo" in done.stderr
    # The boot's port stays; the vetoed attach left nothing behind.
    assert len(json.loads(done.stdout)["after_veto"]) == 1
