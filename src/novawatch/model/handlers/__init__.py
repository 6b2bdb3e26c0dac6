"""The table from event type to handler: versioned and legacy (``compute.instance.*``) formats.

A handler is ``handler(cluster, payload, ts) -> outcome``: ``payload`` is what the catalog decoded,
``ts`` the notification's sortable timestamp (None when it had none).
"""

from __future__ import annotations

from typing import Any

from novawatch.model.handlers import legacy, versioned

HANDLERS: dict[str, Any] = {**versioned.HANDLERS, **legacy.HANDLERS}
#: Instance events without a handler on purpose (a stale copy of the instance; see ``versioned.STALE_COPIES``).
STALE_COPIES: frozenset[str] = frozenset((*versioned.STALE_COPIES, *legacy.STALE_COPIES))

__all__ = ["HANDLERS", "STALE_COPIES"]
