"""``compute.exception``: an exception escaped a function wrapped by Nova's exception notifier."""

from __future__ import annotations

from novawatch.notifications.catalog.common import ExceptionPayload
from novawatch.notifications.catalog.table import event

event("compute.exception", ExceptionPayload, priority="ERROR", source="nova-api")
