"""The records of ``os-instance-actions``: one action per user request, and the event of its first service.

Nova records an action when its API accepts a request (``stop``, ``resize``, ``live-migration``...) and
an event each time a conductor or compute method runs for it (``compute_stop_instance``...), with the
result. novawatch's actions run to their end at once, so each action gets one event: the first one Nova
records (the conductor's for scheduled actions, else the compute host's), finished when recorded, and
turned to ``Error`` when the action records a fault.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from novawatch.compute import db
from novawatch.compute.repository import Repository

#: novawatch's action names that Nova spells otherwise (``nova/compute/instance_actions.py``).
NOVA_NAMES = {"power_off": "stop", "power_on": "start"}

#: Nova's first event of an action: (service prefix, method). Actions missing here (lock, unlock) have none.
FIRST_EVENT: dict[str, tuple[str, str]] = {
    "create": ("conductor", "schedule_and_build_instances"),
    "delete": ("compute", "terminate_instance"),
    "forceDelete": ("compute", "terminate_instance"),
    "restore": ("compute", "restore_instance"),
    "stop": ("compute", "stop_instance"),
    "start": ("compute", "start_instance"),
    "reboot": ("compute", "reboot_instance"),
    "pause": ("compute", "pause_instance"),
    "unpause": ("compute", "unpause_instance"),
    "suspend": ("compute", "suspend_instance"),
    "resume": ("compute", "resume_instance"),
    "rescue": ("compute", "rescue_instance"),
    "unrescue": ("compute", "unrescue_instance"),
    "trigger_crash_dump": ("compute", "trigger_crash_dump"),
    "createImage": ("compute", "snapshot_instance"),
    "resize": ("conductor", "migrate_server"),
    "migrate": ("conductor", "migrate_server"),
    "confirmResize": ("compute", "confirm_resize"),
    "revertResize": ("compute", "revert_resize"),
    "live-migration": ("conductor", "live_migrate_instance"),
    "live_migration_force_complete": ("compute", "live_migration_force_complete"),
    "live_migration_cancel": ("compute", "live_migration_abort"),
    "evacuate": ("conductor", "rebuild_server"),
    "rebuild": ("conductor", "rebuild_server"),
    "shelve": ("compute", "shelve_instance"),
    "shelveOffload": ("compute", "shelve_offload_instance"),
    "unshelve": ("conductor", "unshelve_instance"),
    "attach_volume": ("compute", "attach_volume"),
    "detach_volume": ("compute", "detach_volume"),
    "swap_volume": ("compute", "swap_volume"),
    "attach_interface": ("compute", "attach_interface"),
    "detach_interface": ("compute", "detach_interface"),
}

_REQUEST_IDS = uuid.UUID("8d6c5e0a-3b8f-4f51-9d3a-6e0b1c2d4f70")


@dataclass
class Recorded:
    """The rows of the action being performed."""

    action: db.InstanceAction
    event: db.InstanceActionEvent | None


def record(repo: Repository, inst: db.Instance, action: str, *, now: datetime, request_id: str | None,
           api_host: str) -> Recorded:
    """Add the action (Nova's name for it) and its first event, both a success until :func:`failed`."""
    name = NOVA_NAMES.get(action, action)
    action_id = repo.next_id(db.InstanceAction)
    # Outside an HTTP request (simulations) the id is derived, so that runs stay deterministic.
    request_id = request_id or f"req-{uuid.uuid5(_REQUEST_IDS, f'{inst.uuid}/{action_id}')}"
    row = db.InstanceAction(id=action_id, instance_uuid=inst.uuid, action=name, request_id=request_id,
                            user_id=inst.user_id, project_id=inst.project_id, start_time=now, updated_at=now)
    repo.add(row)
    first = FIRST_EVENT.get(name)
    if first is None or (first[0] == "compute" and inst.host is None):
        return Recorded(row, None)
    prefix, method = first
    event = db.InstanceActionEvent(id=repo.next_id(db.InstanceActionEvent), action_id=action_id,
                                   event=f"{prefix}_{method}", host=api_host if prefix == "conductor" else inst.host,
                                   start_time=now, finish_time=now, result="Success", traceback=None, details=None)
    repo.add(event)
    return Recorded(row, event)


def failed(recorded: Recorded, exc: BaseException, now: datetime) -> None:
    """The action failed with ``exc``: its event's result is ``Error`` and the action's message says so."""
    recorded.action.message = "Error"
    recorded.action.updated_at = now
    if recorded.event is not None:
        recorded.event.result = "Error"
        recorded.event.finish_time = now
        recorded.event.traceback = f"{type(exc).__name__}: {exc}"
        recorded.event.details = str(exc)[:255]
