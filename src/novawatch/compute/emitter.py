"""Notification emission: builds catalog payloads from the compute service's rows and sends them.

The payload class of an event comes from the catalog (``spec(event).payload``); fields named in its
``SCHEMA`` are read from the source objects, and every other field is filled by a provider keyed by
field name (``flavor``, ``ip_addresses``, ``fault``...). Nested payloads are found from the field's
type, so the emitter follows the catalog instead of duplicating it.
"""

from __future__ import annotations

import functools
import traceback
import types
import typing
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import msgspec

from novawatch.compute import db
from novawatch.compute.images import Image
from novawatch.compute.network import fixed_ips
from novawatch.notifications import Notifier
from novawatch.notifications.catalog import spec
from novawatch.objects import NovaObject, Payload

COMPUTE = "nova-compute"
API = "nova-api"
CONDUCTOR = "nova-conductor"


class InstanceView:
    """An instance row as the catalog's ``SCHEMA`` reads it (``metadata``, ``auto_disk_config`` as Nova has them).

    ``overrides`` stand in for attributes of the row: what a Nova service's stale copy of the instance
    still says (the source host of a live migration reports its end with the instance as it had it).
    """

    __slots__ = ("_overrides", "_row")

    def __init__(self, row: db.Instance, overrides: Mapping[str, Any] | None = None) -> None:
        self._row = row
        self._overrides = overrides or {}

    def __getattr__(self, name: str) -> Any:
        if name in self._overrides:
            return self._overrides[name]
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


class ServiceView:
    """A service row as ``ServiceStatusPayload`` reads it: Nova's service object carries no availability zone
    (the API computes it for its views), so its notifications say null."""

    __slots__ = ("_row",)

    def __init__(self, row: db.Service) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)

    availability_zone = None


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
    #: The API request the notification belongs to (Nova's ``context.request_id``).
    request_id: str | None = None
    #: Attributes the notification reports in place of the row's (see :class:`InstanceView`).
    overrides: dict[str, Any] = field(default_factory=dict)

    def view(self) -> InstanceView:
        """The instance as this notification reports it."""
        return InstanceView(self.instance, self.overrides)


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


#: The one cell novawatch's instances live in (Nova's ``cell1``), as requested destinations name it.
CELL_UUID = "e45775d8-b9d6-4529-b6fc-3bc08d8ace5f"
CELL_NAME = "cell1"

_IMAGES: dict[tuple[str | None, int], NovaObject[Any]] = {}


def image_payload(image: Image | None, volume_gb: int = 0) -> NovaObject[Any]:
    """``ImageMetaPayload`` as the scheduler sees it: the image, or for a volume-backed instance the volume."""
    key = (None if image is None else image.id, volume_gb if image is None else 0)
    cached = _IMAGES.get(key)
    if cached is None:
        from novawatch.notifications.catalog.image import ImageMetaPayload, ImageMetaPropsPayload

        if image is None:
            # Nova describes the boot volume: its size and nothing of an image.
            props = _wrap(ImageMetaPropsPayload())
            payload = ImageMetaPayload(
                id=None, name=None, status="active", visibility=None, protected=None, checksum=None, owner=None,
                size=volume_gb * 1024**3, virtual_size=None, container_format=None, disk_format=None,
                created_at=None, updated_at=None, tags=None, direct_url=None, min_ram=0, min_disk=0,
                properties=props)
        else:
            props = _wrap(ImageMetaPropsPayload(**image.props()))
            payload = ImageMetaPayload(
                id=image.id, name=image.name, status=image.status, visibility=image.visibility,
                protected=image.protected, checksum=None, owner=None, size=image.size, virtual_size=None,
                container_format=image.container_format, disk_format=image.disk_format,
                created_at=image.created_at, updated_at=image.created_at, tags=list(image.tags), direct_url=None,
                min_ram=image.min_ram, min_disk=image.min_disk, properties=props)
        if len(_IMAGES) > 1024:
            _IMAGES.clear()
        cached = _IMAGES[key] = _wrap(payload)
    return cached


@dataclass
class Scheduling:
    """One call to the scheduler (Nova's request spec): what is placed, where it may or must go."""

    instance: db.Instance
    flavor: db.Flavor
    #: The image the instance runs (None: volume-backed, ``volume_gb`` big).
    image: Image | None
    volume_gb: int = 0
    #: The availability zone the user asked for (None: any).
    availability_zone: str | None = None
    #: A host (and node) the user asked for: a boot with ``host``, an evacuation or migration to a host.
    host: str | None = None
    node: str | None = None
    #: A host forced past the filters (Nova's ``force_hosts``, from ``availability_zone: "zone:host"``).
    force_host: str | None = None
    force_node: str | None = None
    #: A move keeps the instance in its cell: the request names the cell.
    in_cell: bool = False
    ignore_hosts: list[str] | None = None
    hints: dict[str, list[str]] = field(default_factory=dict)
    request_id: str | None = None
    user_id: str | None = None
    project_id: str | None = None
    is_admin: bool = False
    created_at: datetime | None = None


def request_spec(req: Scheduling) -> Payload:
    """The scheduler's ``RequestSpecPayload`` for a :class:`Scheduling`."""
    from novawatch.notifications.catalog.request_spec import (
        CellMappingPayload,
        DestinationPayload,
        InstancePCIRequestsPayload,
        RequestSpecPayload,
    )

    inst = req.instance
    destination = None
    if req.host is not None or req.in_cell:
        parts: dict[str, Any] = {"aggregates": None}
        if req.host is not None:
            parts.update(host=req.host, node=req.node)
        if req.in_cell:
            parts["cell"] = _wrap(CellMappingPayload(uuid=CELL_UUID, name=CELL_NAME, disabled=False))
        destination = _wrap(DestinationPayload(**parts))
    return RequestSpecPayload(
        instance_uuid=inst.uuid, project_id=inst.project_id, user_id=req.user_id,
        availability_zone=req.availability_zone, flavor=_flavor(req.flavor), force_hosts=req.force_host,
        force_nodes=req.force_node,
        ignore_hosts=req.ignore_hosts, instance_group=None, image=image_payload(req.image, req.volume_gb),
        numa_topology=None, pci_requests=_wrap(InstancePCIRequestsPayload(instance_uuid=inst.uuid, requests=[])),
        num_instances=1, requested_destination=destination, retry=None, scheduler_hints=dict(req.hints),
        security_groups=["default"],
    )


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
    """Nova's ``ExceptionPayload`` of an exception, filled as Nova fills it: the module and function of the
    innermost frame the exception went through, and the formatted traceback.

    An exception that was never raised (no traceback) names ``function_name`` and has no traceback.
    """
    from novawatch.notifications.catalog.common import ExceptionPayload

    tb = exc.__traceback__
    module_name, where, text = type(exc).__module__, function_name, ""
    if tb is not None:
        while tb.tb_next is not None:
            tb = tb.tb_next
        frame = tb.tb_frame
        module_name = str(frame.f_globals.get("__name__", module_name))
        where = frame.f_code.co_name
        text = "".join(traceback.format_exception(exc))
    return ExceptionPayload(
        module_name=module_name,
        function_name=where or getattr(exc, "function_name", "") or "",
        exception=type(exc).__name__,
        exception_message=str(exc),
        traceback=text,
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
    "request_id": lambda ctx: ctx.request_id,
    "action_initiator_user": lambda ctx: ctx.user_id,
    "action_initiator_project": lambda ctx: ctx.project_id,
    "locked_reason": lambda ctx: ctx.instance.locked_reason,
    # Nova reports shares only with [notifications] include_share_mapping, off by default.
    "shares": lambda ctx: None,
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


class LegacyFormat(Protocol):
    """Nova's unversioned notifications (``compute.instance.*`` and the others), built beside the versioned ones."""

    def instance(self, event_type: str, ctx: InstanceContext) -> tuple[str, msgspec.Struct] | None:
        """(legacy event type, payload) sent with versioned ``event_type``, or None when Nova sends none."""

    def request_spec(self, req: Scheduling) -> dict[str, Any]:
        """Nova's legacy request spec dict (``scheduler.select_destinations.*``, ``compute_task.*``)."""

    def compute_task(self, inst: db.Instance, req: Scheduling | None, task: str,
                     exc: BaseException) -> msgspec.Struct:
        """``compute_task.<task>``: the conductor's legacy error notification."""


class Emitter:
    """Sends the compute service's notifications through a :class:`Notifier`.

    ``legacy`` builds the unversioned twins of the versioned events (None: none are sent).
    """

    def __init__(self, notifier: Notifier, legacy: LegacyFormat | None = None) -> None:
        self.notifier = notifier
        self.legacy = legacy
        self.sent_types: list[str] | None = None

    def _send(self, event_type: str, payload: msgspec.Struct, source: str, host: str | None) -> None:
        self.notifier.emit(event_type, payload, publisher_id=f"{source}:{host or 'unknown'}")
        if self.sent_types is not None:
            self.sent_types.append(event_type)

    def _send_legacy(self, event_type: str, payload: msgspec.Struct, publisher_id: str) -> None:
        self.notifier.emit(event_type, payload, publisher_id=publisher_id)
        if self.sent_types is not None:
            self.sent_types.append(event_type)

    @property
    def _legacy_on(self) -> bool:
        return self.legacy is not None and self.notifier.format.unversioned

    def service(self, event_type: str, service: db.Service) -> None:
        from novawatch.notifications.catalog.service import ServiceStatusPayload

        if self.notifier.format.versioned:
            self._send(event_type, ServiceStatusPayload.populate({"service": ServiceView(service)}), COMPUTE,
                       service.host)

    def compute_node(self, event_type: str, node: db.ComputeNode) -> None:
        if self.notifier.format.versioned:
            cls = _payload_class(event_type)
            self._send(event_type, cls.populate({"compute_node": node}), COMPUTE, node.host)

    def flavor(self, event_type: str, flavor: db.Flavor, host: str) -> None:
        """``flavor.*`` from nova-api (versioned only: Nova has no legacy flavor notification)."""
        if self.notifier.format.versioned:
            from novawatch.notifications.catalog.flavor import FlavorPayload

            self._send(event_type, FlavorPayload.populate({"flavor": FlavorView(flavor)}), API, host)

    def instance(self, event_type: str, ctx: InstanceContext, *, host: str | None, source: str = COMPUTE,
                 legacy_service: str = "compute") -> None:
        """The legacy notification of the event (if any and enabled), then the versioned one.

        ``source`` names the versioned publisher (``nova-compute:<host>``); ``legacy_service`` the legacy
        one (``compute.<host>``), which Nova names after the notifier's service, not the binary.
        """
        if self._legacy_on:
            assert self.legacy is not None
            legacy = self.legacy.instance(event_type, ctx)
            if legacy is not None:
                legacy_type, legacy_payload = legacy
                self._send_legacy(legacy_type, legacy_payload, f"{legacy_service}.{host or 'unknown'}")
        if not self.notifier.format.versioned:
            return
        cls = _payload_class(event_type)
        payload = build(cls, {"instance": ctx.view()}, ctx,
                        {k: v for k, v in ctx.values.items() if not k.startswith("_")})
        self._send(event_type, payload, source, host)

    def compute_task_error(self, task: str, inst: db.Instance, exc: BaseException, host: str | None,
                           req: Scheduling | None = None) -> None:
        """What the conductor sends when a task fails: legacy ``compute_task.<task>``, then versioned
        ``compute_task.<task>.error`` with the request spec that failed."""
        if self._legacy_on:
            assert self.legacy is not None
            self._send_legacy(f"compute_task.{task}", self.legacy.compute_task(inst, req, task, exc),
                              f"compute_task.{host or 'unknown'}")
        event_type = f"compute_task.{task}.error"
        if not self.notifier.format.versioned or spec(event_type) is None:
            return
        cls = _payload_class(event_type)
        payload = cls(instance_uuid=inst.uuid, request_spec=None if req is None else request_spec(req).wrap(),
                      state=inst.vm_state, reason=_wrap(exception_payload(exc, "select_destinations")))
        self._send(event_type, payload, CONDUCTOR, host)

    def scheduler(self, phase: str, req: Scheduling, host: str) -> None:
        """``scheduler.select_destinations.<phase>`` from nova-scheduler, legacy (same event type) then versioned."""
        event_type = f"scheduler.select_destinations.{phase}"
        if self._legacy_on:
            assert self.legacy is not None
            from novawatch.notifications.catalog.legacy_shared import LegacyRequestSpecPayload

            self._send_legacy(event_type, LegacyRequestSpecPayload(request_spec=self.legacy.request_spec(req)),
                              "scheduler.scheduler")
        if self.notifier.format.versioned and spec(event_type) is not None:
            self._send(event_type, request_spec(req), "nova-scheduler", host)

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
