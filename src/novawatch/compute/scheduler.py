"""The scheduler: pick an enabled, up host with room for a flavor under its allocation ratios."""

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
    """Filters (enabled, up, fits) and one weigher (most free RAM, then most free vCPUs, then name)."""

    def __init__(self, tracker: ResourceTracker) -> None:
        self.tracker = tracker

    def select(
        self,
        nodes: Mapping[str, db.ComputeNode],
        services: Mapping[str, db.Service],
        usage: Usage,
        *,
        exclude: Sequence[str] = (),
        only_host: str | None = None,
    ) -> db.ComputeNode:
        """The best node (by host name in ``nodes``) for ``usage``, or :class:`NoValidHost`."""
        free = self.tracker.free
        best: db.ComputeNode | None = None
        best_key: tuple[float, float, str] | None = None
        for host, node in nodes.items():
            if only_host is not None and host != only_host:
                continue
            room = free[node.uuid]
            if room[0] < usage.vcpus or room[1] < usage.memory_mb or room[2] < usage.disk_gb:
                continue
            # Spread like Nova's default RAM weigher; ties go to the lower name so runs are deterministic.
            key = (-room[1], -room[0], host)
            if best_key is not None and key >= best_key:
                continue
            service = services[host]
            if service.disabled or service.forced_down or host in exclude:
                continue
            best, best_key = node, key
        if best is None:
            raise NoValidHost()
        return best
