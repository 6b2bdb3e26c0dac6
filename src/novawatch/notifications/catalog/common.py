"""Payloads nested in many notifications: exceptions, audit periods."""

from __future__ import annotations

from datetime import datetime

import msgspec

from novawatch.objects import Payload, Since, register


@register
class ExceptionPayload(Payload, kw_only=True):
    """An exception: where it was raised, its class, message and traceback."""

    VERSION = "1.1"
    SCHEMA = {}
    SINCE = {"traceback": Since(1, default="")}

    exception: str
    exception_message: str
    function_name: str
    module_name: str
    traceback: str | msgspec.UnsetType = msgspec.UNSET


@register
class AuditPeriodPayload(Payload, kw_only=True):
    """The period a usage notification covers."""

    VERSION = "1.0"

    audit_period_beginning: datetime
    audit_period_ending: datetime
