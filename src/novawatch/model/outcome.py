"""What the model did with a notification: the one list of outcomes, counted by the apply loop.

Handlers return APPLIED, IGNORED or STALE; the apply loop adds DUPLICATE and REJECTED. Each outcome is an
``int`` (it indexes the loop's counters) and says how the feed and metrics label it (``label``).
"""

from __future__ import annotations

import enum


class Outcome(enum.IntEnum):
    """One notification's outcome."""

    #: The notification changed the model (or confirmed it).
    APPLIED = 0
    #: The model does not need this notification (wrong service, not about a compute node, ...).
    IGNORED = 1
    #: Older than what the model already holds for that entity, or about a deleted entity.
    STALE = 2
    #: The same message id with the same content was applied already (a redelivery).
    DUPLICATE = 3
    #: Not a valid notification: kept with its reason in the dead letters.
    REJECTED = 4

    @property
    def label(self) -> str:
        """``applied``, ``ignored`` (not needed, stale or duplicate) or ``rejected``: the feed's and metrics' word."""
        return _LABELS[self]


_LABELS = {Outcome.APPLIED: "applied", Outcome.IGNORED: "ignored", Outcome.STALE: "ignored",
           Outcome.DUPLICATE: "ignored", Outcome.REJECTED: "rejected"}

APPLIED, IGNORED, STALE, DUPLICATE, REJECTED = Outcome
#: The labels, each once, in the order the service reports them.
LABELS = ("applied", "ignored", "rejected")
