"""The compute service: every action mixin over one database, one notifier and one clock."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from novawatch.compute.attachments import AttachActions
from novawatch.compute.clock import Clock, Ids, WallClock
from novawatch.compute.emitter import Emitter
from novawatch.compute.failures import FailureInjector
from novawatch.compute.legacy import legacy_payload
from novawatch.compute.lifecycle import LifecycleActions
from novawatch.compute.moves import MoveActions
from novawatch.compute.operations import Operations
from novawatch.compute.repository import Repository, make_engine, reset, upgrade
from novawatch.compute.services import ServiceActions
from novawatch.notifications import Notifier


class ComputeService(ServiceActions, LifecycleActions, Operations, MoveActions, AttachActions):
    """Nova's compute API, conductor, scheduler and compute managers with a fake hypervisor, in one object.

    Changes are flushed to the database by :meth:`commit` (call it after each action, or every N actions).
    """

    def commit(self) -> None:
        self.repo.commit()

    def close(self, *, dispose: bool = True) -> None:
        """Commit and end the session; ``dispose`` also closes the engine's connections."""
        self.repo.commit()
        self.repo.close()
        if dispose:
            self.repo.engine.dispose()


def open_service(
    url: str | Path | None,
    notifier: Notifier,
    *,
    clock: Clock | None = None,
    ids: Ids | None = None,
    failures: FailureInjector | None = None,
    state_updates: bool = True,
    fresh: bool = False,
) -> ComputeService:
    """Connect to the database at ``url`` (migrating it to the newest schema) and start the service.

    ``fresh`` drops whatever the database held first. Legacy notifications follow the notifier's format.
    """
    engine = make_engine(url)
    if fresh:
        reset(engine)
    upgrade(engine)
    return start_service(engine, notifier, clock=clock, ids=ids, failures=failures, state_updates=state_updates)


def start_service(
    engine: Engine,
    notifier: Notifier,
    *,
    clock: Clock | None = None,
    ids: Ids | None = None,
    failures: FailureInjector | None = None,
    state_updates: bool = True,
) -> ComputeService:
    """The service over an engine whose schema is already migrated (loads what the database holds)."""
    emitter = Emitter(notifier, legacy_payload)
    return ComputeService(Repository(engine), emitter, clock=clock or WallClock(), ids=ids or Ids(),
                          failures=failures, state_updates=state_updates)
