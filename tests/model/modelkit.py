"""Notifications for model tests, built from Nova's published samples with the fields a test sets."""

from __future__ import annotations

import json
from typing import Any

from novakit import load as sample
from novakit import samples_dir as samples_dir  # re-exported for the model tests


def sample_name(event_type: str) -> str:
    """``instance.pause.end`` -> ``instance-pause-end``."""
    return event_type.replace(".", "-")


UUIDS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(1000)]
VOLS = [f"11111111-0000-4000-8000-{i:012d}" for i in range(1000)]
NODES = [f"22222222-0000-4000-8000-{i:012d}" for i in range(1000)]


def ts(second: float) -> str:
    """An oslo timestamp ``second`` seconds after a fixed moment."""
    whole = int(second)
    micro = round((second - whole) * 1_000_000)
    return f"2026-01-01 00:{whole // 60:02d}:{whole % 60:02d}.{micro:06d}"


def finish(doc: dict[str, Any], when: float | None, mid: str | None) -> bytes:
    if when is not None:
        doc["timestamp"] = ts(when)
    if mid is not None:
        doc["message_id"] = mid
    return json.dumps(doc).encode()


def instance(
    event_type: str,
    uuid: str,
    *,
    when: float | None = None,
    mid: str | None = None,
    host: str | None = "compute",
    node: str | None = "__host__",
    state: str = "active",
    power_state: str = "running",
    task_state: str | None = None,
    locked: bool = False,
    flavor: tuple[int, int, int, int, int] = (1, 512, 1, 0, 0),
    volumes: list[str] | None = None,
    boot_volume: str | None = None,
    block_devices_null: bool = False,
    project: str = "6f70656e737461636b20342065766572",
    name: str = "some-server",
) -> bytes:
    """An instance notification; ``flavor`` is (vcpus, memory_mb, root_gb, ephemeral_gb, swap_mb)."""
    doc = sample(sample_name(event_type))
    data = doc["payload"]["nova_object.data"]
    data.update(
        uuid=uuid, host=host, node=host if node == "__host__" else node, state=state, power_state=power_state,
        task_state=task_state, locked=locked, tenant_id=project, display_name=name,
    )
    fl = data["flavor"]["nova_object.data"]
    fl["vcpus"], fl["memory_mb"], fl["root_gb"], fl["ephemeral_gb"], fl["swap"] = flavor
    if block_devices_null:
        data["block_devices"] = None
    else:
        bdms = []
        if boot_volume is not None:
            bdms.append(_bdm(boot_volume, 0))
            data["image_uuid"] = ""
        bdms += [_bdm(v, None) for v in volumes or []]
        data["block_devices"] = bdms
    return finish(doc, when, mid)


def _bdm(volume_id: str, boot_index: int | None) -> dict[str, Any]:
    return {
        "nova_object.data": {
            "boot_index": boot_index, "delete_on_termination": False, "device_name": "/dev/sdb", "tag": None,
            "volume_id": volume_id,
        },
        "nova_object.name": "BlockDevicePayload",
        "nova_object.namespace": "nova",
        "nova_object.version": "1.0",
    }


def service(
    event_type: str,
    host: str,
    *,
    when: float | None = None,
    mid: str | None = None,
    disabled: bool = False,
    reason: str | None = None,
    forced_down: bool = False,
    binary: str = "nova-compute",
) -> bytes:
    doc = sample(sample_name(event_type))
    doc["payload"]["nova_object.data"].update(
        host=host, disabled=disabled, disabled_reason=reason, forced_down=forced_down, binary=binary
    )
    return finish(doc, when, mid)


def compute_node(
    event_type: str,
    uuid: str,
    host: str,
    *,
    when: float | None = None,
    mid: str | None = None,
    vcpus: int = 32,
    memory_mb: int = 131072,
    local_gb: int = 1000,
    used: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> bytes:
    """``compute_node.*`` (no Nova sample exists: Nova never shipped them); ``used`` is the reported usage."""
    if event_type == "compute_node.delete":
        data: dict[str, Any] = {"id": 1, "uuid": uuid}
        name = "ComputeNodeDeletePayload"
    else:
        data = {
            "id": 1, "uuid": uuid, "host": host, "vcpus": vcpus, "memory_mb": memory_mb, "local_gb": local_gb,
            "vcpus_used": used[0], "memory_mb_used": used[1], "local_gb_used": used[2], "running_vms": used[3],
            "hypervisor_type": "fake", "hypervisor_version": 1000, "hypervisor_hostname": host,
            "free_ram_mb": memory_mb - used[1], "free_disk_gb": local_gb - used[2], "current_workload": 0,
            "disk_available_least": local_gb - used[2], "host_ip": "192.168.1.1",
        }
        name = "ComputeNodePayload"
    doc = {
        "event_type": event_type,
        "payload": {"nova_object.data": data, "nova_object.name": name, "nova_object.namespace": "nova",
                    "nova_object.version": "1.0"},
        "priority": "INFO",
        "publisher_id": f"nova-compute:{host}",
    }
    return finish(doc, when, mid)


def legacy(
    event_type: str,
    uuid: str,
    *,
    when: float | None = None,
    mid: str | None = None,
    host: str | None = "compute",
    node: str | None = "__host__",
    state: str = "active",
    task_state: str | None = None,
    flavor: tuple[int, int, int, int] = (1, 512, 1, 0),
    image_ref_url: str | None = "http://glance/images/155d900f-4e14-4e4c-a73d-069cbf4541e6",
    volume_id: str | None = None,
    project: str = "6f70656e737461636b20342065766572",
    name: str = "some-server",
) -> bytes:
    """A legacy ``compute.instance.*`` notification (Nova publishes no samples of these); ``flavor`` is
    (vcpus, memory_mb, root_gb, ephemeral_gb)."""
    vcpus, memory_mb, root_gb, ephemeral_gb = flavor
    payload: dict[str, Any] = {
        "tenant_id": project, "user_id": "fake", "instance_id": uuid, "display_name": name,
        "reservation_id": "r-1", "hostname": name, "instance_type": "m1.small", "instance_type_id": 1,
        "instance_flavor_id": "1", "architecture": "x86_64", "memory_mb": memory_mb,
        "disk_gb": root_gb + ephemeral_gb, "vcpus": vcpus, "root_gb": root_gb, "ephemeral_gb": ephemeral_gb,
        "host": host, "node": host if node == "__host__" else node, "availability_zone": "nova", "cell_name": "",
        "created_at": "2012-10-29 13:42:11+00:00", "terminated_at": "", "deleted_at": "", "launched_at": "",
        "image_ref_url": image_ref_url, "os_type": None, "kernel_id": "", "ramdisk_id": "", "state": state,
        "state_description": task_state or "", "progress": "", "access_ip_v4": None, "access_ip_v6": None,
        "image_meta": {}, "metadata": {},
    }
    if event_type == "compute.instance.update":
        payload.update(old_state=state, old_task_state=None, new_task_state=task_state,
                       audit_period_beginning="2012-10-01T00:00:00.000000",
                       audit_period_ending="2012-10-29T13:42:11.000000")
    if volume_id is not None:
        payload["volume_id"] = volume_id
    doc = {"event_type": event_type, "payload": payload, "priority": "INFO", "publisher_id": f"compute.{host}"}
    return finish(doc, when, mid)
