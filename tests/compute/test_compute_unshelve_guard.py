"""An unshelve beside other workers checks the host guard (:mod:`novawatch.compute.host_guard`) before it
changes anything: a probe learns the host it needs, a run that does not hold it is refused untouched."""

from __future__ import annotations

import pytest
from computehelpers import Cloud, boot

from novawatch.compute.host_guard import GUARD, HostGuard, HostNotHeld


def _shelved(cloud: Cloud, *, offloaded: bool) -> str:
    svc = cloud.service
    uuid = boot(cloud, host="host-1").uuid
    svc.shelve(uuid)
    if offloaded:
        svc.shelve_offload(uuid)
    svc.commit()
    cloud.take()
    return uuid


@pytest.mark.parametrize(("offloaded", "target", "wanted"), [(True, "host-2", "host-2"), (False, None, "host-1")])
def test_a_probe_learns_the_unshelves_host_and_changes_nothing(cloud: Cloud, offloaded: bool,
                                                               target: str | None, wanted: str) -> None:
    uuid = _shelved(cloud, offloaded=offloaded)
    svc = cloud.service
    before = (svc.instances[uuid].vm_state, svc.instances[uuid].task_state, svc.instances[uuid].host)
    for guard in (HostGuard(probe=True), HostGuard(held=frozenset({"host-3"}))):
        token = GUARD.set(guard)
        try:
            with pytest.raises(HostNotHeld):
                svc.unshelve(uuid, host=target)
        finally:
            GUARD.reset(token)
        assert (guard.tripped, guard.wanted, guard.alone) == (True, wanted, False)
        assert cloud.take() == []
        assert (svc.instances[uuid].vm_state, svc.instances[uuid].task_state, svc.instances[uuid].host) == before

    token = GUARD.set(HostGuard(held=frozenset({wanted})))
    try:
        svc.unshelve(uuid, host=target)
    finally:
        GUARD.reset(token)
    assert (svc.instances[uuid].vm_state, svc.instances[uuid].host) == ("active", wanted)
    assert ("instance.unshelve.end" if offloaded else "instance.power_on.end") in cloud.events
