"""Payloads nested in many notifications: exceptions, audit periods."""

from __future__ import annotations

from datetime import datetime

from novawatch.objects import Payload, register


@register
class ExceptionPayload(Payload, kw_only=True):
    VERSION = "1.1"
    SCHEMA = {}

    module_name: str
    function_name: str
    exception: str
    exception_message: str
    traceback: str


@register
class AuditPeriodPayload(Payload, kw_only=True):
    VERSION = "1.0"

    audit_period_beginning: datetime
    audit_period_ending: datetime
