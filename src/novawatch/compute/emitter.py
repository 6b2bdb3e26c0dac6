"""Notification emission: builds catalog payloads from the compute service's rows and sends them.

The payload class of an event comes from the catalog (``spec(event).payload``); fields named in its
``SCHEMA`` are read from the source objects, and every other field is filled by a provider keyed by
field name (``flavor``, ``ip_addresses``, ``fault``...). Nested payloads are found from the field's
type, so the emitter follows the catalog instead of duplicating it.
"""

from __future__ import annotations

import functools
import types
import typing
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec

from novawatch.compute import db
from novawatch.compute.network import fixed_ips
from novawatch.notifications import Notifier
from novawatch.notifications.catalog import spec
from novawatch.objects import NovaObject, Payload

COMPUTE = "nova-compute"
API = "nova-api"
CONDUCTOR = "nova-conductor"


class InstanceView:
    """An instance row as the catalog's ``SCHEMA`` reads it (``metadata``, ``auto_disk_config`` as Nova has them)."""

    __slots__ = ("_row",)

    def __init__(self, row: db.Instance) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)

    @property
    def metadata(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._row.metadata_.items()}

    @property
    def auto_disk_config(self) -> str:
        return "AUTO" if self._row.auto_disk_config else "MANUAL"


class FlavorView:
    """A flavor row as ``FlavorPayload`` reads it (extra specs as strings, no project list for public ones)."""

    __slots__ = ("_row",)

    def __init__(self, row: db.Flavor) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)

    @property
    def extra_specs(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._row.extra_specs.items()}

    @property
    def projects(self) -> list[str] | None:
        return None if self._row.is_public else []


@dataclass
class InstanceContext:
    """Everything an instance notification may need besides the row itself."""

    instance: db.Instance
    flavor: db.Flavor
    network_info: list[dict[str, Any]]
    bdms: list[db.BlockDeviceMapping]
    user_id: str | None = None
    project_id: str | None = None
    fault: BaseException | None = None
    #: Per-event fields (volume_id, new_flavor, state_update...), given by the action.
    values: dict[str, Any] = field(default_factory=dict)


# --- payload building ---------------------------------------------------------------------------


def _nested(tp: Any) -> tuple[type[Payload] | None, bool, bool]:
    """(payload class, wrapped in NovaObject, is a list) of a field type, or (None, ...) for a plain type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            found = _nested(arg)
            if found[0] is not None:
                return found
        return None, False, False
    if origin is list:
        cls, wrapped, _ = _nested(typing.get_args(tp)[0])
        return cls, wrapped, True
    if origin is NovaObject:
        cls, _, _ = _nested(typing.get_args(tp)[0])
        return cls, True, False
    if isinstance(tp, type) and issubclass(tp, Payload):
        return tp, False, False
    return None, False, False


@functools.cache
def _plan(cls: type[Payload]) -> tuple[tuple[str, bool, type[Payload] | None, bool, bool], ...]:
    """For each non-SCHEMA field: (name, has a default, nested class, wrapped, is a list)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in msgspec.structs.fields(cls):
        if f.name in cls.SCHEMA:
            continue
        has_default = f.default is not msgspec.NODEFAULT or f.default_factory is not msgspec.NODEFAULT
        nested, wrapped, is_list = _nested(hints[f.name])
        out.append((f.name, has_default, nested, wrapped, is_list))
    return tuple(out)


Provider = Callable[[InstanceContext], Any]


def build(cls: type[Payload], sources: Mapping[str, object], ctx: InstanceContext | None,
          values: Mapping[str, Any] | None = None) -> Payload:
    """``cls`` populated from ``sources`` through its SCHEMA, other fields from ``values`` then providers."""
    given = dict(values or {})
    for name, has_default, _nested_cls, _wrapped, _is_list in _plan(cls):
        if name in given:
            continue
        provider = _PROVIDERS.get(name)
        if provider is not None and ctx is not None:
            given[name] = provider(ctx)
        elif not has_default:
            raise ValueError(f"no value for {cls.__name__}.{name}")
    return cls.populate(sources, **given)


def _wrap(payload: Payload) -> NovaObject[Any]:
    return payload.wrap()


_FLAVORS: weakref.WeakKeyDictionary[db.Flavor, NovaObject[Any]] = weakref.WeakKeyDictionary()


def _flavor(row: db.Flavor) -> NovaObject[Any]:
    # The service never changes a flavor once created, and the encoder only reads payloads: build each once.
    cached = _FLAVORS.get(row)
    if cached is None:
        from novawatch.notifications.catalog.flavor import FlavorPayload

        cached = _FLAVORS[row] = _wrap(FlavorPayload.populate({"flavor": FlavorView(row)}))
    return cached


_IMAGES: dict[str, NovaObject[Any]] = {}


def _image(image_ref: str | None) -> NovaObject[Any] | None:
    """The image as the scheduler sees it (novawatch has no image service: a fixed public raw image)."""
    if not image_ref:
        return None
    cached = _IMAGES.get(image_ref)
    if cached is None:
        from novawatch.notifications.catalog.image import ImageMetaPayload, ImageMetaPropsPayload

        moment = datetime(2026, 1, 1)
        props = _wrap(ImageMetaPropsPayload.populate({"image_meta_props": _Props()}))
        if len(_IMAGES) > 1024:
            _IMAGES.clear()
        cached = _IMAGES[image_ref] = _wrap(ImageMetaPayload(
            id=image_ref, name="cirros", status="active", visibility="public", protected=False, checksum=None,
            owner=None, size=25165824, virtual_size=None, container_format="bare", disk_format="qcow2",
            created_at=moment, updated_at=moment, tags=[], direct_url=None, min_ram=0, min_disk=0,
            properties=props,
        ))
    return cached


class _Props:
    hw_architecture = "x86_64"


def _ip_addresses(ctx: InstanceContext) -> list[NovaObject[Any]]:
    from novawatch.notifications.catalog.instance import IpPayload

    return [
        _wrap(IpPayload(label=vif["network"]["label"], mac=vif["address"], meta=dict(vif.get("meta", {})),
                        port_uuid=vif["id"], version=ip["version"], address=ip["address"],
                        device_name=vif.get("devname")))
        for vif, ip in fixed_ips(ctx.network_info)
    ]


def _block_devices(ctx: InstanceContext) -> list[NovaObject[Any]]:
    from novawatch.notifications.catalog.instance import BlockDevicePayload

    return [_wrap(BlockDevicePayload.populate({"bdm": b})) for b in ctx.bdms if b.volume_id is not None]


def exception_payload(exc: BaseException, function_name: str = "") -> Payload:
    """Nova's ``ExceptionPayload`` of an exception (no traceback: it would not be deterministic)."""
    from novawatch.notifications.catalog.common import ExceptionPayload

    return ExceptionPayload(
        module_name=type(exc).__module__,
        function_name=function_name or getattr(exc, "function_name", "") or "",
        exception=type(exc).__name__,
        exception_message=str(exc),
        traceback="",
    )


def _fault(ctx: InstanceContext) -> NovaObject[Any] | None:
    return None if ctx.fault is None else _wrap(exception_payload(ctx.fault))


def _audit_period(ctx: InstanceContext) -> NovaObject[Any]:
    from novawatch.notifications.catalog.common import AuditPeriodPayload

    end = ctx.instance.updated_at or datetime(1970, 1, 1)
    begin = end.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if begin == end:
        begin = (end - timedelta(days=1)).replace(day=1)
    return _wrap(AuditPeriodPayload(audit_period_beginning=begin, audit_period_ending=end))


def _state_update(ctx: InstanceContext) -> NovaObject[Any]:
    from novawatch.notifications.catalog.instance import InstanceStateUpdatePayload

    inst = ctx.instance
    old_vm, old_task = ctx.values.get("_old_states", (inst.vm_state, inst.task_state))
    return _wrap(InstanceStateUpdatePayload(old_state=old_vm, state=inst.vm_state, old_task_state=old_task,
                                            new_task_state=inst.task_state))


_PROVIDERS: dict[str, Provider] = {
    "flavor": lambda ctx: _flavor(ctx.flavor),
    "ip_addresses": _ip_addresses,
    "block_devices": _block_devices,
    "fault": _fault,
    "request_id": lambda ctx: None,
    "action_initiator_user": lambda ctx: ctx.user_id,
    "action_initiator_project": lambda ctx: ctx.project_id,
    "locked_reason": lambda ctx: ctx.instance.locked_reason,
    "shares": lambda ctx: [],
    "keypairs": lambda ctx: [],
    "tags": lambda ctx: list(ctx.instance.tags),
    "trusted_image_certificates": lambda ctx: None,
    "instance_name": lambda ctx: f"instance-{ctx.instance.id:08x}",
    "state_update": _state_update,
    "audit_period": _audit_period,
    "old_display_name": lambda ctx: None,
    "bandwidth": lambda ctx: [],
}


# --- the emitter --------------------------------------------------------------------------------


LegacyBuilder = Callable[[str, InstanceContext], "tuple[str, msgspec.Struct] | None"]


class Emitter:
    """Sends the compute service's notifications through a :class:`Notifier`.

    ``legacy`` gives the unversioned ``compute.instance.*`` event and payload sent with a versioned event
    (None: Nova sends none).
    """

    def __init__(self, notifier: Notifier, legacy: LegacyBuilder | None = None) -> None:
        self.notifier = notifier
        self.legacy = legacy
        self.sent_types: list[str] | None = None

    def _send(self, event_type: str, payload: msgspec.Struct, source: str, host: str | None) -> None:
        self.notifier.emit(event_type, payload, publisher_id=f"{source}:{host or 'unknown'}")
        if self.sent_types is not None:
            self.sent_types.append(event_type)

    def service(self, event_type: str, service: db.Service) -> None:
        from novawatch.notifications.catalog.service import ServiceStatusPayload

        self._send(event_type, ServiceStatusPayload.populate({"service": service}), COMPUTE, service.host)

    def compute_node(self, event_type: str, node: db.ComputeNode) -> None:
        cls = _payload_class(event_type)
        self._send(event_type, cls.populate({"compute_node": node}), COMPUTE, node.host)

    def instance(self, event_type: str, ctx: InstanceContext, *, host: str | None, source: str = COMPUTE,
                 legacy_service: str = "compute") -> None:
        """The legacy notification of the event (if any and enabled), then the versioned one.

        ``source`` names the versioned publisher (``nova-compute:<host>``); ``legacy_service`` the legacy
        one (``compute.<host>``), which Nova names after the notifier's service, not the binary.
        """
        if self.legacy is not None and self.notifier.format.unversioned:
            legacy = self.legacy(event_type, ctx)
            if legacy is not None:
                legacy_type, legacy_payload = legacy
                self.notifier.emit(legacy_type, legacy_payload,
                                   publisher_id=f"{legacy_service}.{host or 'unknown'}")
                if self.sent_types is not None:
                    self.sent_types.append(legacy_type)
        if not self.notifier.format.versioned:
            return
        cls = _payload_class(event_type)
        payload = build(cls, {"instance": InstanceView(ctx.instance)}, ctx,
                        {k: v for k, v in ctx.values.items() if not k.startswith("_")})
        self._send(event_type, payload, source, host)

    def compute_task_error(self, event_type: str, inst: db.Instance, exc: BaseException, host: str | None,
                           request_spec: Payload | None = None) -> None:
        """``compute_task.<task>.error`` from the conductor, with the request spec that failed."""
        if not self.notifier.format.versioned or spec(event_type) is None:
            return
        cls = _payload_class(event_type)
        payload = cls(instance_uuid=inst.uuid, request_spec=None if request_spec is None else request_spec.wrap(),
                      state=inst.vm_state, reason=_wrap(exception_payload(exc, "select_destinations")))
        self._send(event_type, payload, CONDUCTOR, host)

    def request_spec(self, inst: db.Instance, flavor: db.Flavor, ignore_hosts: list[str] | None) -> Payload:
        """The scheduler's ``RequestSpecPayload`` for placing ``inst`` with ``flavor``."""
        from novawatch.notifications.catalog.request_spec import InstancePCIRequestsPayload, RequestSpecPayload

        return RequestSpecPayload(
            instance_uuid=inst.uuid, project_id=inst.project_id, user_id=inst.user_id,
            availability_zone=inst.availability_zone, flavor=_flavor(flavor), force_hosts=None, force_nodes=None,
            ignore_hosts=ignore_hosts, instance_group=None, image=_image(inst.image_ref), numa_topology=None,
            pci_requests=_wrap(InstancePCIRequestsPayload(instance_uuid=inst.uuid, requests=[])), num_instances=1,
            requested_destination=None, retry=None, scheduler_hints={}, security_groups=["default"],
        )

    def scheduler(self, phase: str, request_spec: Payload, host: str) -> None:
        """``scheduler.select_destinations.<phase>`` from nova-scheduler (versioned only: the catalog has no legacy)."""
        event_type = f"scheduler.select_destinations.{phase}"
        if self.notifier.format.versioned and spec(event_type) is not None:
            self._send(event_type, request_spec, "nova-scheduler", host)

    def exception(self, exc: BaseException, function_name: str, host: str | None) -> None:
        """``compute.exception``: what Nova's ``wrap_exception`` sends when a compute method raises."""
        if spec("compute.exception") is None or not self.notifier.format.versioned:
            return
        self._send("compute.exception", exception_payload(exc, function_name), COMPUTE, host)


def _payload_class(event_type: str) -> type[Payload]:
    entry = spec(event_type)
    if entry is None or not issubclass(entry.payload, Payload):
        raise ValueError(f"{event_type} is not a versioned event of the catalog")
    return entry.payload
