"""The compute service's shared state and the helpers every action uses.

State lives in the database; the live rows are also indexed in memory (the session's identity map
keeps them), so actions read without queries and the repository flushes changes in batches.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from novawatch.compute import db, images, instance_actions
from novawatch.compute.clock import Clock, Ids
from novawatch.compute.emitter import API, COMPUTE, CONDUCTOR, Emitter, InstanceContext, Scheduling
from novawatch.compute.errors import ComputeError, InvalidState, NotFound
from novawatch.compute.failures import FailureInjector, InjectedFailure
from novawatch.compute.host_guard import GUARD
from novawatch.compute.network import CALLER, Caller, Network, update_instance_cache_with_nw_info
from novawatch.compute.outbox import Outbox
from novawatch.compute.repository import Repository
from novawatch.compute.resource_tracker import ResourceTracker, Usage
from novawatch.compute.scheduler import NoValidHost, Scheduler
from novawatch.compute.volumes import Volumes
from novawatch.snapshot import instance_disk_gb

log = logging.getLogger("novawatch.compute")

__all__ = ["API", "COMPUTE", "CONDUCTOR", "ComputeCore", "ComputeError", "InvalidState", "NotFound"]


def image_id(ref: str) -> str:
    """An image reference as the canonical UUID notifications carry; ``ComputeError`` unless it is one."""
    try:
        return str(uuid.UUID(ref))  # takes what oslo's is_uuid_like does: upper case, braces, urn:uuid:, no dashes
    except (ValueError, TypeError, AttributeError):
        raise ComputeError(f"image {ref!r} is not an image id: Nova takes a UUID") from None


def naive(moment: datetime) -> datetime:
    """Database timestamps are naive UTC (the same on SQLite and PostgreSQL)."""
    return moment.replace(tzinfo=None) if moment.tzinfo is not None else moment


def flavor_usage(flavor: db.Flavor, *, from_volume: bool, instance: bool = True) -> Usage:
    """What an instance of ``flavor`` claims on its node (local disk as Watcher counts it: none for the root
    disk of an instance booted from a volume)."""
    disk = instance_disk_gb(flavor.root_gb, flavor.ephemeral_gb, flavor.swap, from_volume)
    return Usage(flavor.vcpus, flavor.memory_mb, disk, instance)


class ComputeCore:
    """State, indexes and helpers shared by the action mixins of :class:`ComputeService`."""

    #: Where network address numbers come from beside other workers (None: the network's own counter).
    _addresses: Callable[[], int] | None = None

    def __init__(
        self,
        repo: Repository,
        emitter: Emitter,
        *,
        clock: Clock,
        ids: Ids,
        failures: FailureInjector | None = None,
        state_updates: bool = True,
        outbox: Outbox | None = None,
    ) -> None:
        self.emit = emitter
        self.clock = clock
        self.ids = ids
        self.failures = failures or FailureInjector(0.0)
        #: Nova's ``notify_on_state_change = vm_and_task_state``: every instance save sends ``instance.update``.
        self.state_updates = state_updates
        #: Nova's ``[scheduler] max_attempts``: hosts a build may try before it fails (1: no reschedule).
        self.max_attempts = 3
        #: The hosts the API and conductor, and the scheduler, notifications come from.
        self.api_host = "controller"
        self.scheduler_host = "controller"
        #: Where notifications wait for their transaction's commit (None: sent as they are emitted).
        self.outbox: Outbox | None = None
        if outbox is not None:
            self.attach_outbox(outbox)
        #: Why the state could not be loaded from the database (None: loaded); see :meth:`reload`.
        self.unavailable: str | None = None
        #: The id of the Compute API request being served (set by the API around each action; None otherwise).
        self.api_request_id: str | None = None
        self._open(repo)

    def _open(self, repo: Repository) -> None:
        """Build the in-memory state (indexes, claims, fake backends) from what ``repo``'s database holds."""
        self.repo = repo
        #: The scheduling of the action in progress (what a conductor error reports).
        self._scheduling: Scheduling | None = None
        #: The instance action being recorded (its events and failure go with it).
        self._action: instance_actions.Recorded | None = None
        #: The API request the action in progress belongs to (Nova's ``context.request_id``).
        self.request_id: str | None = None
        #: Per instance, the ``updated_at`` its notifications report: Nova's copy of the instance lags one
        #: save behind the database (a save's notification shows the time of the save before it).
        self._reported_update: dict[str, datetime | None] = {}
        self.tracker = ResourceTracker(self.emit.compute_node)
        self.scheduler = Scheduler(self.tracker)
        self.network = Network(self.ids)
        self.network.take = self._addresses
        self.volumes = Volumes(repo, self.ids, self.now)
        self.services: dict[str, db.Service] = {}
        self.nodes: dict[str, db.ComputeNode] = {}
        self.flavors: dict[int, db.Flavor] = {}
        self.instances: dict[str, db.Instance] = {}
        self.bdms: dict[str, list[db.BlockDeviceMapping]] = {}
        self.migrations: dict[str, db.Migration] = {}
        #: Live migrations in progress that are block migrations (a failure has disks to clean up).
        self._block_migration: dict[str, bool] = {}
        self._load()

    def attach_outbox(self, outbox: Outbox) -> None:
        """Send notifications through ``outbox`` from now on: each leaves once its transaction committed."""
        drivers = self.emit.notifier.drivers
        if outbox not in drivers:
            drivers.append(outbox)
        self.outbox = outbox

    # -- startup -----------------------------------------------------------------------------

    def _load(self) -> None:
        for svc in self.repo.all(db.Service):
            self.services[svc.host] = svc
        for flavor in self.repo.all(db.Flavor):
            self.flavors[flavor.id] = flavor
        for node in self.repo.all(db.ComputeNode):
            self._track_node(node)
        for inst in self.repo.all(db.Instance, db.Instance.deleted.is_(False)):
            self.instances[inst.uuid] = inst
        for bdm in self.repo.all(db.BlockDeviceMapping, db.BlockDeviceMapping.deleted.is_(False)):
            self.bdms.setdefault(bdm.instance_uuid, []).append(bdm)
        for mig in self.repo.all(db.Migration, db.Migration.status.in_(ACTIVE_MIGRATION)):
            self.migrations[mig.instance_uuid] = mig
        self.network.resume_after([i.info_cache for i in self.instances.values()])
        # Rebuild the claims from the rows: the tracker's memory is derived, the database is the truth.
        for inst in self.instances.values():
            self._restore_instance_claim(inst)
        for mig in self.migrations.values():
            self._restore_migration_claim(mig)
        # One of several workers (its changes tracked) reads rows other workers may commit meanwhile: it derives
        # in memory only, and leaves the rows to the holders of their hosts' locks (compute/shared.py).
        derive = self.tracker.rederive if self.repo.track_changes else self.tracker.update
        for node in self.nodes.values():
            derive(node)

    # The installers below are shared by the full load and the workers' catch-up (catchup.py): one
    # source for what a row means in memory.

    def _track_node(self, node: db.ComputeNode) -> None:
        """Index a node row loaded from the database and track its claims (its stored usage as last reported)."""
        if node.host is not None:
            self.nodes[node.host] = node
            self.tracker.add_node(node, created=False)

    def _restore_instance_claim(self, inst: db.Instance) -> db.ComputeNode | None:
        """Claim a live instance's flavor on its host's node; the node, or None when it has none."""
        owner = self.nodes.get(inst.host) if inst.host else None
        if owner is not None:
            self.tracker.claims[owner.uuid][inst.uuid] = self.usage(inst, self.flavors[inst.instance_type_id])
        return owner

    def _restore_migration_claim(self, mig: db.Migration) -> db.ComputeNode | None:
        """Claim what an active migration holds (the old flavor on the source once finished, else the new one
        on the destination); the node holding it, or None."""
        inst = self.instances.get(mig.instance_uuid)
        if inst is None:
            return None
        if mig.status == "finished" and mig.old_instance_type_id is not None:
            holder = self.nodes.get(mig.source_compute or "")
            flavor = self.flavors[mig.old_instance_type_id]
        else:
            holder = self.nodes.get(mig.dest_compute or "")
            flavor = self.flavors[mig.new_instance_type_id or inst.instance_type_id]
        if holder is not None:
            self.tracker.claims[holder.uuid][migration_key(mig)] = self.usage(inst, flavor, instance=False)
        return holder

    # -- time, ids, lookups ------------------------------------------------------------------

    def now(self) -> datetime:
        """The current time as stored in the database (naive UTC)."""
        return naive(self.clock.now())

    def instance(self, uuid: str) -> db.Instance:
        """A live instance, or :class:`NotFound`."""
        try:
            return self.instances[uuid]
        except KeyError:
            raise NotFound(f"instance {uuid} not found") from None

    def service(self, host: str) -> db.Service:
        """The compute service of ``host``, or :class:`NotFound`."""
        try:
            return self.services[host]
        except KeyError:
            raise NotFound(f"compute service on host {host} not found") from None

    def flavor_of(self, inst: db.Instance) -> db.Flavor:
        """The instance's current flavor."""
        return self.flavors[inst.instance_type_id]

    def usage(self, inst: db.Instance, flavor: db.Flavor, *, instance: bool = True) -> Usage:
        """What an instance of ``flavor`` claims on its node (local disk as Watcher counts it)."""
        return flavor_usage(flavor, from_volume=inst.booted_from_volume, instance=instance)

    # -- instance saves and notifications ------------------------------------------------------

    def context(self, inst: db.Instance, fault: BaseException | None = None, *,
                overrides: dict[str, Any] | None = None, **values: Any) -> InstanceContext:
        """What the emitter needs about ``inst`` (flavor, network info, volumes, initiator, fault, extras)."""
        shown = dict(overrides or {})
        shown.setdefault("updated_at", self._reported_update.get(inst.uuid, inst.updated_at))
        return InstanceContext(
            instance=inst,
            flavor=self.flavor_of(inst),
            network_info=inst.info_cache.network_info,
            bdms=self.bdms.get(inst.uuid, []),
            user_id=inst.user_id,
            project_id=inst.project_id,
            fault=fault,
            values=values,
            request_id=self.request_id,
            overrides=shown,
        )

    def save(self, inst: db.Instance, *, source: str = COMPUTE, sender: str | None = None,
             old_states: tuple[str | None, str | None] | None = None, touch: bool = True, **changes: Any) -> None:
        """Apply ``changes`` to the instance and, like Nova's ``Instance.save()``, send ``instance.update``.

        ``sender`` is the host the update comes from (the instance's host, after the changes, by default);
        ``old_states`` are the (vm, task) states last saved when the caller changed them in memory before.
        ``touch=False`` sends the update without a database save (Nova's conductor announcing a new
        instance): ``updated_at`` stays as it is.
        """
        old = old_states or (inst.vm_state, inst.task_state)
        for name, value in changes.items():
            setattr(inst, name, value)
        if source == API and old_states is None:
            # Nova's API saves with an expected task state and reports the states it saved as the old ones.
            old = (inst.vm_state, inst.task_state)
        if touch:
            self._reported_update[inst.uuid] = inst.updated_at
            inst.updated_at = self.now()
        if self.state_updates:
            # Nova's send_update names its publisher after the notifier service "compute" wherever the
            # save runs (the API process included); only the conductor passes its own service name.
            conductor = source == CONDUCTOR
            self.emit.instance("instance.update", self.context(inst, _old_states=old),
                               host=sender or inst.host or self._api_host(),
                               source=CONDUCTOR if conductor else COMPUTE,
                               legacy_service="conductor" if conductor else "compute")

    def notify(self, inst: db.Instance, action: str, phase: str | None = None, *, host: str | None = None,
               source: str = COMPUTE, fault: BaseException | None = None, overrides: dict[str, Any] | None = None,
               **values: Any) -> None:
        """Send ``instance.<action>[.<phase>]`` (and its legacy twin) about ``inst``.

        ``overrides`` are attributes the notification reports in place of the instance's (a stale copy's).
        """
        event_type = f"instance.{action}.{phase}" if phase else f"instance.{action}"
        self.emit.instance(event_type, self.context(inst, fault, overrides=overrides, **values),
                           host=host or inst.host or self._api_host(), source=source)

    def _api_host(self) -> str:
        return self.api_host

    def set_network_info(self, inst: db.Instance, network_info: list[dict[str, Any]]) -> None:
        """Store the instance's network info through the ``update_instance_cache_with_nw_info`` hook point."""
        token = CALLER.set(Caller(self.request_id, self.flavors.get(inst.instance_type_id)))
        try:
            update_instance_cache_with_nw_info(inst, network_info)
        finally:
            CALLER.reset(token)

    # -- records -------------------------------------------------------------------------------

    def new_request(self) -> str:
        """Start a new request: the id its notifications and instance action carry; the Compute API's own
        request id (``X-OpenStack-Request-Id``) when an API request is being served, else a new ``req-<uuid>``."""
        self.request_id = self.api_request_id or "req-" + self.ids()
        return self.request_id

    def record_action(self, inst: db.Instance, action: str, *, new_request: bool = True) -> None:
        """Record a user action on the instance and its first event (``os-instance-actions``); unless told
        otherwise it starts a new request."""
        if new_request:
            self.new_request()
        self._action = instance_actions.record(self.repo, inst, action, now=self.now(), request_id=self.request_id,
                                               api_host=self.api_host)

    def _device_name(self, inst: db.Instance) -> str:
        """The next free ``/dev/vdX`` of the instance (``/dev/vda`` is an image-booted instance's root disk)."""
        used = {b.device_name for b in self.bdms.get(inst.uuid, [])}
        if not inst.booted_from_volume:
            used.add("/dev/vda")
        for letter in "abcdefghijklmnopqrstuvwxyz":
            name = f"/dev/vd{letter}"
            if name not in used:
                return name
        raise InvalidState(f"instance {inst.uuid} has no free device name")

    def _add_bdm(self, inst: db.Instance, vol: db.Volume, device: str | None, *, boot_index: int | None = None,
                 delete_on_termination: bool = False) -> db.BlockDeviceMapping:
        bdm = db.BlockDeviceMapping(
            id=self.repo.next_id(db.BlockDeviceMapping), instance_uuid=inst.uuid, volume_id=vol.id,
            attachment_id=self.ids(), device_name=device, boot_index=boot_index, source_type="volume",
            destination_type="volume", delete_on_termination=delete_on_termination, volume_size=vol.size,
            tag=None, deleted=False,
        )
        self.repo.add(bdm)
        self.bdms.setdefault(inst.uuid, []).append(bdm)
        return bdm

    def record_fault(self, inst: db.Instance, exc: BaseException, host: str | None) -> None:
        """Record an instance fault, as Nova's ``wrap_instance_fault`` does."""
        self.repo.add(db.InstanceFault(
            id=self.repo.next_id(db.InstanceFault), instance_uuid=inst.uuid,
            code=int(getattr(exc, "code", 500)), message=str(exc)[:255], details=type(exc).__name__,
            host=host, created_at=self.now(),
        ))
        if self._action is not None and self._action.action.instance_uuid == inst.uuid:
            instance_actions.failed(self._action, exc, self.now())

    def scheduling(self, inst: db.Instance, flavor: db.Flavor, **wanted: Any) -> Scheduling:
        """A request to the scheduler for ``inst`` with ``flavor``; ``wanted`` sets :class:`Scheduling` fields."""
        image = None if inst.booted_from_volume or not inst.image_ref else images.lookup(inst.image_ref)
        volume_gb = next((b.volume_size or 0 for b in self.bdms.get(inst.uuid, []) if b.boot_index == 0), 0)
        return Scheduling(instance=inst, flavor=flavor, image=image, volume_gb=volume_gb,
                          request_id=self.request_id, user_id=inst.user_id, project_id=inst.project_id,
                          created_at=self.now(), **wanted)

    def schedule(self, req: Scheduling, *, rebuild: bool = False) -> db.ComputeNode:
        """Ask the scheduler for a node, as Nova's conductor does.

        Placement's candidates first: when there are none, :class:`NoValidHost` without a notification
        (Nova's scheduler gives up before it notifies). Then ``scheduler.select_destinations.start``, the
        filters, and ``.end`` once one was picked (NoValidHost after the start only, as Nova does). A
        rebuild skips Placement: it stays on the instance's host.
        """
        self._scheduling = req
        inst = req.instance
        if rebuild:
            node = self.nodes.get(inst.host or "")
            candidates = [] if node is None else [(inst.host or "", node)]
        else:
            candidates = self.scheduler.candidates(self.nodes, self.services, self.usage(inst, req.flavor),
                                                   only_host=req.host or req.force_host)
            if not candidates:
                raise NoValidHost()
        self.emit.scheduler("start", req, self.scheduler_host)
        node = self.scheduler.pick(candidates, self.services, exclude=req.ignore_hosts or ())
        guard = GUARD.get()
        if guard is not None and not rebuild:
            guard.claim(node.host)  # the pick the guard's first check foresaw
        self.emit.scheduler("end", req, self.scheduler_host)
        return node

    def would_pick(self, flavor: db.Flavor, *, from_volume: bool, host: str | None,
                   exclude: tuple[str, ...] = ()) -> str | None:
        """The host :meth:`schedule` would pick for an instance of ``flavor`` (on ``host`` when given, never
        on ``exclude``), or None when no host has room: the same two stages on the same memory, with nothing
        changed or sent."""
        usage = flavor_usage(flavor, from_volume=from_volume)
        ranked = self.scheduler.rank(self.scheduler.candidates(self.nodes, self.services, usage, only_host=host),
                                     self.services, exclude=exclude)
        return ranked[0].host if ranked else None

    def guard_move(self, inst: db.Instance, flavor: db.Flavor, host: str | None) -> None:
        """Beside other workers (:mod:`~novawatch.compute.host_guard`): refuse a move, before it changes
        anything, unless the request holds the lock of the host the scheduler would pick for it."""
        guard = GUARD.get()
        if guard is not None:
            guard.first_pick(self.would_pick(flavor, from_volume=inst.booted_from_volume, host=host,
                                             exclude=(inst.host,) if inst.host else ()))

    def alternates(self, req: Scheduling, chosen: db.ComputeNode) -> list[db.ComputeNode]:
        """The scheduler's alternates to ``chosen`` for a reschedule: up to ``max_attempts - 1`` other hosts
        that passed, best first."""
        candidates = self.scheduler.candidates(self.nodes, self.services, self.usage(req.instance, req.flavor),
                                               only_host=req.host or req.force_host)
        ranked = self.scheduler.rank(candidates, self.services, exclude=req.ignore_hosts or ())
        return [n for n in ranked if n.uuid != chosen.uuid][: max(self.max_attempts - 1, 0)]

    def conductor_error(self, inst: db.Instance, task: str, exc: BaseException, **changes: Any) -> None:
        """What Nova's ``set_vm_state_and_notify`` does when the conductor fails a task (e.g. no valid host).

        An ``instance.update`` with the new states, the fault, then ``compute_task.<task>`` (legacy) and
        ``compute_task.<task>.error`` with the request spec of the failed scheduling.
        """
        self.save(inst, source=COMPUTE, sender=self.api_host, **changes)
        self.record_fault(inst, exc, None)
        self.emit.compute_task_error(task, inst, exc, self.api_host, self._scheduling)

    def exists(self, inst: db.Instance, host: str | None) -> None:
        """``instance.exists`` for the current audit period, which Nova sends inline before some actions."""
        self.notify(inst, "exists", host=host)

    def confirm_resize(self, uuid: str) -> db.Instance:
        """Confirm a pending resize (implemented by the move actions; declared here for delete's use)."""
        raise NotImplementedError

    def check(self, action: str) -> None:
        """Let the failure injector fail the backend call of ``action``."""
        self.failures.check(action)

    def require(self, inst: db.Instance, action: str, vm_states: tuple[str, ...],
                task_states: tuple[str | None, ...] = (None,), *, unlocked: bool = True) -> None:
        """Refuse the action unless the instance is in one of the allowed states (Nova's ``check_instance_state``)."""
        if inst.vm_state not in vm_states or inst.task_state not in task_states:
            raise InvalidState(
                f"cannot {action} instance {inst.uuid} while it is in vm_state {inst.vm_state}, "
                f"task_state {inst.task_state}"
            )
        if unlocked and inst.locked:
            raise InvalidState(f"instance {inst.uuid} is locked")


    def _failed(self, inst: db.Instance, action: str, function: str, **error_changes: Any) -> bool:
        """Run the failure injector; on failure do what Nova's decorators do and return True.

        ``wrap_instance_fault`` records the fault, ``reverts_task_state`` clears the task state (an
        ``instance.update``), and ``wrap_exception`` sends ``compute.exception``.
        """
        try:
            self.check(action)
        except InjectedFailure as exc:
            host = inst.host
            self.record_fault(inst, exc, host)
            self.save(inst, sender=host, task_state=None, **error_changes)
            self.emit.exception(exc, function, host)
            return True
        return False


#: The migration statuses that hold a claim (and make the migration the instance's current one).
ACTIVE_MIGRATION = ("pre-migrating", "running", "finished")


def migration_key(mig: db.Migration) -> str:
    """The resource tracker's claim key of a migration."""
    return f"migration:{mig.uuid}"


Action = Callable[..., Any]
