"""The table of action -> notifications, recorded by running every action once (docs/actions.md).

Each row runs one action on a small cloud (three hosts, in-memory SQLite) and lists the event types
it emitted, in order. Failure rows force the action's backend call to fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from novawatch.compute.clock import Ids, SimClock
from novawatch.compute.repository import clear, make_engine, upgrade
from novawatch.compute.service import ComputeService, start_service
from novawatch.notifications import NotificationFormat, Notifier
from novawatch.notifications.drivers import MemoryDriver

Step = Callable[[ComputeService, dict[str, Any]], object]

#: The public key of Nova's keypair notification samples.
_PUBLIC_KEY = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aYd44bd8JttDCE/F/pNRr0lRE"
               "+PiqSPO8nDPHw0010JeMH9gYgnnFlyY3/OcJ02RhIPyyxYpv9FhY+2YiUkpwFOcLImyrxEsYXpD/0d3ac30bNH6Sw9JD9UZHYcpSxsIbE"
               "CHw== Generated-by-Nova")


@dataclass(frozen=True)
class Row:
    """One action of the table: ``setup`` prepares (not recorded), ``act`` is recorded."""

    action: str
    act: Step
    setup: Step | None = None
    fails: str | None = None
    #: The backend call of this action fails once only (e.g. a build that is rescheduled).
    fails_once: str | None = None


def _inst(svc: ComputeService, ctx: dict[str, Any]) -> str:
    uuid: str = ctx["uuid"]
    return uuid


def _fresh(svc: ComputeService, ctx: dict[str, Any]) -> None:
    ctx["uuid"] = svc.boot(f"vm-{len(svc.instances)}", ctx["small"]).uuid


def _then(*steps: Step) -> Step:
    def run(svc: ComputeService, ctx: dict[str, Any]) -> None:
        for step in steps:
            step(svc, ctx)

    return run


def _call(name: str, *args: Any, **kwargs: Any) -> Step:
    def run(svc: ComputeService, ctx: dict[str, Any]) -> object:
        resolved = [ctx[a[1:]] if isinstance(a, str) and a.startswith("$") else a for a in args]
        return getattr(svc, name)(_inst(svc, ctx), *resolved, **kwargs)

    return run


def _volume(key: str) -> Step:
    def run(svc: ComputeService, ctx: dict[str, Any]) -> None:
        ctx[key] = svc.create_volume(10).id

    return run


def _port(svc: ComputeService, ctx: dict[str, Any]) -> None:
    ctx["port"] = svc.attach_interface(_inst(svc, ctx))


def _host_down(svc: ComputeService, ctx: dict[str, Any]) -> None:
    svc.force_down_service(svc.instance(_inst(svc, ctx)).host or "", True)


ROWS: tuple[Row, ...] = (
    Row("service create (host joins)", lambda svc, ctx: svc.create_service("host-new")),
    Row("service disable", lambda svc, ctx: svc.disable_service("host-3", "maintenance")),
    Row("service enable", lambda svc, ctx: svc.enable_service("host-3"),
        lambda svc, ctx: svc.disable_service("host-3", "maintenance")),
    Row("service forced down", lambda svc, ctx: svc.force_down_service("host-3", True)),
    Row("service forced up", lambda svc, ctx: svc.force_down_service("host-3", False),
        lambda svc, ctx: svc.force_down_service("host-3", True)),
    Row("service delete (host leaves)", lambda svc, ctx: svc.delete_service("host-3")),
    Row("boot", _fresh),
    Row("boot on a requested host", lambda svc, ctx: svc.boot("vm-on-2", ctx["small"], host="host-2")),
    Row("boot (spawn fails once: rescheduled)", _fresh, fails_once="boot"),
    Row("boot (spawn fails on every host)", _fresh, fails="boot"),
    Row("boot on a forced host (spawn fails: not rescheduled)",
        lambda svc, ctx: svc.boot("forced", ctx["small"], host="host-2", force_host=True), fails="boot"),
    Row("boot (no valid host)", lambda svc, ctx: svc.boot("too-big", ctx["huge"])),
    Row("power off", _call("power_off"), _fresh),
    Row("power on", _call("power_on"), _then(_fresh, _call("power_off"))),
    Row("reboot", _call("reboot"), _fresh),
    Row("reboot (fails)", _call("reboot"), _fresh, fails="reboot"),
    Row("pause", _call("pause"), _fresh),
    Row("pause (fails)", _call("pause"), _fresh, fails="pause"),
    Row("unpause", _call("unpause"), _then(_fresh, _call("pause"))),
    Row("suspend", _call("suspend"), _fresh),
    Row("resume", _call("resume"), _then(_fresh, _call("suspend"))),
    Row("lock", _call("lock"), _fresh),
    Row("lock with reason", _call("lock", "maintenance"), _fresh),
    Row("unlock", _call("unlock"), _then(_fresh, _call("lock"))),
    Row("rescue", _call("rescue"), _fresh),
    Row("unrescue", _call("unrescue"), _then(_fresh, _call("rescue"))),
    Row("snapshot", _call("snapshot"), _fresh),
    Row("trigger crash dump", _call("trigger_crash_dump"), _fresh),
    Row("tags update", _call("set_tags", ["web"]), _fresh),
    Row("metadata update", _call("update_metadata", {"owner": "ops"}), _fresh),
    Row("metadata item delete", _call("delete_metadata", "owner"),
        _then(_fresh, _call("update_metadata", {"owner": "ops"}))),
    Row("rename", _call("rename", "renamed"), _fresh),
    Row("shelve", _call("shelve"), _fresh),
    Row("shelve offload", _call("shelve_offload"), _then(_fresh, _call("shelve"))),
    Row("unshelve (offloaded)", _call("unshelve"), _then(_fresh, _call("shelve"), _call("shelve_offload"))),
    Row("unshelve (not offloaded)", _call("unshelve"), _then(_fresh, _call("shelve"))),
    Row("resize", _call("resize", "$medium"), _fresh),
    Row("resize (fails)", _call("resize", "$medium"), _fresh, fails="resize"),
    Row("resize confirm", _call("confirm_resize"), _then(_fresh, _call("resize", "$medium"))),
    Row("resize revert", _call("revert_resize"), _then(_fresh, _call("resize", "$medium"))),
    Row("cold migrate", _call("migrate"), _fresh),
    Row("cold migrate confirm", _call("confirm_resize"), _then(_fresh, _call("migrate"))),
    Row("live migration start (pre)", _call("live_migrate"), _fresh),
    Row("live migration start (fails: rollback)", _call("live_migrate"), _fresh, fails="live_migrate"),
    Row("live migration complete (post)", _call("live_migration_complete"), _then(_fresh, _call("live_migrate"))),
    Row("live migration force complete", _call("live_migration_force_complete"),
        _then(_fresh, _call("live_migrate"))),
    Row("live migration abort (rollback)", _call("live_migration_abort"), _then(_fresh, _call("live_migrate"))),
    Row("evacuate", _call("evacuate"), _then(_fresh, _host_down)),
    Row("evacuate (fails)", _call("evacuate"), _then(_fresh, _host_down), fails="evacuate"),
    Row("rebuild", _call("rebuild"), _fresh),
    Row("rebuild with a new image", _call("rebuild", "a2459075-d96c-40d5-893e-577ff92e721c"), _fresh),
    Row("rebuild (fails)", _call("rebuild"), _fresh, fails="rebuild"),
    Row("volume attach", _call("attach_volume", "$vol"), _then(_fresh, _volume("vol"))),
    Row("volume attach (fails)", _call("attach_volume", "$vol"), _then(_fresh, _volume("vol")),
        fails="attach_volume"),
    Row("volume detach", _call("detach_volume", "$vol"),
        _then(_fresh, _volume("vol"), _call("attach_volume", "$vol"))),
    Row("volume swap", _call("swap_volume", "$vol", "$new"),
        _then(_fresh, _volume("vol"), _volume("new"), _call("attach_volume", "$vol"))),
    Row("volume swap (fails)", _call("swap_volume", "$vol", "$new"),
        _then(_fresh, _volume("vol"), _volume("new"), _call("attach_volume", "$vol")), fails="swap_volume"),
    Row("interface attach", _call("attach_interface"), _fresh),
    Row("interface attach (fails)", _call("attach_interface"), _fresh, fails="attach_interface"),
    Row("interface detach", _call("detach_interface", "$port"), _then(_fresh, _port)),
    Row("soft delete", _call("soft_delete"), _fresh),
    Row("restore", _call("restore"), _then(_fresh, _call("soft_delete"))),
    Row("force delete", _call("force_delete"), _then(_fresh, _call("soft_delete"))),
    Row("delete", _call("delete"), _fresh),
    Row("delete (never scheduled)", lambda svc, ctx: svc.delete(ctx["unscheduled"]),
        lambda svc, ctx: ctx.__setitem__("unscheduled", svc.boot("nowhere", ctx["huge"]).uuid)),
    Row("key pair create (generated)", lambda svc, ctx: svc.create_keypair("fake", "k1")),
    Row("key pair import", lambda svc, ctx: svc.create_keypair("fake", "k1", public_key=_PUBLIC_KEY)),
    Row("key pair delete", lambda svc, ctx: svc.delete_keypair("fake", "k1"),
        lambda svc, ctx: svc.create_keypair("fake", "k1", public_key=_PUBLIC_KEY)),
    Row("server group create", lambda svc, ctx: svc.create_server_group("g1", "anti-affinity", user_id="fake",
                                                                       project_id="p1")),
    Row("server group delete", lambda svc, ctx: svc.delete_server_group(ctx["group"]),
        lambda svc, ctx: ctx.__setitem__("group", svc.create_server_group(
            "g1", "anti-affinity", user_id="fake", project_id="p1").uuid)),
)


def record(
    notification_format: NotificationFormat | str = NotificationFormat.BOTH,
    check: Callable[[bytes], object] | None = None,
) -> list[tuple[str, list[str]]]:
    """(action, event types in order) for every row, each run on a fresh three-host cloud.

    ``check`` is called with the encoded body of every notification a row emits (e.g. ``decode``).
    """
    out: list[tuple[str, list[str]]] = []
    engine = make_engine("sqlite://")
    upgrade(engine)
    for row in ROWS:
        memory = MemoryDriver()
        clock = SimClock()
        notifier = Notifier([memory], notification_format=notification_format, clock=clock.tick,
                            message_ids=Ids(1))
        clear(engine)
        svc = start_service(engine, notifier, clock=clock, ids=Ids(2))
        try:
            ctx: dict[str, Any] = {
                "small": svc.create_flavor("m1.small", vcpus=1, memory_mb=2048, root_gb=20),
                "medium": svc.create_flavor("m1.medium", vcpus=2, memory_mb=4096, root_gb=40),
                "huge": svc.create_flavor("huge", vcpus=1024, memory_mb=10**7, root_gb=10**5),
            }
            for host in ("host-1", "host-2", "host-3"):
                svc.create_service(host, vcpus=16, memory_mb=65536, local_gb=1000)
            if row.setup is not None:
                row.setup(svc, ctx)
            if row.fails is not None:
                svc.failures.per_action[row.fails] = 1.0
            if row.fails_once is not None:
                svc.failures.fail_next[row.fails_once] = 1
            memory.clear()
            row.act(svc, ctx)
            out.append((row.action, memory.event_types))
            if check is not None:
                for sent in memory.sent:
                    check(sent.body)
        finally:
            svc.close(dispose=False)
    engine.dispose()
    return out


def markdown(versioned: list[tuple[str, list[str]]], unversioned: list[tuple[str, list[str]]]) -> str:
    """docs/actions.md: the table of each format."""
    lines = [
        "# Actions and the notifications they emit",
        "",
        "Generated by `novawatch compute actions` from the compute service itself, and checked against it by",
        "`tests/compute/test_compute_sequences.py`. Each row runs one action on a fresh three-host cloud with",
        "`notify_on_state_change = vm_and_task_state` (so every save of the instance sends `instance.update`)",
        "and lists the notifications in the order sent. With `notification_format = both` the two streams are",
        "interleaved, each legacy notification just before its versioned twin, as in Nova. Rows marked *fails*",
        "inject a hypervisor or backend failure into the action (`--failure-rate` in `novawatch simulate`).",
        "",
        "`compute_node.*` notifications are novawatch's own (Nova specified them but never shipped them); they",
        "follow the resource tracker's claims. In the legacy format `scheduler.select_destinations.*` keep their",
        "name and the conductor's `compute_task.<task>.error` is `compute_task.<task>`, as Nova 34 sends them.",
    ]
    for title, table in (("Versioned notifications", versioned),
                         ("Legacy (unversioned) notifications", unversioned)):
        lines += ["", f"## {title}", "", "| action | notifications, in order |", "|---|---|"]
        for action, events in table:
            lines.append(f"| {action} | {' → '.join(f'`{e}`' for e in events) or '(none)'} |")
    return "\n".join(lines) + "\n"


def document() -> str:
    """The whole of docs/actions.md, recorded now."""
    return markdown(record(NotificationFormat.VERSIONED), record(NotificationFormat.UNVERSIONED))
