"""``libvirt.connect.error``: nova-compute lost its connection to libvirt."""

from __future__ import annotations

from novawatch.notifications.catalog.common import ExceptionPayload
from novawatch.notifications.catalog.table import event
from novawatch.objects import NovaObject, Payload
from novawatch.objects.fields import IPAddress, check_ip


class LibvirtErrorPayload(Payload, kw_only=True):
    """The host's IP and the error."""

    VERSION = "1.0"

    # A StringField in Nova, but always filled from the host's ``my_ip`` option, an IP address.
    ip: IPAddress
    reason: NovaObject[ExceptionPayload]

    def __post_init__(self) -> None:
        check_ip(self.ip)


event("libvirt.connect.error", LibvirtErrorPayload, priority="ERROR")
