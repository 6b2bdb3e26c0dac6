"""Nova-shaped views of novawatch's rows, for code written against Nova's objects (hooks of the ``nova.hooks``
entry point group).

* :class:`Instance`: an instance row read as Nova's ``objects.Instance`` allows, by attribute and by key
  (``instance.uuid``, ``instance["host"]``, ``instance.get("node")``), with Nova's field names and value
  kinds (``power_state`` as Nova's integer, ``flavor``, ``info_cache``, ``get_network_info()``).
* :class:`NetworkInfo`, :class:`VIF`, :class:`Network`, :class:`Subnet`, :class:`FixedIP`: Nova's network
  model (``nova.network.model``): dicts, as Nova's are, with its helper methods (``fixed_ips()``,
  ``floating_ips()``, ``labeled_ips()``, ``json()``, ``wait()``).
* :class:`RequestContext` and :class:`NetworkAPI`: what Nova passed beside them.

Views are read-only and live: they read the row when asked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy.orm import object_session

from novawatch.compute import db

#: Nova's ``nova.compute.power_state`` integers, by novawatch's power state names.
POWER_STATES = {"pending": 0, "running": 1, "paused": 3, "shutdown": 4, "crashed": 6, "suspended": 7}

class Model(dict[str, Any]):
    """Nova's network model base: a dict with a ``meta`` dict (``get_meta``)."""

    def get_meta(self, key: str, default: Any = None) -> Any:
        return self.get("meta", {}).get(key, default)


class FixedIP(Model):
    """A fixed IP: ``address``, ``type`` (``fixed``), ``version``, ``floating_ips``, ``meta``."""

    def __init__(self, address: str, version: int, type: str = "fixed") -> None:
        super().__init__(address=address, type=type, version=version, meta={}, floating_ips=[])


class Subnet(Model):
    """A subnet: ``cidr``, ``dns``, ``gateway``, ``ips``, ``routes``, ``version``, ``meta``."""


class Network(Model):
    """A network: ``id``, ``bridge``, ``label``, ``subnets``, ``meta``."""


class VIF(Model):
    """A virtual interface (a port) with its network, as Nova's ``VIF``."""

    def fixed_ips(self) -> list[FixedIP]:
        """Every fixed IP of the interface, subnet by subnet."""
        return [ip for subnet in self["network"]["subnets"] for ip in subnet["ips"]]

    def floating_ips(self) -> list[Any]:
        """The floating IPs of the interface's fixed IPs."""
        return [fip for ip in self.fixed_ips() for fip in ip["floating_ips"]]

    def labeled_ips(self) -> list[dict[str, Any]]:
        """The fixed IPs with the network's label and id, as Nova groups them."""
        network = self["network"]
        ips = self.fixed_ips()
        if not ips:
            return []
        return [{"network_label": network["label"], "network_id": network["id"], "ips": ips}]

    def is_hybrid_plug_enabled(self) -> bool:
        return bool(self["details"].get("ovs_hybrid_plug", False))

    def is_neutron_filtering_enabled(self) -> bool:
        return bool(self["details"].get("port_filter", False))


class NetworkInfo(list[VIF]):
    """An instance's network info: the list of its VIFs, as Nova's ``NetworkInfo``."""

    def fixed_ips(self) -> list[FixedIP]:
        return [ip for vif in self for ip in vif.fixed_ips()]

    def floating_ips(self) -> list[Any]:
        return [fip for vif in self for fip in vif.floating_ips()]

    def json(self) -> str:
        """The network info as JSON (what Nova stores in the info cache)."""
        return json.dumps(self)

    def wait(self, do_raise: bool = True) -> NetworkInfo:
        """Nova's asynchronous network info waits here; novawatch's is always complete."""
        return self


def network_info(vifs: list[dict[str, Any]]) -> NetworkInfo:
    """novawatch's stored VIFs (``novawatch.compute.network``) as Nova's network model."""
    out = NetworkInfo()
    for vif in vifs:
        net = vif.get("network", {})
        subnets = []
        for subnet in net.get("subnets", []):
            ips = [FixedIP(ip["address"], ip.get("version", 4), ip.get("type", "fixed"))
                   for ip in subnet.get("ips", [])]
            version = ips[0]["version"] if ips else None
            subnets.append(Subnet(cidr=subnet.get("cidr"), dns=[], gateway=None, ips=ips, routes=[],
                                  version=version, meta={}))
        network = Network(id=net.get("id"), bridge=None, label=net.get("label"), subnets=subnets,
                          meta={"injected": False, "tenant_id": None})
        out.append(VIF(id=vif.get("id"), address=vif.get("address"), network=network, type=vif.get("type"),
                       details={}, devname=vif.get("devname"), ovs_interfaceid=None, qbh_params=None,
                       qbg_params=None, active=True, vnic_type="normal", profile={}, preserve_on_delete=False,
                       delegate_create=False, meta=dict(vif.get("meta", {}))))
    return out


class DictView:
    """Attribute and key access over named fields, as Nova's ``NovaObjectDictCompat`` allows."""

    _fields: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> Any:
        if name not in self._fields:
            raise KeyError(name)
        return getattr(self, name)

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name) if name in self._fields else default

    def keys(self) -> list[str]:
        return list(self._fields)

    def items(self) -> list[tuple[str, Any]]:
        return [(name, getattr(self, name)) for name in self._fields]

    def values(self) -> list[Any]:
        return [getattr(self, name) for name in self._fields]


class Flavor(DictView):
    """An instance's flavor as Nova's ``objects.Flavor``."""

    _fields = ("id", "flavorid", "name", "memory_mb", "vcpus", "root_gb", "ephemeral_gb", "swap", "rxtx_factor",
               "vcpu_weight", "disabled", "is_public", "extra_specs", "description")

    def __init__(self, row: db.Flavor) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        if name == "extra_specs":
            return {str(k): str(v) for k, v in self._row.extra_specs.items()}
        if name in self._fields:
            return getattr(self._row, name)
        raise AttributeError(name)


class InfoCache(DictView):
    """An instance's network info cache as Nova's ``objects.InstanceInfoCache``."""

    _fields = ("instance_uuid", "network_info")

    def __init__(self, instance: db.Instance) -> None:
        self._row = instance

    @property
    def instance_uuid(self) -> str:
        return self._row.uuid

    @property
    def network_info(self) -> NetworkInfo:
        return network_info(self._row.info_cache.network_info)


#: Nova's Instance fields read straight from the row of the same name.
_SAME = ("uuid", "user_id", "project_id", "reservation_id", "display_name", "display_description", "hostname",
         "host", "node", "launched_on", "os_type", "architecture", "availability_zone", "instance_type_id", "vcpus",
         "memory_mb", "root_gb", "ephemeral_gb", "image_ref", "key_name", "kernel_id", "ramdisk_id", "created_at",
         "updated_at", "launched_at", "terminated_at", "deleted_at", "vm_state", "task_state", "progress", "locked",
         "locked_by", "auto_disk_config", "deleted", "id")


class Instance(DictView):
    """An instance row as Nova's ``objects.Instance``: attribute and key access, Nova's names and value kinds."""

    _fields = (*_SAME, "power_state", "metadata", "system_metadata", "tags", "flavor", "info_cache", "name")

    def __init__(self, row: db.Instance, flavor: db.Flavor | None = None) -> None:
        self._row = row
        self._flavor = flavor

    def __getattr__(self, name: str) -> Any:
        if name in _SAME:
            return getattr(self._row, name)
        raise AttributeError(f"'Instance' object has no attribute {name!r}")

    @property
    def power_state(self) -> int:
        return POWER_STATES.get(self._row.power_state or "pending", 0)

    @property
    def metadata(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._row.metadata_.items()}

    @property
    def system_metadata(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self._row.system_metadata or {}).items()}

    @property
    def tags(self) -> list[str]:
        return [str(t) for t in self._row.tags]

    @property
    def name(self) -> str:
        """Nova's hypervisor-side name (``instance-%08x``)."""
        return f"instance-{self._row.id:08x}"

    @property
    def flavor(self) -> Flavor | None:
        if self._flavor is not None:
            return Flavor(self._flavor)
        session = object_session(self._row)
        row = session.get(db.Flavor, self._row.instance_type_id) if session is not None else None
        return None if row is None else Flavor(row)

    @property
    def info_cache(self) -> InfoCache:
        return InfoCache(self._row)

    def get_network_info(self) -> NetworkInfo:
        """The instance's network info (Nova's ``Instance.get_network_info()``)."""
        return self.info_cache.network_info

    def obj_to_primitive(self) -> dict[str, Any]:
        """The instance in Nova's object envelope (fields that are plain values)."""
        data = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.items()
                if k not in ("flavor", "info_cache")}
        return {"nova_object.name": "Instance", "nova_object.namespace": "nova", "nova_object.version": "2.8",
                "nova_object.data": data}

    def __repr__(self) -> str:
        return f"Instance(uuid={self._row.uuid!r}, host={self._row.host!r})"


class RequestContext(DictView):
    """What Nova passed as ``context``: the request's user, project and id."""

    _fields = ("user_id", "project_id", "request_id", "global_request_id", "is_admin", "roles", "read_deleted")

    def __init__(self, user_id: str | None, project_id: str | None, request_id: str | None,
                 is_admin: bool = False) -> None:
        self.user_id = user_id
        self.project_id = project_id
        self.request_id = request_id
        self.global_request_id = None
        self.is_admin = is_admin
        self.roles = ["reader", "member", "admin"] if is_admin else ["reader", "member"]
        self.read_deleted = "no"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.items())

    def elevated(self) -> RequestContext:
        return RequestContext(self.user_id, self.project_id, self.request_id, is_admin=True)


class NetworkAPI:
    """What Nova passed as ``impl``: its network API, here able to tell an instance's network info."""

    def get_instance_nw_info(self, context: Any, instance: Any, **kwargs: Any) -> NetworkInfo:
        row = instance._row if isinstance(instance, Instance) else instance
        return network_info(row.info_cache.network_info)
