"""The workload the Nova check runs: a list of named steps, independent of who carries them out.

A step names an action and its arguments in a compute service's own terms: logical server names
(``vm-a``), flavor names, host names (``host1``, ``host2``), logical volume and image names. A driver maps
them to real ids and calls: ``runner.py`` drives Nova's functional-test cloud; the same list can drive
novawatch's compute service, so the notifications of each step can be compared step by step.

Only the standard library is used here: this module is imported both by the runner, inside the Nova
environment, and by the check, in novawatch's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Flavors the setup creates: name -> sizes (``ram`` MB, ``disk``/``ephemeral`` GB, ``swap`` MB).
FLAVORS: dict[str, dict[str, int]] = {
    "small": {"vcpus": 1, "ram": 512, "disk": 1, "ephemeral": 0, "swap": 0},
    "medium": {"vcpus": 2, "ram": 1024, "disk": 2, "ephemeral": 1, "swap": 512},
    "large": {"vcpus": 4, "ram": 2048, "disk": 4, "ephemeral": 0, "swap": 0},
    # More memory than any host has: a boot with it fails in scheduling (no valid host).
    "huge": {"vcpus": 1, "ram": 1_000_000, "disk": 1, "ephemeral": 0, "swap": 0},
}

#: Logical images: ``default`` to boot, ``other`` to rebuild with.
IMAGES = ("default", "other")

#: Logical volumes: ``boot`` backs a boot-from-volume server, ``old`` is attached and then swapped for ``new``.
VOLUMES = ("boot", "old", "new")

#: The compute hosts of the cloud.
HOSTS = ("host1", "host2")

#: Every action a step may name, with the arguments it takes (besides ``server``).
ACTIONS: dict[str, tuple[str, ...]] = {
    # fails=True: the server is expected to end in ERROR; fails_once=True: the hypervisor fails its first build
    # (the server is rescheduled to another host and ends ACTIVE).
    "boot": ("flavor", "image", "volume", "fails", "fails_once"),
    "resize": ("flavor",), "confirm_resize": (), "revert_resize": (),
    # live_migrate fails=True: the hypervisor reports the migration failed (it is rolled back on the source);
    # block_migration: Nova's block_migration (default "auto").
    "migrate": (), "live_migrate": ("fails", "block_migration"),
    "shelve": (), "shelve_offload": (), "unshelve": (),
    "attach_volume": ("volume",), "swap_volume": ("volume", "new_volume"), "detach_volume": ("volume",),
    "stop": (), "start": (), "pause": (), "unpause": (), "suspend": (), "resume": (),
    "reboot": ("hard",), "rescue": (), "unrescue": (),
    "lock": ("reason",), "unlock": (),
    "rebuild": ("image",),
    "soft_delete": (), "restore": (), "delete": (),
    # Host actions (``host`` instead of ``server``).
    "host_down": (),  # the compute service stops and is forced down (so that evacuate is allowed)
    "host_up": (),  # the compute service starts again (cleaning up evacuated instances) and is no longer forced down
    "evacuate": (),
    "disable_service": ("reason",), "enable_service": (),
}

HOST_ACTIONS = frozenset({"host_down", "host_up", "disable_service", "enable_service"})


@dataclass(frozen=True)
class Step:
    """One named action, ``name`` unique in a workload.

    ``server`` is the logical server a server action acts on; ``host`` is the host of a host action, or the
    target host of ``boot``, ``migrate``, ``live_migrate`` and ``evacuate`` (the scheduler picks when None).
    """

    name: str
    action: str
    server: str | None = None
    host: str | None = None
    args: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "action": self.action}
        if self.server is not None:
            out["server"] = self.server
        if self.host is not None:
            out["host"] = self.host
        if self.args:
            out["args"] = dict(self.args)
        return out


def _s(name: str, action: str, server: str | None = None, host: str | None = None, **args: Any) -> Step:
    return Step(name, action, server, host, args)


#: Done before Nova's API view "before" is taken: these servers are in the model's bootstrap.
SETUP: tuple[Step, ...] = (
    _s("setup: boot pre-1 on host1", "boot", "pre-1", flavor="small", image="default", host="host1"),
    _s("setup: boot pre-2 on host2", "boot", "pre-2", flavor="medium", image="default", host="host2"),
    _s("setup: boot pre-3 on host1", "boot", "pre-3", flavor="small", image="default", host="host1"),
    _s("setup: shelve pre-3", "shelve", "pre-3"),
    _s("setup: shelve offload pre-3", "shelve_offload", "pre-3"),
)

#: The workload proper: every notification it causes is in the stream the model is fed.
WORKLOAD: tuple[Step, ...] = (
    _s("boot vm-a", "boot", "vm-a", flavor="small", image="default", host="host1"),
    _s("boot vm-b", "boot", "vm-b", flavor="small", image="default", host="host2"),
    _s("boot vm-c from volume", "boot", "vm-c", flavor="medium", volume="boot"),
    _s("boot vm-d", "boot", "vm-d", flavor="medium", image="default"),
    _s("boot vm-e on host2", "boot", "vm-e", host="host2", flavor="small", image="default"),
    _s("boot vm-f, which no host can take", "boot", "vm-f", flavor="huge", image="default", fails=True),
    _s("boot vm-g, whose first build fails (rescheduled)", "boot", "vm-g", flavor="small", image="default",
       fails_once=True),
    _s("resize vm-a to medium", "resize", "vm-a", flavor="medium"),
    _s("confirm resize of vm-a", "confirm_resize", "vm-a"),
    _s("resize vm-b to large", "resize", "vm-b", flavor="large"),
    _s("revert resize of vm-b", "revert_resize", "vm-b"),
    _s("live-migrate vm-a", "live_migrate", "vm-a"),
    _s("live-migrate vm-c, which fails (rolled back)", "live_migrate", "vm-c", fails=True, block_migration=False),
    _s("cold-migrate vm-b", "migrate", "vm-b"),
    _s("confirm migration of vm-b", "confirm_resize", "vm-b"),
    _s("shelve vm-d", "shelve", "vm-d"),
    _s("shelve offload vm-d", "shelve_offload", "vm-d"),
    _s("unshelve vm-d", "unshelve", "vm-d"),
    _s("unshelve pre-3", "unshelve", "pre-3"),
    _s("attach volume old to vm-a", "attach_volume", "vm-a", volume="old"),
    _s("swap volume old for new on vm-a", "swap_volume", "vm-a", volume="old", new_volume="new"),
    _s("detach volume new from vm-a", "detach_volume", "vm-a", volume="new"),
    _s("stop vm-b", "stop", "vm-b"),
    _s("start vm-b", "start", "vm-b"),
    _s("pause vm-a", "pause", "vm-a"),
    _s("unpause vm-a", "unpause", "vm-a"),
    _s("suspend pre-1", "suspend", "pre-1"),
    _s("resume pre-1", "resume", "pre-1"),
    _s("lock vm-b", "lock", "vm-b", reason="maintenance window"),
    _s("rebuild vm-d with image other", "rebuild", "vm-d", image="other"),
    _s("reboot vm-d hard", "reboot", "vm-d", hard=True),
    _s("rescue pre-1", "rescue", "pre-1"),
    _s("unrescue pre-1", "unrescue", "pre-1"),
    _s("stop pre-2", "stop", "pre-2"),
    _s("host2 goes down", "host_down", host="host2"),
    _s("evacuate pre-2 to host1", "evacuate", "pre-2", host="host1"),
    _s("delete vm-e while host2 is down", "delete", "vm-e"),
    _s("host2 comes back", "host_up", host="host2"),
    _s("resize stopped pre-2 to large", "resize", "pre-2", flavor="large"),
    _s("confirm resize of pre-2", "confirm_resize", "pre-2"),
    _s("delete vm-f (in error)", "delete", "vm-f"),
    _s("unlock vm-b", "unlock", "vm-b"),
    _s("soft-delete vm-c", "soft_delete", "vm-c"),
    _s("restore vm-c", "restore", "vm-c"),
    _s("soft-delete vm-d", "soft_delete", "vm-d"),
    _s("delete vm-a", "delete", "vm-a"),
    _s("disable host2", "disable_service", host="host2", reason="maintenance"),
    _s("lock pre-1", "lock", "pre-1", reason="audit"),
)


def validate(steps: tuple[Step, ...]) -> None:
    """Raise ValueError naming the first step with an unknown action, argument or a repeated name."""
    names: set[str] = set()
    for step in steps:
        if step.name in names:
            raise ValueError(f"step {step.name!r} is named twice")
        names.add(step.name)
        if step.action not in ACTIONS:
            raise ValueError(f"step {step.name!r}: unknown action {step.action!r}")
        unknown = set(step.args) - set(ACTIONS[step.action])
        if unknown:
            raise ValueError(f"step {step.name!r}: {step.action} takes no {sorted(unknown)}")
        if step.action in HOST_ACTIONS and not step.host:
            raise ValueError(f"step {step.name!r}: {step.action} needs a host")
        if step.action not in HOST_ACTIONS and not step.server:
            raise ValueError(f"step {step.name!r}: {step.action} needs a server")
