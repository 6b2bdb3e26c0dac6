"""The table from event type to handler: versioned and legacy (``compute.instance.*``) formats.

A handler is ``handler(cluster, payload, ts) -> outcome``: ``payload`` is what the catalog decoded,
``ts`` the notification's sortable timestamp (None when it had none).
"""

from __future__ import annotations

from typing import Any

from novawatch.model.handlers import legacy, versioned

HANDLERS: dict[str, Any] = {**versioned.HANDLERS, **legacy.HANDLERS}

__all__ = ["HANDLERS"]
