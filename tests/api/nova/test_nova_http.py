"""Version discovery, microversions, Nova's error bodies and older-microversion forms, over plain HTTP."""

from __future__ import annotations

import httpx
from novacloud import TOKEN, NovaCloud

from novawatch.api.nova import MAX_VERSION

IMAGE = "155d900f-4e14-4e4c-a73d-069cbf4541e6"


def _h(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def test_version_discovery(cloud: NovaCloud) -> None:
    root = httpx.get(cloud.server.url + "/").json()
    (entry,) = root["versions"]
    assert entry["id"] == "v2.1" and entry["min_version"] == "2.1" and entry["version"] == MAX_VERSION
    for path in ("/v2.1", "/v2.1/"):
        assert httpx.get(cloud.server.url + path).json()["version"]["version"] == MAX_VERSION
    # novawatch's own API is still served beside it
    assert httpx.get(cloud.server.url + "/v1/health").json()["status"] == "ok"


def test_microversion_headers(cloud: NovaCloud) -> None:
    url = cloud.endpoint + "/flavors"
    default = httpx.get(url)
    assert default.headers["OpenStack-API-Version"] == "compute 2.1"
    assert default.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    assert httpx.get(url, headers=_h("2.53")).headers["OpenStack-API-Version"] == "compute 2.53"
    assert httpx.get(url, headers={"X-OpenStack-Nova-API-Version": "2.60"}).headers[
        "X-OpenStack-Nova-API-Version"] == "2.60"
    assert httpx.get(url, headers=_h("latest")).headers["OpenStack-API-Version"] == f"compute {MAX_VERSION}"
    too_new = httpx.get(url, headers=_h("2.200"))
    assert too_new.status_code == 406
    assert too_new.json()["computeFault"]["message"].endswith(f"maximum is {MAX_VERSION}.")
    bad = httpx.get(url, headers=_h("two"))
    assert bad.status_code == 400 and "badRequest" in bad.json()


def test_error_bodies(cloud: NovaCloud) -> None:
    missing = httpx.get(cloud.endpoint + "/servers/nope")
    assert missing.status_code == 404
    assert missing.json() == {"itemNotFound": {"code": 404, "message": "Instance nope could not be found."}}
    bad = httpx.post(cloud.endpoint + "/servers", content=b"{not json")
    assert bad.status_code == 400 and bad.json()["badRequest"]["code"] == 400
    no_flavor = httpx.post(cloud.endpoint + "/servers", json={"server": {"name": "x", "imageRef": IMAGE,
                                                                         "flavorRef": "missing"}})
    assert no_flavor.status_code == 400 and "Flavor missing" in no_flavor.json()["badRequest"]["message"]
    assert httpx.get(cloud.endpoint + "/no-such-thing").json()["itemNotFound"]["code"] == 404
    flavor = httpx.get(cloud.endpoint + "/flavors").json()["flavors"][0]["id"]
    bad_image = httpx.post(cloud.endpoint + "/servers", json={"server": {"name": "x", "imageRef": "i",
                                                                         "flavorRef": flavor}})
    assert bad_image.status_code == 400
    assert bad_image.json()["badRequest"]["message"] == (
        "Invalid input for field/attribute imageRef. Value: i. 'i' is not a 'uuid'")
    made = httpx.post(cloud.endpoint + "/servers", json={"server": {"name": "x", "imageRef": IMAGE.upper(),
                                                                    "flavorRef": flavor}})
    sid = made.json()["server"]["id"]
    assert made.status_code == 202 and made.headers["Location"].endswith(f"/v2.1/servers/{sid}")
    # a state conflict: confirm a resize that never happened
    conflict = httpx.post(f"{cloud.endpoint}/servers/{sid}/action", json={"confirmResize": None})
    assert conflict.status_code == 409 and conflict.json()["conflictingRequest"]["code"] == 409
    # Nova's "uuid-like" spellings are taken, and stored the way notifications carry them
    assert httpx.get(f"{cloud.endpoint}/servers/{sid}").json()["server"]["image"]["id"] == IMAGE
    for action, body, why in (("rebuild", {"imageRef": "cirros"}, "'cirros' is not a 'uuid'"),
                              ("rescue", {"rescue_image_ref": 7}, "7 is not a 'uuid'"),
                              ("rebuild", {}, "'imageRef' is a required property")):
        refused = httpx.post(f"{cloud.endpoint}/servers/{sid}/action", json={action: body})
        assert refused.status_code == 400 and why in refused.json()["badRequest"]["message"]
    unknown = httpx.post(f"{cloud.endpoint}/servers/{sid}/action", json={"frobnicate": None})
    assert unknown.status_code == 404


def test_older_microversion_forms(cloud: NovaCloud) -> None:
    flavors = httpx.get(cloud.endpoint + "/flavors/detail").json()["flavors"]
    assert flavors[0]["swap"] == "" and "extra_specs" not in flavors[0]
    flavor = flavors[0]["id"]
    sid = httpx.post(cloud.endpoint + "/servers", json={"server": {"name": "old", "imageRef": IMAGE,
                                                                   "flavorRef": flavor}}).json()["server"]["id"]
    old = httpx.get(f"{cloud.endpoint}/servers/{sid}").json()["server"]
    assert old["flavor"]["id"] == flavor and "locked" not in old
    new = httpx.get(f"{cloud.endpoint}/servers/{sid}", headers=_h("2.73")).json()["server"]
    assert new["flavor"]["original_name"] == flavors[0]["name"] and new["locked"] is False
    # hypervisors and services: integer ids before 2.53, uuids after
    hyps = httpx.get(cloud.endpoint + "/os-hypervisors").json()["hypervisors"]
    assert all(isinstance(h["id"], int) for h in hyps)
    hyps53 = httpx.get(cloud.endpoint + "/os-hypervisors/detail", headers=_h("2.53")).json()["hypervisors"]
    assert all(isinstance(h["id"], str) and h["vcpus"] == 8 for h in hyps53)
    search = httpx.get(cloud.endpoint + "/os-hypervisors/host-2/search").json()["hypervisors"]
    assert [h["hypervisor_hostname"] for h in search] == ["host-2"]
    # the pre-2.53 service actions, by host and binary
    body = {"host": "host-1", "binary": "nova-compute", "disabled_reason": "old style"}
    resp = httpx.put(cloud.endpoint + "/os-services/disable-log-reason", json=body)
    assert resp.json()["service"] == {"host": "host-1", "binary": "nova-compute", "status": "disabled",
                                      "disabled_reason": "old style"}
    resp = httpx.put(cloud.endpoint + "/os-services/force-down", json={**body, "forced_down": True},
                     headers=_h("2.11"))
    assert resp.json()["service"]["forced_down"] is True
    services = httpx.get(cloud.endpoint + "/os-services", params={"host": "host-1"}, headers=_h("2.11")).json()
    assert services["services"][0]["state"] == "down" and services["services"][0]["status"] == "disabled"
    resp = httpx.put(cloud.endpoint + "/os-services/enable", json={"host": "host-1", "binary": "nova-compute"})
    assert resp.json()["service"]["status"] == "enabled"


def test_body_limit(cloud: NovaCloud) -> None:
    big = {"server": {"name": "x" * (2 * 1024 * 1024)}}
    resp = httpx.post(cloud.endpoint + "/servers", json=big)
    assert resp.status_code == 413 and resp.json()["overLimit"]["code"] == 413

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 65536

    chunked = httpx.post(cloud.endpoint + "/servers", content=chunks())
    assert chunked.status_code == 413


def test_token_needed_except_for_discovery(token_cloud: NovaCloud) -> None:
    assert httpx.get(token_cloud.server.url + "/").status_code == 200
    assert httpx.get(token_cloud.endpoint).status_code == 200
    denied = httpx.get(token_cloud.endpoint + "/servers")
    assert denied.status_code == 401 and denied.json()["unauthorized"]["code"] == 401
    assert httpx.get(token_cloud.endpoint + "/servers", headers={"X-Auth-Token": "wrong"}).status_code == 401
    assert httpx.get(token_cloud.endpoint + "/servers", headers={"X-Auth-Token": TOKEN}).status_code == 200


def test_the_image_stub_knows_ids_not_names(cloud: NovaCloud) -> None:
    root = cloud.endpoint.removesuffix("/v2.1")
    found = httpx.get(f"{root}/image/v2/images/{IMAGE}")
    assert found.status_code == 200 and found.json()["name"] == "cirros"
    # Nova refuses an imageRef that is not a UUID: only an id names an image, and a name is found by listing
    # (what a client does next), which gives the id.
    missing = httpx.get(f"{root}/image/v2/images/cirros")
    assert missing.status_code == 404 and missing.json()["message"] == "No image found with ID cirros"
    assert [i["id"] for i in httpx.get(f"{root}/image/v2/images", params={"name": "cirros"}).json()["images"]] \
        == [IMAGE]
    assert httpx.get(f"{root}/image/v2/images", params={"name": "ubuntu"}).json()["images"] == []
