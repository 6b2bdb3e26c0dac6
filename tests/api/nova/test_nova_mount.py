"""The Nova API mounted on the app ``novawatch compute serve`` builds (config, bus, database, seeded hosts)."""

from __future__ import annotations

from pathlib import Path

import httpx

from novawatch.api.nova import mount_nova
from novawatch.api.server import ServerThread
from novawatch.api.services import compute_service
from novawatch.config import load
from novawatch.sources.openstack import OpenStackSource, connect

IMAGE = "155d900f-4e14-4e4c-a73d-069cbf4541e6"


def test_mounted_beside_the_compute_services_own_api(tmp_path: Path) -> None:
    config = load(env={"HOME": str(tmp_path)}, overrides={
        "general": {"data_dir": str(tmp_path)}, "compute": {"port": 0}})
    app, service = compute_service(config, hosts=2)
    # What compute serve needs to do (one call; see the report of issue 7).
    mount_nova(app, service, token=None, max_body_bytes=config.compute.max_body_bytes)
    try:
        with ServerThread(app, name="compute") as server:
            conn = connect(f"{server.url}/v2.1")
            flavor = next(iter(conn.compute.flavors()))
            made = conn.compute.create_server(name="mounted", flavor_id=flavor.id, image_id=IMAGE, networks="none")
            assert conn.compute.get_server(made.id).status == "ACTIVE"
            truth = OpenStackSource(conn).snapshot()
            assert [i.display_name for i in truth.instances] == ["mounted"] and len(truth.nodes) == 2
            assert httpx.get(f"{server.url}/v1/health").json()["instances"] == 1
    finally:
        service.close()
