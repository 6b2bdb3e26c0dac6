"""``model serve --os-cloud`` through a real Keystone, from the command line, as docs/openstack.md says.

Keystone is the ``keystone`` package from PyPI (its own virtual environment, cached under
``.venv-keystone/``; see interop/keystone/env.py) on SQLite with fernet tokens, served by its
WSGI application on loopback. Its catalog's ``compute`` endpoint is a running ``novawatch compute
serve``'s ``/v2.1``. The model service runs as a subprocess with only ``--os-cloud NAME`` and a
clouds.yaml the test writes; it must bootstrap to the compute service's truth with a password and with
an application credential, and explain a wrong password and a user without the admin role.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from tests.api.helpers import Service, free_port, wait_for

pytestmark = pytest.mark.keystone

KEYSTONE = Path(__file__).resolve().parents[2] / "interop" / "keystone" / "env.py"
ADMIN_PASSWORD = "Adm1n-s3cret-for-tests"
MEMBER_PASSWORD = "Memb3r-s3cret-for-tests"
NODE_FIELDS = ("uuid", "host", "hypervisor_hostname", "state", "status", "disabled_reason", "vcpus", "memory_mb",
               "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used", "running_vms")
INSTANCE_FIELDS = ("uuid", "host", "node", "project_id", "display_name", "state", "power_state", "task_state",
                   "locked", "vcpus", "memory_mb", "disk_gb", "volumes")


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("novawatch_interop_keystone", KEYSTONE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Cloud:
    keystone_url: str
    compute_url: str
    data: Path
    clouds_yaml: Path
    secrets: list[str]

    def env(self) -> dict[str, str]:
        # No stray config: HOME is the test's; the clouds.yaml is named as the docs say.
        return {"HOME": str(self.data), "OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml),
                "NOVAWATCH_GENERAL_DATA_DIR": str(self.data / "state")}


def _clouds_yaml(keystone_url: str, appcred_id: str, appcred_secret: str) -> str:
    def password_cloud(name: str, user: str, password: str, project: str) -> str:
        return (f"  {name}:\n    auth:\n      auth_url: {keystone_url}\n      username: {user}\n"
                f"      password: {password}\n      project_name: {project}\n      user_domain_name: Default\n"
                f"      project_domain_name: Default\n    region_name: RegionOne\n    interface: public\n"
                f"    identity_api_version: 3\n")

    return ("clouds:\n"
            + password_cloud("production", "admin", ADMIN_PASSWORD, "admin")
            + f"  production-appcred:\n    auth_type: v3applicationcredential\n    auth:\n"
              f"      auth_url: {keystone_url}\n      application_credential_id: {appcred_id}\n"
              f"      application_credential_secret: {appcred_secret}\n    region_name: RegionOne\n"
            + password_cloud("production-typo", "admin", "not-the-password", "admin")
            + password_cloud("production-regions", "admin", ADMIN_PASSWORD, "admin").replace(
                "    region_name: RegionOne\n", "    regions:\n      - RegionOne\n      - RegionTwo\n")
            + password_cloud("production-member", "watcher-member", MEMBER_PASSWORD, "demo"))


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    import openstack.connection

    ks_module = _load()
    data = tmp_path_factory.mktemp("keystone-cloud")
    try:
        keystone = ks_module.start(data / "keystone", ADMIN_PASSWORD)
    except ks_module.SetupError as exc:
        pytest.fail(f"could not start Keystone: {exc}")
    port = free_port()
    compute = Service(["compute", "serve", "--port", str(port), "--hosts", "3"], data / "compute.log",
                      {"HOME": str(data), "NOVAWATCH_GENERAL_DATA_DIR": str(data / "state")}, cwd=data)
    try:
        compute_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(compute_url + "/v1/health").status_code == 200, 120, "the compute service")
        for n, host in enumerate(("host-0001", "host-0002", "host-0002")):
            resp = httpx.post(compute_url + "/v1/instances", timeout=60,
                              json={"name": f"ks-{n}", "flavor": "m1.small", "host": host, "project_id": "p-ks"})
            assert resp.status_code == 202, resp.text
        admin = openstack.connection.Connection(
            auth_url=keystone.url, username="admin", password=ADMIN_PASSWORD, project_name="admin",
            user_domain_name="Default", project_domain_name="Default", region_name="RegionOne")
        service = admin.identity.create_service(type="compute", name="nova")
        for interface in ("public", "internal", "admin"):
            admin.identity.create_endpoint(service_id=service.id, interface=interface, region_id="RegionOne",
                                           url=f"{compute_url}/v2.1")
        project = admin.identity.create_project(name="demo", domain_id="default")
        member = admin.identity.create_user(name="watcher-member", password=MEMBER_PASSWORD, domain_id="default",
                                            default_project_id=project.id)
        admin.identity.assign_project_role_to_user(project, member, admin.identity.find_role("member"))
        me = admin.identity.find_user("admin")
        appcred = admin.identity.create_application_credential(user=me.id, name="novawatch-model",
                                                               roles=[{"name": "admin"}])
        admin.close()
        clouds_yaml = data / "clouds.yaml"
        clouds_yaml.write_text(_clouds_yaml(keystone.url, appcred.id, appcred.secret))
        yield Cloud(keystone.url, compute_url, data, clouds_yaml,
                    [ADMIN_PASSWORD, MEMBER_PASSWORD, appcred.secret])
    finally:
        code = compute.stop()
        keystone.stop()
        assert code == 0, compute.output()


def _model(cloud: Cloud, name: str, *, by_env: bool = False,
           args: tuple[str, ...] | None = None) -> tuple[Service, str]:
    """``novawatch model serve --os-cloud NAME`` (or ``OS_CLOUD=NAME novawatch model serve``), as the docs show."""
    port = free_port()
    log = cloud.data / f"model-{name}-{port}.log"
    env = {**cloud.env(), "NOVAWATCH_MODEL_PORT": str(port), **({"OS_CLOUD": name} if by_env else {})}
    command = list(args) if args is not None else ["model", "serve", *([] if by_env else ["--os-cloud", name])]
    service = Service(command, log, env, cwd=cloud.data)
    return service, f"http://127.0.0.1:{port}"


def _health(url: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(url + "/v1/health", timeout=30).json()
    return body


def _assert_no_secret(cloud: Cloud, *texts: str) -> None:
    for text in texts:
        for secret in cloud.secrets:
            assert secret not in text


def _equals_truth(cloud: Cloud, url: str) -> None:
    truth = httpx.get(cloud.compute_url + "/v1/snapshot", timeout=30).json()
    nodes = httpx.get(url + "/v1/nodes", params={"limit": 1000, "sort": "host"}, timeout=30).json()["nodes"]
    instances = httpx.get(url + "/v1/instances", params={"limit": 1000}, timeout=30).json()["instances"]
    assert sorted(({k: n[k] for k in NODE_FIELDS} for n in nodes), key=lambda n: n["uuid"]) == \
        [{k: n[k] for k in NODE_FIELDS} for n in truth["nodes"]]
    assert sorted(({k: i[k] for k in INSTANCE_FIELDS} for i in instances), key=lambda i: i["uuid"]) == \
        [{k: i[k] for k in INSTANCE_FIELDS} for i in truth["instances"]]


@pytest.mark.parametrize(("name", "by_env"), [("production", False), ("production-appcred", True)])
def test_model_serve_bootstraps_through_keystone(cloud: Cloud, name: str, by_env: bool) -> None:
    model, url = _model(cloud, name, by_env=by_env)
    try:
        health = wait_for(lambda: (h := _health(url))["bootstrapped"] and h, 120, "the model to bootstrap")
        assert health["status"] == "ok", health
        assert health["nodes"] == 3 and health["instances"] == 3
        assert health["source"] == f"cloud {name!r}"
        _equals_truth(cloud, url)
        # and it keeps up from the bus afterwards (the compute service shares the embedded bus)
        resp = httpx.post(cloud.compute_url + "/v1/instances", timeout=60,
                          json={"name": f"late-{name}", "flavor": "m1.small", "host": "host-0003"})
        assert resp.status_code == 202
        wait_for(lambda: _health(url)["instances"] == 4, 60, "the new instance in the model")
        _equals_truth(cloud, url)
        httpx.delete(cloud.compute_url + f"/v1/instances/{resp.json()['uuid']}", timeout=60)
        wait_for(lambda: _health(url)["instances"] == 3, 60, "the deletion in the model")
    finally:
        code = model.stop()
    out = model.output()
    assert code == 0, out
    assert f"bootstrapped from cloud {name!r}: 3 nodes, 3 instances" in out
    assert "Traceback" not in out
    _assert_no_secret(cloud, out, str(health))


def test_a_wrong_password_is_explained(cloud: Cloud) -> None:
    model, url = _model(cloud, "production-typo")
    try:
        health = wait_for(lambda: (h := _health(url))["problems"] and h, 120, "health to report the problem")
        assert health["status"] == "failing" and not health["bootstrapped"]
        problem = health["problems"][0]
        assert "cloud 'production-typo'" in problem and "refused the credentials (401)" in problem
        assert "check the user name, password, project and domain" in problem
    finally:
        code = model.stop()
    out = model.output()
    assert code == 0, out
    assert out.count("refused the credentials (401)") == 1  # logged once, not once per retry
    assert "Traceback" not in out
    _assert_no_secret(cloud, out, str(health))
    assert "not-the-password" not in out + str(health)


def test_a_user_without_the_admin_role_is_explained(cloud: Cloud) -> None:
    """novawatch's compute service has no policy (real Nova answers 403, see tests/sources): the token's
    roles tell, and health says the listing may be narrowed."""
    model, url = _model(cloud, "production-member")
    try:
        health = wait_for(lambda: (h := _health(url))["bootstrapped"] and h, 120, "the model to bootstrap")
        assert health["status"] == "degraded", health
        problem = next(p for p in health["problems"] if "admin" in p)
        assert "user 'watcher-member' has the roles ['member', 'reader'] on project 'demo', not admin" in problem
        assert "openstack role add" in problem
    finally:
        code = model.stop()
    out = model.output()
    assert code == 0 and "Traceback" not in out, out
    _assert_no_secret(cloud, out, str(health))


def test_an_unknown_cloud_stops_at_once_with_where_it_looked(cloud: Cloud) -> None:
    model, _ = _model(cloud, "no-such-cloud")
    code = model.proc.wait(120)
    model.stop()
    out = model.output()
    assert code == 2, out
    assert "cloud 'no-such-cloud'" in out and str(cloud.clouds_yaml) in out and "Traceback" not in out


def test_compute_url_at_a_nova_endpoint(cloud: Cloud) -> None:
    """``novawatch model serve --compute-url http://nova.example.com:8774/v2.1``, with this cloud's endpoint."""
    endpoint = f"{cloud.compute_url}/v2.1"
    model, url = _model(cloud, "compute-url", args=("model", "serve", "--compute-url", endpoint))
    try:
        health = wait_for(lambda: (h := _health(url))["bootstrapped"] and h, 120, "the model to bootstrap")
        assert health["status"] == "ok" and health["source"] == f"Nova at {endpoint}", health
        _equals_truth(cloud, url)
    finally:
        assert model.stop() == 0, model.output()


def test_the_python_example_of_the_docs(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    from novawatch.sources.cloud import CloudOptions, open_cloud

    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(cloud.clouds_yaml))
    source = open_cloud(CloudOptions("production"))
    try:
        snapshot = source.snapshot()
    finally:
        source.close()
    truth = httpx.get(cloud.compute_url + "/v1/snapshot", timeout=30).json()
    assert [n.uuid for n in snapshot.nodes] == [n["uuid"] for n in truth["nodes"]]
    assert [i.uuid for i in snapshot.instances] == [i["uuid"] for i in truth["instances"]]
    assert source.warnings == []  # the admin has the admin role


def test_no_compute_endpoint_in_the_region_is_explained(cloud: Cloud) -> None:
    """``--os-region-name`` picks one of the entry's regions; the catalog has no compute endpoint there."""
    model, url = _model(cloud, "production-regions", args=("model", "serve", "--os-cloud", "production-regions",
                                                           "--os-region-name", "RegionTwo"))
    try:
        health = wait_for(lambda: (h := _health(url))["problems"] and h, 120, "health to report the problem")
        assert health["status"] == "failing", health
        assert health["source"] == "cloud 'production-regions' (region RegionTwo)"
        problem = health["problems"][0]
        assert "the service catalog has no compute endpoint for this region and interface" in problem, problem
        assert "check region_name and interface" in problem
    finally:
        code = model.stop()
    out = model.output()
    assert code == 0 and "Traceback" not in out, out
    _assert_no_secret(cloud, out, str(health))


def test_a_region_the_entry_does_not_list_stops_at_once(cloud: Cloud) -> None:
    model, _ = _model(cloud, "production", args=("model", "serve", "--os-cloud", "production",
                                                 "--os-region-name", "RegionTwo"))
    code = model.proc.wait(120)
    model.stop()
    out = model.output()
    assert code == 2 and "Region RegionTwo is not a valid region name for cloud production" in out, out
    assert "Traceback" not in out
