"""An unshelve beside other workers checks the host guard (:mod:`novawatch.compute.host_guard`) before it
changes anything: a probe learns the host it needs, a run that does not hold it is refused untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from computehelpers import Cloud, make_cloud

from novawatch.compute.host_guard import GUARD, HostGuard, HostNotHeld


def _shelved(tmp_path: Path, *, offloaded: bool) -> tuple[Cloud, str]:
    cloud = make_cloud(f"sqlite:///{tmp_path / 'compute.db'}")
    svc = cloud.service
    uuid = svc.boot("vm", svc.flavor_by_name("m1.small"), host="host-1").uuid
    svc.shelve(uuid)
    if offloaded:
        svc.shelve_offload(uuid)
    svc.commit()
    cloud.take()
    return cloud, uuid


@pytest.mark.parametrize(("offloaded", "target", "wanted"), [(True, "host-2", "host-2"), (False, None, "host-1")])
def test_a_probe_learns_the_unshelves_host_and_changes_nothing(tmp_path: Path, offloaded: bool,
                                                               target: str | None, wanted: str) -> None:
    cloud, uuid = _shelved(tmp_path, offloaded=offloaded)
    svc = cloud.service
    try:
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
    finally:
        svc.close()
