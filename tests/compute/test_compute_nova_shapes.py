"""Nova-shaped views of the compute rows (compute/nova_shapes.py), as hooks written for Nova read them."""

from __future__ import annotations

import json

import pytest

from novawatch.compute import db, nova_shapes
from novawatch.compute.network import Network


def _instance() -> db.Instance:
    row = db.Instance(id=42, uuid="u-1", user_id="usr", project_id="prj", host="h1", node="h1", instance_type_id=1,
                      vcpus=1, memory_mb=512, root_gb=1, vm_state="active", power_state="shutdown",
                      metadata_={"role": "web"}, system_metadata={}, tags=["a"], deleted=False)
    row.info_cache = db.InstanceInfoCache(instance_uuid="u-1", network_info=[Network(lambda: "p-0001").allocate_port()])
    return row


def test_the_instance_reads_by_attribute_and_by_key_with_novas_names_and_values() -> None:
    flavor = db.Flavor(id=1, flavorid="f1", name="small", memory_mb=512, vcpus=1, root_gb=1, extra_specs={"k": 1})
    inst = nova_shapes.Instance(_instance(), flavor)
    assert inst.uuid == inst["uuid"] == inst.get("uuid") == "u-1"
    assert inst.power_state == 4  # Nova's power_state.SHUTDOWN
    assert inst.name == "instance-0000002a"
    assert inst.metadata == {"role": "web"} and inst.tags == ["a"]
    assert inst.flavor is not None and inst.flavor["name"] == "small" and inst.flavor.extra_specs == {"k": "1"}
    assert "host" in inst and "nope" not in inst and inst.get("nope", 7) == 7
    with pytest.raises(KeyError):
        inst["nope"]
    with pytest.raises(AttributeError):
        inst.nope  # noqa: B018
    primitive = inst.obj_to_primitive()
    assert primitive["nova_object.name"] == "Instance" and primitive["nova_object.data"]["host"] == "h1"


def test_network_info_is_novas_model_with_its_helpers() -> None:
    inst = nova_shapes.Instance(_instance())
    nw_info = inst.get_network_info()
    assert isinstance(nw_info, list) and len(nw_info) == 1
    (vif,) = nw_info
    assert vif["id"] == "p-0001" and vif["network"]["label"] == "private"
    assert [ip["address"] for ip in nw_info.fixed_ips()] == ["10.0.0.1", "fd00::1"]
    assert [ip["version"] for ip in vif.fixed_ips()] == [4, 6]
    assert vif.labeled_ips()[0]["network_label"] == "private" and nw_info.floating_ips() == []
    assert json.loads(nw_info.json())[0]["address"] == vif["address"]
    assert nw_info.wait() is nw_info
    assert nova_shapes.NetworkAPI().get_instance_nw_info(None, inst) == nw_info


def test_the_request_context() -> None:
    context = nova_shapes.RequestContext("usr", "prj", request_id="req-1")
    assert context.to_dict()["request_id"] == "req-1" and not context.is_admin
    admin = context.elevated()
    assert admin.is_admin and "admin" in admin.roles and admin.request_id == "req-1"
