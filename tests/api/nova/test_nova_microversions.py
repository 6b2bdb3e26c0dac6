"""The added Compute API resources over plain HTTP: Nova 34's response shapes per microversion, and refusals."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from novacloud import NovaCloud

IMAGE = "155d900f-4e14-4e4c-a73d-069cbf4541e6"


class Api:
    """Requests to the Nova API at a chosen microversion."""

    def __init__(self, cloud: NovaCloud) -> None:
        self.cloud = cloud
        self.client = httpx.Client(base_url=cloud.endpoint, timeout=30)

    def call(self, method: str, path: str, version: str = "2.1", **kw: Any) -> httpx.Response:
        headers = {"OpenStack-API-Version": f"compute {version}", **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kw)

    def boot(self, name: str) -> str:
        flavor = next(f.flavorid for f in self.cloud.service.flavors.values() if f.name == "m1.small")
        made = self.call("POST", "/servers", json={"server": {"name": name, "flavorRef": flavor, "imageRef": IMAGE}})
        assert made.status_code == 202, made.text
        return str(made.json()["server"]["id"])


@pytest.fixture
def api(cloud: NovaCloud) -> Api:
    return Api(cloud)


def _names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(s["name"] for s in response.json()["servers"])


def test_soft_deleted_servers_are_listed_as_nova_34_lists_them(api: Api) -> None:
    api.boot("alive")
    soft = api.boot("soft")
    gone = api.boot("gone")
    api.cloud.service.soft_delete(soft)
    api.cloud.service.delete(gone)
    api.cloud.service.commit()
    assert _names(api.call("GET", "/servers")) == ["alive"]
    # the status becomes a vm_state filter on a query that leaves soft-deleted servers out
    assert _names(api.call("GET", "/servers", params={"status": "SOFT_DELETED"})) == []
    assert _names(api.call("GET", "/servers", params={"deleted": "true", "status": "SOFT_DELETED"})) == ["soft"]
    # soft_deleted, whatever its value, adds them to the others
    assert _names(api.call("GET", "/servers/detail", params={"soft_deleted": "false"})) == ["alive", "soft"]
    # deleted=true: the deleted and the soft-deleted; status=DELETED: the deleted
    assert _names(api.call("GET", "/servers", params={"deleted": "1"})) == ["gone", "soft"]
    deleted = api.call("GET", "/servers/detail", params={"status": "DELETED"}).json()["servers"]
    assert [(s["name"], s["status"]) for s in deleted] == [("gone", "DELETED")]
    assert api.call("GET", f"/servers/{gone}").status_code == 404


def test_rename_and_describe(api: Api) -> None:
    sid = api.boot("old")
    old = api.call("PUT", f"/servers/{sid}", json={"server": {"name": "new"}})
    assert old.status_code == 200 and old.json()["server"]["name"] == "new"
    # before 2.75 the answer is Nova's base view, from 2.75 the whole server
    assert "OS-EXT-STS:vm_state" not in old.json()["server"] and "OS-EXT-SRV-ATTR:host" not in old.json()["server"]
    full = api.call("PUT", f"/servers/{sid}", "2.75", json={"server": {"description": "d"}}).json()["server"]
    assert full["OS-EXT-STS:vm_state"] == "active" and full["description"] == "d" and full["name"] == "new"
    refused = api.call("PUT", f"/servers/{sid}", "2.18", json={"server": {"description": "d"}})
    assert refused.status_code == 400 and "2.19" in refused.json()["badRequest"]["message"]
    assert api.call("PUT", f"/servers/{sid}", json={"server": {"name": ""}}).status_code == 400
    assert api.call("PUT", "/servers/nope", json={"server": {"name": "x"}}).status_code == 404


def test_metadata_limits_and_conflicts(api: Api) -> None:
    sid = api.boot("meta")
    assert api.call("PUT", f"/servers/{sid}/metadata/a", json={"meta": {"a": "1"}}).json() == {"meta": {"a": "1"}}
    mismatch = api.call("PUT", f"/servers/{sid}/metadata/a", json={"meta": {"b": "1"}})
    assert mismatch.status_code == 400 and mismatch.json()["badRequest"]["message"] == "Request body and URI mismatch"
    assert api.call("GET", f"/servers/{sid}/metadata/a").json() == {"meta": {"a": "1"}}
    too_many = {f"k{n}": "v" for n in range(128)}
    over = api.call("POST", f"/servers/{sid}/metadata", json={"metadata": too_many})
    assert over.status_code == 403 and "metadata_items" in over.json()["forbidden"]["message"]
    replaced = api.call("PUT", f"/servers/{sid}/metadata", json={"metadata": {"b": "2"}})
    assert replaced.json() == {"metadata": {"b": "2"}}
    assert api.call("DELETE", f"/servers/{sid}/metadata/a").status_code == 404
    assert api.call("DELETE", f"/servers/{sid}/metadata/b").status_code == 204
    assert api.call("GET", f"/servers/{sid}/metadata").json() == {"metadata": {}}
    api.cloud.service.shelve(sid)
    api.cloud.service.commit()
    shelved = api.call("POST", f"/servers/{sid}/metadata", json={"metadata": {"c": "3"}})
    assert shelved.status_code == 409


def test_keypair_microversions(api: Api) -> None:
    public = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aYd44bd8JttDCE/F/pNRr0l"
              "RE+PiqSPO8nDPHw0010JeMH9gYgnnFlyY3/OcJ02RhIPyyxYpv9FhY+2YiUkpwFOcLImyrxEsYXpD/0d3ac30bNH6Sw9JD9UZHYcpSx"
              "sIbECHw== Generated-by-Nova")
    old = api.call("POST", "/os-keypairs", json={"keypair": {"name": "a", "public_key": public}})
    assert old.status_code == 200 and "type" not in old.json()["keypair"]
    assert old.json()["keypair"]["fingerprint"] == "1e:2c:9b:56:79:4b:45:77:f9:ca:7a:98:2c:b0:d5:3c"
    assert api.call("POST", "/os-keypairs", json={"keypair": {"name": "t", "type": "ssh"}}).status_code == 400
    new = api.call("POST", "/os-keypairs", "2.2", json={"keypair": {"name": "b", "type": "x509"}})
    assert new.status_code == 201 and new.json()["keypair"]["type"] == "x509"
    assert new.json()["keypair"]["public_key"].startswith("-----BEGIN CERTIFICATE-----")
    assert new.json()["keypair"]["private_key"]  # a PKCS#12 bundle, base64
    # another user's key pair, by an admin (2.10)
    other = api.call("POST", "/os-keypairs", "2.10", json={"keypair": {"name": "c", "user_id": "u2",
                                                                       "public_key": public}})
    assert other.json()["keypair"]["user_id"] == "u2"
    assert [k["keypair"]["name"] for k in api.call("GET", "/os-keypairs", "2.10", params={"user_id": "u2"})
            .json()["keypairs"]] == ["c"]
    paged = api.call("GET", "/os-keypairs", "2.35", params={"limit": 1, "marker": "a"}).json()["keypairs"]
    assert [k["keypair"]["name"] for k in paged] == ["b"]
    shown = api.call("GET", "/os-keypairs/a", "2.2").json()["keypair"]
    assert shown["deleted"] is False and shown["id"] > 0 and shown["type"] == "ssh"
    assert api.call("DELETE", "/os-keypairs/a").status_code == 202
    assert api.call("DELETE", "/os-keypairs/b", "2.2").status_code == 204
    gone = api.call("DELETE", "/os-keypairs/b", "2.2")
    assert gone.status_code == 404 and "Keypair b not found for user fake" in gone.json()["itemNotFound"]["message"]
    bad = api.call("POST", "/os-keypairs", json={"keypair": {"name": "x", "public_key": "ssh-rsa nonsense"}})
    assert bad.status_code == 400 and "failed to generate fingerprint" in bad.json()["badRequest"]["message"]
    assert api.call("POST", "/os-keypairs", json={"keypair": {"name": "bad/name"}}).status_code == 400


def test_server_group_microversions(api: Api) -> None:
    old = api.call("POST", "/os-server-groups", json={"server_group": {"name": "a", "policies": ["affinity"]}})
    assert old.json()["server_group"] == {"id": old.json()["server_group"]["id"], "name": "a",
                                          "policies": ["affinity"], "metadata": {}, "members": []}
    soft = api.call("POST", "/os-server-groups", "2.14",
                    json={"server_group": {"name": "s", "policies": ["soft-affinity"]}})
    assert soft.status_code == 400
    assert api.call("POST", "/os-server-groups", "2.15",
                    json={"server_group": {"name": "s", "policies": ["soft-affinity"]}}).status_code == 200
    new = api.call("POST", "/os-server-groups", "2.64", json={"server_group": {
        "name": "n", "policy": "anti-affinity", "rules": {"max_server_per_host": 3}}}).json()["server_group"]
    assert new["policy"] == "anti-affinity" and new["rules"] == {"max_server_per_host": 3}
    assert new["project_id"] == "6f70656e737461636b20342065766572" and new["user_id"] == "fake"
    assert "policies" not in new and "metadata" not in new
    assert api.call("POST", "/os-server-groups", "2.64", json={"server_group": {
        "name": "r", "policy": "affinity", "rules": {"max_server_per_host": 3}}}).status_code == 400
    assert [g["name"] for g in api.call("GET", "/os-server-groups").json()["server_groups"]] == ["a", "s", "n"]
    elsewhere = api.call("GET", "/os-server-groups", headers={"X-Project-Id": "other"}).json()["server_groups"]
    assert elsewhere == []
    assert len(api.call("GET", "/os-server-groups", headers={"X-Project-Id": "other"},
                        params={"all_projects": "1"}).json()["server_groups"]) == 3
    for n in range(7):
        api.call("POST", "/os-server-groups", json={"server_group": {"name": f"g{n}", "policies": ["affinity"]}})
    over = api.call("POST", "/os-server-groups", json={"server_group": {"name": "x", "policies": ["affinity"]}})
    assert over.status_code == 403
    assert api.call("GET", "/os-server-groups/nope").status_code == 404


def test_instance_action_microversions(api: Api) -> None:
    sid = api.boot("acted")
    stop = api.call("POST", f"/servers/{sid}/action", json={"os-stop": None})
    request_id = stop.headers["x-openstack-request-id"]
    assert request_id.startswith("req-") and stop.headers["x-compute-request-id"] == request_id
    actions = api.call("GET", f"/servers/{sid}/os-instance-actions").json()["instanceActions"]
    assert [a["action"] for a in actions] == ["stop", "create"] and actions[0]["request_id"] == request_id
    assert "updated_at" not in actions[0]
    assert "updated_at" in api.call("GET", f"/servers/{sid}/os-instance-actions", "2.58").json()["instanceActions"][0]
    shown = api.call("GET", f"/servers/{sid}/os-instance-actions/{request_id}").json()["instanceAction"]
    assert list(shown["events"][0]) == ["event", "start_time", "finish_time", "result", "traceback"]
    newer = api.call("GET", f"/servers/{sid}/os-instance-actions/{request_id}", "2.84").json()["instanceAction"]
    event = newer["events"][0]
    assert event["host"] == api.cloud.service.instances[sid].host and len(event["hostId"]) == 56
    assert "details" in event
    # a deleted server's actions: 404 before 2.21, listed from 2.21
    api.call("DELETE", f"/servers/{sid}")
    assert api.call("GET", f"/servers/{sid}/os-instance-actions").status_code == 404
    after = api.call("GET", f"/servers/{sid}/os-instance-actions", "2.21").json()["instanceActions"]
    assert [a["action"] for a in after] == ["delete", "stop", "create"]
    assert api.call("GET", f"/servers/{sid}/os-instance-actions/req-none").status_code == 404


def test_a_failed_action_is_an_error_event(api: Api) -> None:
    sid = api.boot("fails")
    api.cloud.service.failures.per_action["power_off"] = 1.0
    api.call("POST", f"/servers/{sid}/action", json={"os-stop": None})
    [stop, _] = api.call("GET", f"/servers/{sid}/os-instance-actions", "2.84").json()["instanceActions"]
    assert stop["message"] == "Error"
    [event] = api.call("GET", f"/servers/{sid}/os-instance-actions/{stop['request_id']}", "2.84") \
        .json()["instanceAction"]["events"]
    assert event["result"] == "Error" and event["event"] == "compute_stop_instance" and event["traceback"]


def test_migration_microversions(api: Api) -> None:
    sid = api.boot("moved")
    assert api.call("POST", f"/servers/{sid}/action", json={"migrate": {"host": "host-2"}}).status_code == 400
    assert api.call("POST", f"/servers/{sid}/action", "2.56",
                    json={"migrate": {"host": "nowhere"}}).status_code == 400
    target = next(h for h in ("host-1", "host-2", "host-3") if h != api.cloud.service.instances[sid].host)
    assert api.call("POST", f"/servers/{sid}/action", "2.56", json={"migrate": {"host": target}}).status_code == 202
    assert api.cloud.service.instances[sid].host == target
    [old] = api.call("GET", "/os-migrations").json()["migrations"]
    assert "migration_type" not in old and "uuid" not in old and old["status"] == "finished"
    assert api.call("GET", "/os-migrations", "2.23").json()["migrations"][0]["migration_type"] == "migration"
    newest = api.call("GET", "/os-migrations", "2.80").json()["migrations"][0]
    assert newest["uuid"] and newest["user_id"] == "fake" and newest["dest_compute"] == target
    assert api.call("GET", "/os-migrations", params={"host": target}).json()["migrations"] != []
    assert api.call("GET", "/os-migrations", params={"status": "confirmed"}).json()["migrations"] == []
    assert api.call("GET", "/os-migrations", "2.59", params={"marker": "nope"}).status_code == 400
    since = api.call("GET", "/os-migrations", "2.66", params={"changes-since": "2027-01-01T00:00:00Z"})
    assert since.json()["migrations"] == []
    window = api.call("GET", "/os-migrations", "2.66",
                      params={"changes-since": "2026-02-01T00:00:00", "changes-before": "2026-01-01T00:00:00"})
    assert window.status_code == 400


def test_quota_and_limit_microversions(api: Api) -> None:
    project = "6f70656e737461636b20342065766572"
    old = api.call("GET", f"/os-quota-sets/{project}").json()["quota_set"]
    assert old["floating_ips"] == 10 and old["injected_files"] == 5 and old["instances"] == -1
    middle = api.call("GET", f"/os-quota-sets/{project}", "2.36").json()["quota_set"]
    assert "floating_ips" not in middle and middle["injected_files"] == 5
    new = api.call("GET", f"/os-quota-sets/{project}", "2.57").json()["quota_set"]
    assert set(new) == {"id", "instances", "cores", "ram", "metadata_items", "key_pairs", "server_groups",
                        "server_group_members"}
    api.boot("counted")
    detail = api.call("GET", f"/os-quota-sets/{project}/detail", "2.57").json()["quota_set"]
    assert detail["instances"] == {"limit": -1, "in_use": 1, "reserved": 0}
    assert api.call("PUT", f"/os-quota-sets/{project}", json={"quota_set": {"instances": 5}}).status_code == 403
    limits = api.call("GET", "/limits").json()["limits"]
    assert limits["absolute"]["maxImageMeta"] == 128 and limits["rate"] == []
    absolute = api.call("GET", "/limits", "2.57").json()["limits"]["absolute"]
    assert "maxImageMeta" not in absolute and "maxPersonality" not in absolute
    assert absolute["totalInstancesUsed"] == 1 and absolute["totalRAMUsed"] == 2048
    other = api.call("GET", "/limits", "2.57", params={"tenant_id": "someone-else"}).json()["limits"]["absolute"]
    assert other["totalInstancesUsed"] == 0


def test_statistics_zones_console_and_usage(api: Api) -> None:
    sid = api.boot("one")
    stats = api.call("GET", "/os-hypervisors/statistics").json()["hypervisor_statistics"]
    assert stats["count"] == 3 and stats["running_vms"] == 1 and stats["memory_mb_used"] == 2048
    zones = api.call("GET", "/os-availability-zone").json()["availabilityZoneInfo"]
    assert zones == [{"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]
    for host in ("host-1", "host-2", "host-3"):
        api.cloud.service.disable_service(host, "maintenance")
    api.cloud.service.commit()
    zones = api.call("GET", "/os-availability-zone/detail").json()["availabilityZoneInfo"]
    assert zones == [{"zoneName": "nova", "zoneState": {"available": False}, "hosts": None}]

    console = api.call("POST", f"/servers/{sid}/action", json={"os-getConsoleOutput": {"length": "2"}})
    assert console.json()["output"].splitlines()[-1] == "one login: "
    assert len(console.json()["output"].splitlines()) == 2
    bad = api.call("POST", f"/servers/{sid}/action", json={"os-getConsoleOutput": {"length": -2}})
    assert bad.status_code == 400
    api.cloud.service.shelve(sid)
    api.cloud.service.shelve_offload(sid)
    api.cloud.service.commit()
    assert api.call("POST", f"/servers/{sid}/action", json={"os-getConsoleOutput": {}}).status_code == 409

    # usage on the simulated clock (2026-01-01): the server ran from its launch to now
    usage = api.call("GET", "/os-simple-tenant-usage", params={"start": "2025-12-01T00:00:00",
                                                               "detailed": "1"}).json()["tenant_usages"]
    [server] = usage[0]["server_usages"]
    assert server["instance_id"] == sid and server["hours"] >= 0 and server["state"] == "shelved_offloaded"
    assert "server_usages" not in api.call("GET", "/os-simple-tenant-usage",
                                           params={"start": "2025-12-01T00:00:00"}).json()["tenant_usages"][0]
    bad_period = api.call("GET", "/os-simple-tenant-usage", params={"start": "2030-01-01T00:00:00",
                                                                    "end": "2029-01-01T00:00:00"})
    assert bad_period.status_code == 400
    assert api.call("GET", "/os-simple-tenant-usage", params={"start": "yesterday"}).status_code == 400
