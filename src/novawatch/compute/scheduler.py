"""The scheduler: pick an enabled, up host with room for a flavor under its allocation ratios.

As in Nova, scheduling has two stages: Placement's allocation candidates (nodes with room, whose
service is not disabled, on the requested host if any), then the scheduler's filters and weighers
(the service is up, the host is not ignored). Nova notifies ``scheduler.select_destinations.start``
only once Placement has found candidates, so the two stages are separate calls here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from novawatch.compute import db
from novawatch.compute.resource_tracker import ResourceTracker, Usage


class NoValidHost(Exception):
    """No host passed the filters: Nova's ``NoValidHost``."""

    code = 500

    def __init__(self, reason: str = "There are not enough hosts available.") -> None:
        super().__init__(f"No valid host was found. {reason}")


class Scheduler:
    """Placement's candidates, then filters (up, not ignored) and one weigher (most free RAM, then most free
    vCPUs, then name)."""

    def __init__(self, tracker: ResourceTracker) -> None:
        self.tracker = tracker

    def candidates(
        self,
        nodes: Mapping[str, db.ComputeNode],
        services: Mapping[str, db.Service],
        usage: Usage,
        *,
        only_host: str | None = None,
    ) -> list[tuple[str, db.ComputeNode]]:
        """Placement's allocation candidates: (host, node) with room for ``usage`` whose service is enabled."""
        free = self.tracker.free
        out = []
        for host, node in nodes.items():
            if only_host is not None and host != only_host:
                continue
            room = free[node.uuid]
            if room[0] < usage.vcpus or room[1] < usage.memory_mb or room[2] < usage.disk_gb:
                continue
            if services[host].disabled:
                continue
            out.append((host, node))
        return out

    def rank(self, candidates: Sequence[tuple[str, db.ComputeNode]], services: Mapping[str, db.Service], *,
             exclude: Sequence[str] = ()) -> list[db.ComputeNode]:
        """The candidates whose service is up and whose host is not excluded, best first."""
        free = self.tracker.free
        passed = [(host, node) for host, node in candidates
                  if not services[host].forced_down and host not in exclude]
        # Spread like Nova's default RAM weigher; ties go to the lower name so runs are deterministic.
        passed.sort(key=lambda hn: (-free[hn[1].uuid][1], -free[hn[1].uuid][0], hn[0]))
        return [node for _, node in passed]

    def pick(self, candidates: Sequence[tuple[str, db.ComputeNode]], services: Mapping[str, db.Service], *,
             exclude: Sequence[str] = ()) -> db.ComputeNode:
        """The best candidate whose service is up and whose host is not excluded, or :class:`NoValidHost`."""
        ranked = self.rank(candidates, services, exclude=exclude)
        if not ranked:
            raise NoValidHost()
        return ranked[0]

    def select(
        self,
        nodes: Mapping[str, db.ComputeNode],
        services: Mapping[str, db.Service],
        usage: Usage,
        *,
        exclude: Sequence[str] = (),
        only_host: str | None = None,
    ) -> db.ComputeNode:
        """The best node (by host name in ``nodes``) for ``usage``, or :class:`NoValidHost`: both stages."""
        return self.pick(self.candidates(nodes, services, usage, only_host=only_host), services, exclude=exclude)
