"""The compute service: every action mixin over one database, one notifier and one clock."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from novawatch.bus.base import Publisher
from novawatch.compute.attachments import AttachActions
from novawatch.compute.catchup import CatchUp
from novawatch.compute.clock import Clock, Ids, WallClock
from novawatch.compute.emitter import Emitter
from novawatch.compute.errors import StorageError, StorageRefused, StorageUnavailable
from novawatch.compute.failures import FailureInjector
from novawatch.compute.keypairs import KeypairActions
from novawatch.compute.legacy import Legacy
from novawatch.compute.lifecycle import LifecycleActions
from novawatch.compute.moves import MoveActions
from novawatch.compute.operations import Operations
from novawatch.compute.outbox import Outbox
from novawatch.compute.records import RecordQueries
from novawatch.compute.repository import Repository, database_errors, driver_message, make_engine, reset, upgrade
from novawatch.compute.server_groups import ServerGroupActions
from novawatch.compute.services import ServiceActions
from novawatch.compute.shared import SharedDatabase
from novawatch.compute.shared_outbox import SharedOutbox
from novawatch.logs import Throttle
from novawatch.notifications import Notifier

log = logging.getLogger("novawatch.compute")
_throttle = Throttle()


class ComputeService(ServiceActions, LifecycleActions, Operations, MoveActions, AttachActions, KeypairActions,
                     ServerGroupActions, RecordQueries, CatchUp):
    """Nova's compute API, conductor, scheduler and compute managers with a fake hypervisor, in one object.

    Changes are flushed to the database by :meth:`commit` (call it after each action, or every N actions).
    An action that raised is ended with :meth:`abort`. With an outbox (:meth:`attach_outbox`), what an
    action emits reaches the bus only after its commit; without one, notifications go to the notifier's
    drivers as they are emitted (simulations, tests).
    """

    #: The write lock and change counter of the workers sharing this database (None: the only writer).
    shared: SharedDatabase | None = None
    #: The shared database's generation that the in-memory state reflects (with :attr:`shared`): every
    #: commit up to it, and this worker's own commits after it (:attr:`_own`).
    generation: int = -1
    _own: set[int]

    #: How :meth:`sync` brought the state up to date: incremental catch-ups and full reloads.
    catch_ups: int = 0
    reloads: int = 0

    def share(self, shared: SharedDatabase) -> None:
        """Run as one of several workers on this database: commits bump the shared generation and log the
        rows they wrote, and :meth:`sync` applies the other workers' changes."""
        self.shared = shared
        self.generation = -1
        self._own: set[int] = set()
        self.repo.track()
        self.repo.share_ids(shared.next_id)
        self._addresses = lambda: shared.next_address(self.repo.session)
        self.network.take = self._addresses

    def sync(self) -> None:
        """With :attr:`shared`: bring the in-memory state up to the last commit of any worker.

        The rows changed since this worker's generation are refreshed (:mod:`~novawatch.compute.catchup`);
        when the change log does not reach back that far, or the changes are many, the state is reloaded
        in full. Call it holding the write lock (for a consistent read). A reload that fails leaves
        :attr:`unavailable` set, as :meth:`reload` does.
        """
        if self.shared is None:
            return
        if self.generation >= 0 and self.unavailable is None:
            generation, changes = self.shared.changes_since(self.generation, self._own)
            if generation == self.generation:
                return
            if changes is not None:
                try:
                    done = self.catch_up(changes)
                except Exception as exc:  # a half-applied catch-up is replaced by the reload below
                    _throttle.log(log, logging.WARNING, "catch-up", "catching up with the other workers "
                                  "failed (%s): reloading the state", type(exc).__name__,
                                  extra={"error": type(exc).__name__})
                    done = False
                if done:
                    self.catch_ups += 1
                    self._caught_up(generation)
                    return
        else:
            generation = self.shared.generation()
        with contextlib.suppress(Exception):
            self.repo.close()
        if self.reload():
            self.reloads += 1
            self._caught_up(generation)

    def _caught_up(self, generation: int) -> None:
        self.generation = generation
        self._own = {g for g in self._own if g > generation}

    def commit(self) -> None:
        """Commit the changes, and with them the notifications they caused; then the outbox may send those.

        A failed commit is rolled back (:meth:`rollback`) and raised as a :class:`StorageError`.
        """
        outbox = self.outbox
        generation = None
        session = self.repo.session
        try:
            if self.shared is not None:
                session.flush()  # every row the action wrote is in the change set now
                changes = self.repo.take_changes()
                if not changes and not (outbox is not None and outbox.pending):
                    session.commit()  # nothing written (a read, a refusal, shutdown): no new generation
                    return
                # the generation, the change log and the outbox rows (ids from the shared counter) are written
                # by one statement in the action's own transaction
                generation, first = self.shared.advance(session, changes, outbox.emitted if outbox is not None else ())
                if outbox is not None:
                    outbox.staged_as(first)
            elif outbox is not None:
                outbox.stage(session)
            self.repo.commit()
        except Exception as exc:
            self.rollback()
            raise storage_error(exc) from exc
        if generation is not None:
            # Other workers' actions on other instances may have committed in between (shared lock): the
            # state is current up to the own commit only when it directly follows the last one seen.
            if generation == self.generation + 1:
                self._caught_up(generation)
            else:
                self._own.add(generation)
        if outbox is not None:
            outbox.committed()

    def abort(self) -> None:
        """End an action that raised: nothing it changed is kept, nothing it emitted (through the outbox) is sent.

        Refusals are raised before anything changes, so usually there is nothing to undo and this is free.
        """
        session = self.repo.session
        # Rows merely touched (a catch-up re-deriving a node's usage sets equal values) are not changes: only
        # real ones cost the rollback's full reload. Rows flushed already (a query flushes) are in the change set.
        if ((self.outbox is not None and self.outbox.pending) or session.new or session.deleted or self.repo.changes
                or any(session.is_modified(row) for row in session.dirty)):
            self.rollback()

    def rollback(self) -> None:
        """Drop the current transaction's changes and notifications, and reload the state from the database."""
        if self.outbox is not None:
            self.outbox.discard()
        session = self.repo.session
        # Detached first, so that rows a caller still holds stay readable (a rollback would expire them);
        # the reload replaces every one of them.
        with contextlib.suppress(Exception):
            session.expunge_all()
        with contextlib.suppress(Exception):
            session.rollback()
        with contextlib.suppress(Exception):
            session.close()
        self.reload()

    def reload(self) -> bool:
        """Rebuild the in-memory state from the database: the rows, indexes and claims of the last commit.

        When the database cannot be read, :attr:`unavailable` says why and False is returned; call
        :meth:`recover` to try again.
        """
        try:
            repo = Repository(self.repo.engine, track_changes=self.repo.track_changes)
            if self.repo.allocate is not None:
                repo.share_ids(self.repo.allocate)
            self._open(repo)
        except Exception as exc:
            self.unavailable = f"{type(exc).__name__}: {driver_message(exc)}"
            _throttle.log(log, logging.WARNING, "reload", "cannot load the compute state from the database: %s",
                          self.unavailable, extra={"error": self.unavailable})
            with contextlib.suppress(Exception):
                self.repo.close()
            return False
        self.unavailable = None
        return True

    def recover(self) -> bool:
        """True when the state is loaded, reloading it first if an earlier attempt failed."""
        return self.unavailable is None or self.reload()

    def close(self, *, dispose: bool = True, timeout: float = 30.0) -> None:
        """Commit, let the outbox send what is committed (up to ``timeout``), end the session.

        ``dispose`` also closes the engine's connections.
        """
        try:
            if self.unavailable is None:
                self.commit()
        finally:
            if self.outbox is not None:
                self.outbox.close(timeout)
            if self.shared is not None:
                self.shared.close()
            self.repo.close()
            if dispose:
                self.repo.engine.dispose()


def storage_error(exc: Exception) -> StorageError:
    """What a failed commit means for the caller: a refused value (400), an unreachable database (503), other."""
    if isinstance(exc, StorageError):
        return exc
    cause: BaseException = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    text = driver_message(exc)
    if isinstance(exc, sa_exc.DataError | sa_exc.IntegrityError) or isinstance(cause, OverflowError | ValueError):
        return StorageRefused(f"the database refused the change ({text}): it was rolled back and nothing was sent")
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError
                  | sa_exc.TimeoutError):
        return StorageUnavailable(f"the database is unavailable ({text}): the action was rolled back")
    return StorageError(f"the database failed the change ({type(cause).__name__}: {text}): it was rolled back")


def open_service(
    url: str | Path | None,
    notifier: Notifier,
    *,
    clock: Clock | None = None,
    ids: Ids | None = None,
    failures: FailureInjector | None = None,
    state_updates: bool = True,
    fresh: bool = False,
    publisher: Publisher | None = None,
    shared: bool = False,
) -> ComputeService:
    """Connect to the database at ``url`` (migrating it to the newest schema) and start the service.

    ``fresh`` drops whatever the database held first. Legacy notifications follow the notifier's format.
    With a ``publisher``, notifications go to it through the database's outbox (sent after their commit;
    what an earlier run left unsent goes first). ``shared``: one of several workers on this (PostgreSQL)
    database (:mod:`novawatch.compute.shared`); ValueError on another database. A database that cannot be
    reached, migrated or read: :class:`~novawatch.compute.repository.DatabaseError`.
    """
    with database_errors(url, "open"):
        engine = make_engine(url)
        if fresh:
            reset(engine)
        upgrade(engine)
        coordinator = None
        if shared:
            coordinator = SharedDatabase(engine)
            coordinator.prepare()
        outbox = None
        if publisher is not None:
            outbox = (SharedOutbox(engine, publisher) if shared else Outbox(engine, publisher)).start()
        service = start_service(engine, notifier, clock=clock, ids=ids, failures=failures,
                                state_updates=state_updates, outbox=outbox)
    if coordinator is not None:
        service.share(coordinator)  # generation -1: the first request reloads under the lock
    return service


def start_service(
    engine: Engine,
    notifier: Notifier,
    *,
    clock: Clock | None = None,
    ids: Ids | None = None,
    failures: FailureInjector | None = None,
    state_updates: bool = True,
    outbox: Outbox | None = None,
) -> ComputeService:
    """The service over an engine whose schema is already migrated (loads what the database holds)."""
    emitter = Emitter(notifier, Legacy())
    return ComputeService(Repository(engine), emitter, clock=clock or WallClock(), ids=ids or Ids(),
                          failures=failures, state_updates=state_updates, outbox=outbox)
