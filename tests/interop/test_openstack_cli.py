"""The real ``openstack`` CLI (python-openstackclient, installed with python-watcher) against the Nova API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api" / "nova"))

from novacloud import NovaCloud, cloud

__all__ = ["cloud"]

pytestmark = pytest.mark.watcher


def test_openstack_cli(cloud: NovaCloud, watcher_python: Path, tmp_path: Path) -> None:
    # The clouds.yaml of docs/openstack.md.
    config = tmp_path / "clouds.yaml"
    config.write_text(
        "clouds:\n  novawatch:\n    auth_type: none\n"
        f"    compute_endpoint_override: {cloud.server.url}/v2.1\n"
        f"    image_endpoint_override: {cloud.server.url}/image\n"
        f"    identity_endpoint_override: {cloud.server.url}/identity\n"
    )
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(config), "PYTHONWARNINGS": "ignore"}

    def osc(*args: str) -> Any:
        done = subprocess.run([str(watcher_python), "-m", "openstackclient.shell", "--os-cloud", "novawatch",
                               *args, "-f", "json"], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout) if done.stdout.strip() else None

    assert {f["Name"] for f in osc("flavor", "list")} == {"m1.small", "m1.medium"}
    made = osc("server", "create", "--flavor", "m1.small", "--image", "cirros-0.6.2-x86_64-disk",
               "--availability-zone", "nova:host-2", "cli-vm")
    assert made["status"] == "ACTIVE" and made["OS-EXT-SRV-ATTR:host"] == "host-2"
    assert [s["Name"] for s in osc("server", "list")] == ["cli-vm"]
    assert {h["Hypervisor Hostname"] for h in osc("hypervisor", "list")} == {"host-1", "host-2", "host-3"}
    done = subprocess.run([str(watcher_python), "-m", "openstackclient.shell", "--os-cloud", "novawatch", "compute",
                           "service", "set", "--disable", "--disable-reason", "maint", "host-3", "nova-compute"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    services = {s["Host"]: s for s in osc("compute", "service", "list")}
    assert services["host-3"]["Status"] == "disabled"
    assert "service.update" in cloud.events() and "instance.create.end" in cloud.events()
