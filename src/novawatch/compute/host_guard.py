"""Which hosts a boot may claim on, when several workers share one database.

A boot running beside other workers' actions (``compute serve --workers N``) holds the lock of the host it
expects the scheduler to pick, not the lock of every host. The request that runs it sets a
:class:`HostGuard` in :data:`GUARD` (a context variable: each request of a worker has its own); the boot
checks the host the scheduler picks against it and raises :class:`HostNotHeld` when the request does not
hold that host's lock. The caller then takes that host's lock and runs the request again (or runs it alone).

The check comes first, before the boot changes or emits anything, so a refused boot needs no rollback; a
check that fails later (a reschedule to an alternate host) is rolled back with the action, as any refused
action is, and its notifications never leave the outbox.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from novawatch.compute.errors import ComputeError


class HostNotHeld(ComputeError):
    """The scheduler picked a host whose lock the request does not hold: nothing was kept; run it again with
    that host's lock (``host``), or alone (``host`` None)."""

    def __init__(self, host: str | None) -> None:
        super().__init__(f"the scheduler picked host {host!r}, whose lock this request does not hold: "
                         "nothing was changed; run it again holding that host's lock")
        self.host = host


@dataclass
class HostGuard:
    """The hosts a request holds the locks of. ``probe``: hold nothing, only learn which host the scheduler
    would pick (even None: no host has room). After a refusal, :attr:`wanted` is the host the boot needs,
    and :attr:`alone` says it needs to run alone (a reschedule: several hosts)."""

    held: frozenset[str] = frozenset()
    probe: bool = False
    tripped: bool = False
    wanted: str | None = None
    alone: bool = False

    def first_pick(self, host: str | None) -> None:
        """The host the scheduler will pick for the boot (None: none has room), before anything is changed."""
        if self.probe or (host is not None and host not in self.held):
            self._refuse(host, alone=False)

    def claim(self, host: str | None) -> None:
        """A host the boot is about to claim on after it started (the pick itself, or an alternate)."""
        if host is not None and host not in self.held:
            self._refuse(host, alone=True)

    def _refuse(self, host: str | None, *, alone: bool) -> None:
        self.tripped, self.wanted, self.alone = True, host, alone
        raise HostNotHeld(host)


#: The guard of the request being served (None: the boot runs alone, or this is the only worker).
GUARD: ContextVar[HostGuard | None] = ContextVar("novawatch_host_guard", default=None)
