"""A seeded workload generator over the compute service's actions (``novawatch simulate``).

Everything that varies comes from the seed: the workload's choices, the ids, the message ids and the
failures each draw from their own RNG, and time is a simulated clock, so the same arguments give the
same notifications, byte for byte, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import logging
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novawatch import snapshot
from novawatch.compute import db
from novawatch.compute.clock import Ids, SimClock
from novawatch.compute.core import ComputeError
from novawatch.compute.failures import FailureInjector
from novawatch.compute.service import ComputeService, open_service
from novawatch.compute.source import ComputeSource
from novawatch.notifications import Notification, NotificationFormat, Notifier
from novawatch.notifications.drivers import Driver

log = logging.getLogger("novawatch.simulate")

#: Default weights of the workload's actions (``--mix`` overrides some or all of them).
DEFAULT_MIX: dict[str, float] = {
    "boot": 12, "delete": 6, "soft_delete": 1, "restore": 1, "force_delete": 1,
    "power_off": 3, "power_on": 3, "reboot": 3, "pause": 2, "unpause": 2, "suspend": 2, "resume": 2,
    "lock": 1, "unlock": 1, "rescue": 1, "unrescue": 1, "snapshot": 1, "trigger_crash_dump": 0.5,
    "shelve": 1, "shelve_offload": 1, "unshelve": 1.5,
    "resize": 2, "confirm_resize": 1.5, "revert_resize": 1,
    "live_migrate": 2, "live_migration_complete": 2, "live_migration_abort": 0.5,
    "live_migration_force_complete": 0.5, "evacuate": 1, "rebuild": 1,
    "attach_volume": 2, "detach_volume": 1.5, "swap_volume": 1,
    "attach_interface": 1, "detach_interface": 1, "set_tags": 1, "update_metadata": 1,
    "service_create": 0.3, "service_disable": 0.3, "service_enable": 0.3, "service_force_down": 0.1,
    "service_force_up": 0.3, "service_delete": 0.1,
}

#: Flavors of the simulated cloud: (name, vcpus, memory_mb, root_gb, ephemeral_gb, swap_mb).
FLAVORS: tuple[tuple[str, int, int, int, int, int], ...] = (
    ("m1.tiny", 1, 512, 1, 0, 0),
    ("m1.small", 1, 2048, 20, 0, 0),
    ("m1.medium", 2, 4096, 40, 0, 0),
    ("m1.large", 4, 8192, 80, 0, 0),
    ("m1.xlarge", 8, 16384, 160, 0, 0),
    ("m1.eph", 2, 4096, 20, 10, 1024),
)

#: Node sizes: (vcpus, memory_mb, local_gb).
NODE_SIZES: tuple[tuple[int, int, int], ...] = ((16, 65536, 800), (32, 131072, 1600), (64, 262144, 3200))


def parse_mix(text: str) -> dict[str, float]:
    """``boot=5,delete=2`` -> weights; unknown action names are an error naming them."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, weight = part.partition("=")
        if not sep or name not in DEFAULT_MIX:
            known = ", ".join(sorted(DEFAULT_MIX))
            raise ValueError(f"bad --mix entry {part!r}: use ACTION=WEIGHT with ACTION one of {known}")
        try:
            mix[name] = float(weight)
        except ValueError:
            raise ValueError(f"bad weight in --mix entry {part!r}") from None
        if mix[name] < 0:
            raise ValueError(f"negative weight in --mix entry {part!r}")
    return mix


@dataclass
class Config:
    """What a simulation run does."""

    hosts: int = 10
    instances: int = 20
    actions: int = 100
    seed: int = 0
    failure_rate: float = 0.0
    mix: Mapping[str, float] = field(default_factory=dict)
    notification_format: NotificationFormat | str = NotificationFormat.BOTH
    db_url: str | None = None
    #: Commit to the database every this many actions (batching is what makes long runs fast).
    commit_every: int = 500


@dataclass
class Stats:
    """What a run did: actions by name and outcome, notifications by event type."""

    actions: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    faults: int = 0
    notifications: Counter[str] = field(default_factory=Counter)

    @property
    def total_actions(self) -> int:
        return sum(self.actions.values())

    @property
    def total_notifications(self) -> int:
        return sum(self.notifications.values())


class _Counter:
    """A driver that counts what is sent (while switched on)."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.on = False

    def send(self, topic: str, notification: Notification[Any], body: bytes) -> None:
        if self.on:
            self.stats.notifications[notification.event_type] += 1


class Simulation:
    """The compute service on a simulated clock with a seeded workload.

    ``setup()`` builds the cloud (hosts, flavors, initial instances) without streaming; ``run()``
    performs the actions, sending every notification to ``drivers``.
    """

    def __init__(self, config: Config, drivers: Sequence[Driver] = ()) -> None:
        self.config = config
        self.stats = Stats()
        self.clock = SimClock()
        self.rng = random.Random(config.seed)
        self._counter = _Counter(self.stats)
        self._stream: list[Driver] = list(drivers)
        self.notifier = Notifier([self._counter], notification_format=config.notification_format,
                                 clock=self.clock.tick, message_ids=Ids(_derive(config.seed, 1)))
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        url = config.db_url
        if url is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="novawatch-sim-")
            url = f"sqlite:///{Path(self._tmp.name) / 'compute.db'}"
        self.service: ComputeService = open_service(
            url, self.notifier, clock=self.clock, ids=Ids(_derive(config.seed, 2)),
            failures=FailureInjector(0.0, seed=_derive(config.seed, 3)), fresh=True,
        )
        weights = {**DEFAULT_MIX, **config.mix}
        self._names = [n for n, w in weights.items() if w > 0]
        self._weights = [weights[n] for n in self._names]
        self._uuids: list[str] = []
        self._pos: dict[str, int] = {}
        self._host_seq = 0
        self._vm_seq = 0
        self._flavors: list[db.Flavor] = []
        self._faults_before = 0

    # -- setup -----------------------------------------------------------------------------------

    def setup(self, progress: Callable[[int], None] | None = None) -> snapshot.Snapshot:
        """Create the hosts, flavors and initial instances; returns the ``--initial`` snapshot.

        ``progress(1)`` is called after each host and each instance (``hosts + instances`` in all).
        """
        svc = self.service
        for name, vcpus, memory, root, eph, swap in FLAVORS:
            self._flavors.append(svc.create_flavor(name, vcpus=vcpus, memory_mb=memory, root_gb=root,
                                                   ephemeral_gb=eph, swap=swap))
        for _ in range(self.config.hosts):
            self._new_host()
            if progress is not None:
                progress(1)
        for _ in range(self.config.instances):
            self._boot()
            self.clock.advance(1)
            if progress is not None:
                progress(1)
        svc.commit()
        return self.truth()

    def _new_host(self) -> None:
        self._host_seq += 1
        vcpus, memory, disk = self.rng.choice(NODE_SIZES)
        self.service.create_service(f"host-{self._host_seq:04d}", vcpus=vcpus, memory_mb=memory, local_gb=disk)

    def _track(self, uuid: str) -> None:
        if uuid in self.service.instances and uuid not in self._pos:
            self._pos[uuid] = len(self._uuids)
            self._uuids.append(uuid)

    def _untrack(self, uuid: str) -> None:
        i = self._pos.pop(uuid, None)
        if i is None:
            return
        last = self._uuids.pop()
        if last != uuid:
            self._uuids[i] = last
            self._pos[last] = i

    def _boot(self) -> None:
        rng = self.rng
        flavor = rng.choice(self._flavors)
        bfv = 20 if rng.random() < 0.1 else None
        project = f"project-{rng.randrange(8)}"
        self._vm_seq += 1
        inst = self.service.boot(f"vm-{self._vm_seq:06d}", flavor, boot_volume_gb=bfv, project_id=project,
                                 user_id=f"user-{rng.randrange(20)}", ports=1 + (rng.random() < 0.2))
        self._track(inst.uuid)

    # -- the run ---------------------------------------------------------------------------------

    def run(self, progress: Callable[[int], None] | None = None) -> Stats:
        """Perform ``config.actions`` actions, streaming their notifications."""
        self.start()
        for done in range(1, self.config.actions + 1):
            self.step()
            if done % self.config.commit_every == 0:
                self.service.commit()
            if progress is not None:
                progress(1)
        return self.finish()

    def start(self) -> None:
        """Switch on failure injection and the stream: what follows is the run proper."""
        self.service.failures.rate = self.config.failure_rate
        self.notifier.drivers = [self._counter, *self._stream]
        self._counter.on = True
        self._faults_before = self.service.repo.next_id(db.InstanceFault)

    def step(self) -> None:
        """One random action, a little later on the simulated clock."""
        self.clock.advance(round(self.rng.uniform(0.001, 2.0), 6))
        self._one()

    def finish(self) -> Stats:
        """Commit and count the faults recorded since :meth:`start`."""
        svc = self.service
        svc.commit()
        self.stats.faults = svc.repo.next_id(db.InstanceFault) - self._faults_before - 1
        return self.stats

    def _one(self) -> None:
        for _ in range(20):
            name = self.rng.choices(self._names, self._weights)[0]
            runner = getattr(self, f"_do_{name}")
            try:
                if runner():
                    self.stats.actions[name] += 1
                    return
            except ComputeError as exc:
                # The generator only picks targets that allow the action; a refusal is still counted.
                self.stats.refused[name] += 1
                log.debug("%s refused: %s", name, exc)
                return
        self._boot()
        self.stats.actions["boot"] += 1

    def _pick(self, ok: Callable[[db.Instance], bool], tries: int = 12) -> db.Instance | None:
        """A random live instance satisfying ``ok`` (rejection sampling keeps a step O(1))."""
        if not self._uuids:
            return None
        instances = self.service.instances
        for _ in range(tries):
            inst = instances.get(self._uuids[self.rng.randrange(len(self._uuids))])
            if inst is not None and ok(inst):
                return inst
        return None

    def _idle(self, *states: str) -> Callable[[db.Instance], bool]:
        migrations = self.service.migrations

        def ok(inst: db.Instance) -> bool:
            return (inst.vm_state in states and inst.task_state is None and not inst.locked
                    and inst.host is not None and inst.uuid not in migrations)

        return ok

    def _with(self, states: tuple[str, ...], action: Callable[[str], object]) -> bool:
        return self._act(self._pick(self._idle(*states)), action)

    @staticmethod
    def _act(inst: db.Instance | None, action: Callable[[str], object]) -> bool:
        """Run ``action`` on the instance picked, if one was; True when it ran."""
        if inst is None:
            return False
        action(inst.uuid)
        return True

    # -- one method per action: True when it ran -------------------------------------------------

    def _do_boot(self) -> bool:
        self._boot()
        return True

    def _do_delete(self) -> bool:
        migrations = self.service.migrations
        inst = self._pick(lambda i: not i.locked and i.task_state is None
                          and (i.uuid not in migrations or i.vm_state == "resized"))
        if inst is None:
            return False
        self.service.delete(inst.uuid)
        if inst.uuid not in self.service.instances:
            self._untrack(inst.uuid)
        return True

    def _do_force_delete(self) -> bool:
        inst = self._pick(self._idle("soft-delete"), tries=30)
        if inst is None:
            return False
        self.service.force_delete(inst.uuid)
        if inst.uuid not in self.service.instances:
            self._untrack(inst.uuid)
        return True

    def _do_soft_delete(self) -> bool:
        return self._with(("active", "stopped"), self.service.soft_delete)

    def _do_restore(self) -> bool:
        return self._with(("soft-delete",), self.service.restore)

    def _do_power_off(self) -> bool:
        return self._with(("active",), self.service.power_off)

    def _do_power_on(self) -> bool:
        return self._with(("stopped",), self.service.power_on)

    def _do_reboot(self) -> bool:
        inst = self._pick(self._idle("active", "error"))
        if inst is None:
            return False
        self.service.reboot(inst.uuid, hard=inst.vm_state == "error" or self.rng.random() < 0.3)
        return True

    def _do_pause(self) -> bool:
        return self._with(("active",), self.service.pause)

    def _do_unpause(self) -> bool:
        return self._with(("paused",), self.service.unpause)

    def _do_suspend(self) -> bool:
        return self._with(("active",), self.service.suspend)

    def _do_resume(self) -> bool:
        return self._with(("suspended",), self.service.resume)

    def _do_lock(self) -> bool:
        inst = self._pick(lambda i: not i.locked and i.task_state is None)
        if inst is None:
            return False
        self.service.lock(inst.uuid, self.rng.choice([None, "maintenance"]))
        return True

    def _do_unlock(self) -> bool:
        return self._act(self._pick(lambda i: i.locked, tries=30), self.service.unlock)

    def _do_rescue(self) -> bool:
        return self._with(("active", "stopped"), self.service.rescue)

    def _do_unrescue(self) -> bool:
        return self._with(("rescued",), self.service.unrescue)

    def _do_snapshot(self) -> bool:
        return self._with(("active", "stopped"), self.service.snapshot)

    def _do_trigger_crash_dump(self) -> bool:
        return self._with(("active",), self.service.trigger_crash_dump)

    def _do_shelve(self) -> bool:
        return self._with(("active", "stopped"), self.service.shelve)

    def _do_shelve_offload(self) -> bool:
        return self._with(("shelved",), self.service.shelve_offload)

    def _do_unshelve(self) -> bool:
        migrations = self.service.migrations
        inst = self._pick(lambda i: i.vm_state in ("shelved", "shelved_offloaded") and i.task_state is None
                          and not i.locked and i.uuid not in migrations, tries=20)
        return self._act(inst, self.service.unshelve)

    def _do_resize(self) -> bool:
        inst = self._pick(self._idle("active", "stopped"))
        if inst is None:
            return False
        choices = [f for f in self._flavors if f.id != inst.instance_type_id]
        self.service.resize(inst.uuid, self.rng.choice(choices))
        return True

    def _resized(self) -> db.Instance | None:
        return self._pick(lambda i: i.vm_state == "resized" and i.task_state is None and not i.locked, tries=30)

    def _do_confirm_resize(self) -> bool:
        return self._act(self._resized(), self.service.confirm_resize)

    def _do_revert_resize(self) -> bool:
        return self._act(self._resized(), self.service.revert_resize)

    def _do_live_migrate(self) -> bool:
        return self._with(("active",), self.service.live_migrate)

    def _live(self) -> db.Instance | None:
        migrations = self.service.migrations

        def running(i: db.Instance) -> bool:
            mig = migrations.get(i.uuid)
            return mig is not None and mig.migration_type == "live-migration" and mig.status == "running"

        return self._pick(running, tries=30)

    def _do_live_migration_complete(self) -> bool:
        return self._act(self._live(), self.service.live_migration_complete)

    def _do_live_migration_abort(self) -> bool:
        return self._act(self._live(), self.service.live_migration_abort)

    def _do_live_migration_force_complete(self) -> bool:
        return self._act(self._live(), self.service.live_migration_force_complete)

    def _do_evacuate(self) -> bool:
        svc = self.service
        migrations = svc.migrations

        def down(i: db.Instance) -> bool:
            s = svc.services.get(i.host or "")
            return (s is not None and s.forced_down and i.task_state is None and i.uuid not in migrations
                    and i.vm_state in ("active", "stopped", "error"))

        return self._act(self._pick(down, tries=30), svc.evacuate)

    def _do_rebuild(self) -> bool:
        return self._with(("active", "stopped", "error"), self.service.rebuild)

    def _do_attach_volume(self) -> bool:
        inst = self._pick(self._idle("active", "stopped", "paused", "suspended"))
        if inst is None or len(self.service.bdms.get(inst.uuid, [])) >= 8:
            return False
        vol = self.service.create_volume(self.rng.choice((1, 10, 50)))
        self.service.attach_volume(inst.uuid, vol.id)
        return True

    def _data_volume(self, inst: db.Instance) -> db.BlockDeviceMapping | None:
        vols = [b for b in self.service.bdms.get(inst.uuid, []) if b.boot_index != 0 and b.volume_id]
        return self.rng.choice(vols) if vols else None

    def _do_detach_volume(self) -> bool:
        inst = self._pick(lambda i: self._idle("active", "stopped", "paused", "suspended")(i)
                          and self._data_volume(i) is not None)
        if inst is None:
            return False
        bdm = self._data_volume(inst)
        assert bdm is not None and bdm.volume_id is not None
        self.service.detach_volume(inst.uuid, bdm.volume_id)
        return True

    def _do_swap_volume(self) -> bool:
        inst = self._pick(lambda i: self._idle("active", "stopped", "paused", "suspended")(i)
                          and self._data_volume(i) is not None)
        if inst is None:
            return False
        bdm = self._data_volume(inst)
        assert bdm is not None and bdm.volume_id is not None
        new = self.service.create_volume(bdm.volume_size or 10)
        self.service.swap_volume(inst.uuid, bdm.volume_id, new.id)
        return True

    def _do_attach_interface(self) -> bool:
        inst = self._pick(lambda i: self._idle("active", "stopped", "paused", "suspended")(i)
                          and len(i.info_cache.network_info) < 4)
        return self._act(inst, self.service.attach_interface)

    def _do_detach_interface(self) -> bool:
        inst = self._pick(lambda i: self._idle("active", "stopped", "paused", "suspended")(i)
                          and len(i.info_cache.network_info) > 1)
        if inst is None:
            return False
        port = self.rng.choice(inst.info_cache.network_info)["id"]
        self.service.detach_interface(inst.uuid, port)
        return True

    def _do_set_tags(self) -> bool:
        inst = self._pick(lambda i: i.task_state is None)
        if inst is None:
            return False
        self.service.set_tags(inst.uuid, self.rng.sample(["web", "db", "batch", "gpu", "prod", "dev"], 2))
        return True

    def _do_update_metadata(self) -> bool:
        inst = self._pick(lambda i: i.task_state is None)
        if inst is None:
            return False
        self.service.update_metadata(inst.uuid, {"owner": f"team-{self.rng.randrange(5)}"})
        return True

    def _service(self, ok: Callable[[db.Service], bool]) -> db.Service | None:
        hosts = [s for s in self.service.services.values() if ok(s)]
        return self.rng.choice(hosts) if hosts else None

    def _do_service_create(self) -> bool:
        self._new_host()
        return True

    def _do_service_disable(self) -> bool:
        svc = self._service(lambda s: not s.disabled)
        if svc is None:
            return False
        self.service.disable_service(svc.host, self.rng.choice(["maintenance", "hardware check", None]))
        return True

    def _do_service_enable(self) -> bool:
        svc = self._service(lambda s: s.disabled)
        if svc is None:
            return False
        self.service.enable_service(svc.host)
        return True

    def _do_service_force_down(self) -> bool:
        down = sum(1 for s in self.service.services.values() if s.forced_down)
        # Keep most of the cloud up: a few hosts down at a time is what evacuation is for.
        if down * 10 >= len(self.service.services):
            return False
        svc = self._service(lambda s: not s.forced_down)
        if svc is None:
            return False
        self.service.force_down_service(svc.host, True)
        return True

    def _do_service_force_up(self) -> bool:
        svc = self._service(lambda s: s.forced_down)
        if svc is None:
            return False
        self.service.force_down_service(svc.host, False)
        return True

    def _do_service_delete(self) -> bool:
        busy = {i.host for i in self.service.instances.values()}
        busy.update(m.source_compute for m in self.service.migrations.values())
        busy.update(m.dest_compute for m in self.service.migrations.values())
        if len(self.service.services) <= 2:
            return False
        svc = self._service(lambda s: s.host not in busy)
        if svc is None:
            return False
        self.service.delete_service(svc.host)
        return True

    # -- results ---------------------------------------------------------------------------------

    def truth(self) -> snapshot.Snapshot:
        """The database's state as a ``novawatch.model/1`` snapshot (committed first)."""
        self.service.commit()
        return ComputeSource(self.service.repo.engine).snapshot()

    def close(self) -> None:
        self.service.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _derive(seed: int, stream: int) -> int:
    """Independent RNG seeds per purpose, so that e.g. the notification format cannot change the truth."""
    return (seed * 1_000_003 + stream * 7_919) & 0xFFFFFFFFFFFF
