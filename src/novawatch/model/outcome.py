"""What a handler did with a notification (counted by the apply loop)."""

from __future__ import annotations

#: The notification changed the model (or confirmed it).
APPLIED = 0
#: The model does not need this notification (wrong service, not about a compute node, ...).
IGNORED = 1
#: Older than what the model already holds for that entity, or about a deleted entity.
STALE = 2

NAMES = ("applied", "ignored", "stale")
