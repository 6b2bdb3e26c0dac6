"""The data model bootstraps from novawatch's own Nova API through openstacksdk and gets the database's model."""

from __future__ import annotations

import httpx
import msgspec
from novacloud import NovaCloud

from novawatch import snapshot
from novawatch.compute.source import ComputeSource
from novawatch.model import ClusterModel, Consumer, bootstrap, to_snapshot
from novawatch.sources import nova_views
from novawatch.sources.openstack import OpenStackSource

IMAGE = "155d900f-4e14-4e4c-a73d-069cbf4541e6"


def _varied_cloud(cloud: NovaCloud) -> None:
    """Instances in many states: active, booted from volume with a data volume, stopped, locked,
    shelved offloaded (no host), soft-deleted; a disabled host and a forced-down one."""
    svc = cloud.service
    small, medium = svc.flavor_by_name("m1.small"), svc.flavor_by_name("m1.medium")
    a = svc.boot("a", small, host="host-1")
    b = svc.boot("b", medium, host="host-2", boot_volume_gb=10, project_id="other-project")
    svc.attach_volume(b.uuid, svc.create_volume(3).id)
    c = svc.boot("c", medium, host="host-1")
    svc.power_off(c.uuid)
    svc.lock(c.uuid, "why not")
    d = svc.boot("d", small, host="host-3")
    svc.shelve(d.uuid)
    svc.shelve_offload(d.uuid)
    e = svc.boot("e", small, host="host-3")
    svc.soft_delete(e.uuid)
    svc.disable_service("host-2", "maintenance")
    svc.force_down_service("host-3")
    svc.commit()
    assert a.vm_state == "active" and e.vm_state == "soft-delete"


def test_source_lists_what_the_database_holds(cloud: NovaCloud) -> None:
    _varied_cloud(cloud)
    source = OpenStackSource.from_endpoint(cloud.endpoint)
    assert snapshot.dumps(source.snapshot()) == snapshot.dumps(cloud.truth())
    truth = cloud.truth()
    database = ComputeSource(cloud.service.repo.engine)
    for node in truth.nodes:
        assert source.get_node(node.uuid) == database.get_node(node.uuid)
    for inst in truth.instances:
        got = source.get_instance(inst.uuid)
        assert got is not None and got.volumes == inst.volumes and got.host == inst.host
    assert source.get_node("00000000-0000-0000-0000-000000000000") is None
    assert source.get_instance("00000000-0000-0000-0000-000000000000") is None


def test_model_bootstrapped_through_openstacksdk_equals_the_database(cloud: NovaCloud) -> None:
    _varied_cloud(cloud)
    cluster = ClusterModel(OpenStackSource.from_endpoint(cloud.endpoint))
    bootstrap(cluster, cluster.source)  # type: ignore[arg-type]
    assert snapshot.dumps(to_snapshot(cluster, reported=False)) == snapshot.dumps(cloud.truth())
    # and it keeps up through notifications afterwards
    cloud.memory.clear()
    flavor = httpx.get(cloud.endpoint + "/flavors").json()["flavors"][0]["id"]
    resp = httpx.post(cloud.endpoint + "/servers", json={"server": {"name": "late", "imageRef": IMAGE,
                                                                    "flavorRef": flavor}})
    assert resp.status_code == 202
    Consumer(cluster).process_all(s.body for s in cloud.memory.sent)
    assert snapshot.dumps(to_snapshot(cluster, reported=False)) == snapshot.dumps(cloud.truth())


def test_older_microversion_looks_flavors_up(cloud: NovaCloud) -> None:
    """Below 2.47 a server names its flavor by id only: the source fetches (and caches) the flavor."""
    _varied_cloud(cloud)
    source = OpenStackSource.from_endpoint(cloud.endpoint)
    raw = httpx.get(cloud.endpoint + "/servers/detail", headers={"OpenStack-API-Version": "compute 2.1"}).json()
    servers = raw["servers"]
    assert servers and all(set(s["flavor"]) == {"id", "links"} for s in servers)
    records = {r.uuid: r for r in (nova_views.instance_from_server(s, source._flavor) for s in servers)}
    assert len(source._flavors) == 2
    truth = {i.uuid: i for i in cloud.truth().instances}
    for uuid, record in records.items():
        # "locked" is shown from 2.9 on only
        assert msgspec.structs.replace(record, locked=truth[uuid].locked) == truth[uuid]
