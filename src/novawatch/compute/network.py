"""Network info: a fake Neutron that allocates ports (VIFs) and the instance network info cache.

A VIF is stored the way Nova's network model serialises it, so payload code can read
``vif["network"]["label"]``, ``vif["address"]`` (the MAC), ``vif["devname"]`` and the fixed IPs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from novawatch import hooks
from novawatch.compute import db, nova_shapes

VIF = dict[str, Any]



@dataclass(frozen=True)
class Caller:
    """What the compute service knows beside the hooked call's arguments: the API request being served
    (its ``req-...`` id, Nova's ``context.request_id``) and the instance's flavor."""

    request_id: str | None = None
    flavor: db.Flavor | None = None


#: Set around each network info update, for Nova's hooks (``nova_arguments``).
CALLER: ContextVar[Caller | None] = ContextVar("novawatch_network_caller", default=None)

NETWORK_ID = "a1b2c3d4-0000-4000-8000-000000000001"
NETWORK_LABEL = "private"


class Network:
    """Allocates ports with a MAC, a device name and one fixed IPv4 and one fixed IPv6 address."""

    def __init__(self, ids: Callable[[], str], first_address: int = 1) -> None:
        self._ids = ids
        self._next = first_address
        #: Where address numbers come from when several workers share the database (a PostgreSQL sequence,
        #: so no two workers hand out one address); None: this process's own counter.
        self.take: Callable[[], int] | None = None

    def allocate_port(self) -> VIF:
        """A new port on the private network."""
        port = self._ids()
        n = self._next if self.take is None else self.take()
        self._next = max(self._next, n) + 1  # in step with the numbers in use, as a fresh load counts them
        v4 = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
        v6 = f"fd00::{n:x}"
        return {
            "id": port,
            "address": "fa:16:3e:" + ":".join(port.replace("-", "")[i : i + 2] for i in (0, 2, 4)),
            "devname": ("tap" + port)[:14],
            "type": "ovs",
            "meta": {},
            "network": {
                "id": NETWORK_ID,
                "label": NETWORK_LABEL,
                "subnets": [
                    {"cidr": "10.0.0.0/8", "ips": [{"address": v4, "type": "fixed", "version": 4}]},
                    {"cidr": "fd00::/64", "ips": [{"address": v6, "type": "fixed", "version": 6}]},
                ],
            },
        }

    @property
    def next_address(self) -> int:
        """The number of the next port's addresses (10.x.y.z, fd00::n) by this process's own counter."""
        return self._next

    def resume_after(self, caches: list[db.InstanceInfoCache]) -> None:
        """Continue numbering after the addresses already in use (a service restart)."""
        self._next = max([self._next, *(_address_number(vif) + 1 for c in caches for vif in c.network_info)])


def highest_address(network_infos: Iterable[list[VIF]]) -> int:
    """The highest address number in use in these network infos (0: none)."""
    return max((_address_number(vif) for info in network_infos for vif in info or ()), default=0)


def _address_number(vif: VIF) -> int:
    try:
        _, b, c, d = vif["network"]["subnets"][0]["ips"][0]["address"].split(".")
        return (int(b) << 16) | (int(c) << 8) | int(d)
    except (KeyError, IndexError, ValueError):
        return 0


def fixed_ips(network_info: list[VIF]) -> list[tuple[VIF, dict[str, Any]]]:
    """(vif, ip) for every fixed IP in the network info, in order."""
    return [(vif, ip) for vif in network_info for subnet in vif["network"]["subnets"] for ip in subnet["ips"]]


def nova_arguments(instance: db.Instance, network_info: list[VIF]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments Nova passed to its ``instance_network_info`` hooks: ``(impl, context, instance,
    nw_info=network_info)``, with Nova-shaped objects (``novawatch.compute.nova_shapes``)."""
    caller = CALLER.get() or Caller()
    context = nova_shapes.RequestContext(instance.user_id, instance.project_id, request_id=caller.request_id)
    return ((nova_shapes.NetworkAPI(), context, nova_shapes.Instance(instance, caller.flavor)),
            {"nw_info": nova_shapes.network_info(network_info)})


@hooks.add_hook(hooks.NW_INFO_HOOK, nova=hooks.NovaHookPoint(hooks.NOVA_NW_INFO_HOOK, nova_arguments))
def update_instance_cache_with_nw_info(instance: db.Instance, network_info: list[VIF]) -> None:
    """Store an instance's full network info in its cache (the hook point of the network-info spec)."""
    cache = instance.info_cache
    cache.network_info = [dict(vif) for vif in network_info]
    cache.updated_at = _naive(instance.updated_at)


def _naive(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=None) if moment is not None and moment.tzinfo is not None else moment
