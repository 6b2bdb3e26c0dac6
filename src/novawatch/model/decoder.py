"""The model's decoder: every notification checked as ``novawatch decode`` checks it, but only in what the
model uses.

The handlers read a few fields of each payload (an instance's uuid, host, node, states, flavor sizes and
volumes; a service's liveness; a node's capacity). :data:`MODEL_READER` decodes the payloads of the events
they handle into projections holding just those fields (:mod:`novawatch.objects.projection`): each field it
keeps is type-checked, range-checked and format-checked exactly as the catalog does it (same reasons), the
envelope's name, major version and the fields the sender's version requires are checked as well, and the
rest of the payload is skipped without being read into objects. So a notification whose only fault is in a
field the model does not use (a wrong ``architecture``, say) is applied by the model while ``novawatch
decode`` rejects it. Event types the model does not handle are decoded whole, as ``decode`` does, and
ignored.
"""

from __future__ import annotations

import msgspec

from novawatch.model.handlers import HANDLERS
from novawatch.notifications.catalog import EventSpec
from novawatch.notifications.catalog.compute_node import ComputeNodeDeletePayload, ComputeNodePayload
from novawatch.notifications.catalog.flavor import FlavorPayload
from novawatch.notifications.catalog.instance import BlockDevicePayload, InstancePayload
from novawatch.notifications.catalog.legacy import LegacyInstancePayload, LegacyInstanceVolumePayload
from novawatch.notifications.catalog.service import ServiceStatusPayload
from novawatch.notifications.codec import Reader
from novawatch.objects.projection import Projection

#: The fields the handlers read (or that name a notification's subject for the feed), by payload class: a
#: class keeps the fields listed for it and for its bases. A handler reading a field not listed here fails
#: its notification ("cannot apply"), which the model's tests would show at once.
USED = Projection({
    InstancePayload: ("uuid", "tenant_id", "display_name", "host", "node", "state", "power_state", "task_state",
                      "locked", "image_uuid", "flavor", "block_devices"),
    FlavorPayload: ("vcpus", "memory_mb", "root_gb", "ephemeral_gb", "swap"),
    BlockDevicePayload: ("volume_id", "boot_index"),
    ServiceStatusPayload: ("host", "binary", "disabled", "disabled_reason", "forced_down"),
    ComputeNodePayload: ("uuid", "host", "hypervisor_hostname", "vcpus", "memory_mb", "local_gb", "vcpus_used",
                         "memory_mb_used", "local_gb_used", "running_vms"),
    ComputeNodeDeletePayload: ("uuid",),
    LegacyInstancePayload: ("instance_id", "tenant_id", "display_name", "host", "node", "state", "state_description",
                            "memory_mb", "vcpus", "root_gb", "ephemeral_gb", "image_ref_url"),
    LegacyInstanceVolumePayload: ("volume_id",),
})


def payload_of(entry: EventSpec) -> type[msgspec.Struct]:
    """What the model decodes an event type's payload into: a projection when a handler takes it."""
    return USED.of(entry.payload) if entry.event_type in HANDLERS else entry.payload


#: The reader of :class:`~novawatch.model.apply.Consumer` (``model replay``, the model service).
MODEL_READER = Reader(payload_of)
