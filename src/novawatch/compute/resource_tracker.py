"""The resource tracker: each node's usage is the sum of what its instances and migrations claim.

It keeps the claims in memory, writes the derived usage to the node row, and sends
``compute_node.update`` only when one of ``NOTIFY_ON_CHANGE`` differs from what was last sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import NamedTuple

from sqlalchemy.orm.attributes import set_committed_value

from novawatch.compute import db
from novawatch.notifications.catalog.compute_node import NOTIFY_ON_CHANGE

#: The node row's columns that :meth:`ResourceTracker._derive` computes from the claims.
DERIVED = ("vcpus_used", "memory_mb_used", "local_gb_used", "running_vms", "current_workload", "free_ram_mb",
           "free_disk_gb", "disk_available_least")


class Usage(NamedTuple):
    """What one claim holds on a node."""

    vcpus: int
    memory_mb: int
    disk_gb: int
    #: True for an instance running (or parked) on the node; False for a migration's claim.
    instance: bool = True


class Capacity(NamedTuple):
    """A node's limits under its allocation ratios."""

    vcpus: float
    memory_mb: float
    disk_gb: float


def capacity(node: db.ComputeNode) -> Capacity:
    return Capacity(
        node.vcpus * node.cpu_allocation_ratio,
        node.memory_mb * node.ram_allocation_ratio,
        node.local_gb * node.disk_allocation_ratio,
    )


class ClaimError(Exception):
    """A claim that does not fit on the node."""


NotifyNode = Callable[[str, db.ComputeNode], None]


class ResourceTracker:
    """Claims per node (keyed by node uuid, then by claim key) and the node rows they derive."""

    def __init__(self, notify: NotifyNode) -> None:
        self._notify = notify
        self.claims: dict[str, dict[str, Usage]] = {}
        self.nodes: dict[str, db.ComputeNode] = {}
        self._sent: dict[str, tuple[object, ...]] = {}
        self._deferred: dict[str, db.ComputeNode] | None = None
        #: Per node uuid: (vCPUs, MB, GB) still free under the allocation ratios; kept as plain tuples
        #: because the scheduler reads it for every node on every placement.
        self.free: dict[str, tuple[float, float, float]] = {}

    # -- nodes -------------------------------------------------------------------------------

    def add_node(self, node: db.ComputeNode, *, created: bool) -> None:
        """Track a node; ``created`` sends ``compute_node.create`` (a restart only resumes tracking)."""
        self.nodes[node.uuid] = node
        self.claims.setdefault(node.uuid, {})
        if created:
            self._derive(node)
            self._notify("compute_node.create", node)
        # On a restart the stored row is what was last reported; claims rebuilt later are compared to it.
        self._sent[node.uuid] = self._watched(node)

    def remove_node(self, node: db.ComputeNode) -> None:
        self.forget_node(node)
        self._notify("compute_node.delete", node)

    def forget_node(self, node: db.ComputeNode) -> None:
        """Stop tracking a node without a notification (another worker removed it and reported that)."""
        self.free.pop(node.uuid, None)
        self.nodes.pop(node.uuid, None)
        self.claims.pop(node.uuid, None)
        self._sent.pop(node.uuid, None)

    # -- claims ------------------------------------------------------------------------------

    def fits(self, node: db.ComputeNode, usage: Usage) -> bool:
        """True when ``usage`` fits in what the node has free under its allocation ratios."""
        free = self.free.get(node.uuid)
        if free is None:
            self._derive(node)
            free = self.free[node.uuid]
        return usage.vcpus <= free[0] and usage.memory_mb <= free[1] and usage.disk_gb <= free[2]

    def claim(self, node: db.ComputeNode, key: str, usage: Usage, *, force: bool = False) -> None:
        """Hold ``usage`` on ``node`` under ``key`` (replacing a claim of the same key)."""
        held = self.claims[node.uuid]
        previous = held.pop(key, None)
        if previous is not None:
            self._derive(node)
        if not force and not self.fits(node, usage):
            if previous is not None:
                held[key] = previous
                self._derive(node)
            raise ClaimError(f"{key} does not fit on {node.hypervisor_hostname}")
        held[key] = usage
        self.update(node)

    def drop(self, node_uuid: str | None, key: str) -> None:
        """Release the claim ``key`` on a node (no-op when it holds none)."""
        if node_uuid is None:
            return
        held = self.claims.get(node_uuid)
        if held is not None and held.pop(key, None) is not None:
            self.update(self.nodes[node_uuid])

    def held(self, node_uuid: str, key: str) -> Usage | None:
        return self.claims.get(node_uuid, {}).get(key)

    # -- derivation and notification ----------------------------------------------------------

    def update(self, node: db.ComputeNode) -> None:
        """Recompute the node's usage and send ``compute_node.update`` if a watched field changed."""
        self._derive(node)
        if self._deferred is not None:
            self._deferred[node.uuid] = node
        else:
            self.report(node)

    def rederive(self, node: db.ComputeNode) -> None:
        """Recompute the node's usage in memory only: nothing is sent and the row is not written.

        For a worker catching up with the others (several workers on one database): its reads may see a
        node row newer than the instance rows it has (another worker committed in between), and only the
        holder of the host's lock may write the row. The next catch-up brings both to the same commit.
        """
        self._derive(node)
        for name in DERIVED:
            set_committed_value(node, name, getattr(node, name))

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Move several claims as one change: each touched node reports once, at the end."""
        if self._deferred is not None:
            yield
            return
        self._deferred = {}
        try:
            yield
        finally:
            touched, self._deferred = self._deferred, None
            for node in touched.values():
                if node.uuid in self.nodes:
                    self.report(node)

    def report(self, node: db.ComputeNode) -> None:
        """Send ``compute_node.update`` when a ``NOTIFY_ON_CHANGE`` field differs from the last one sent."""
        now = self._watched(node)
        if self._sent.get(node.uuid) != now:
            self._notify("compute_node.update", node)
            self._sent[node.uuid] = now

    def _derive(self, node: db.ComputeNode) -> None:
        vcpus = memory = disk = running = migrating = 0
        for usage in self.claims.get(node.uuid, {}).values():
            vcpus += usage.vcpus
            memory += usage.memory_mb
            disk += usage.disk_gb
            if usage.instance:
                running += 1
            else:
                migrating += 1
        node.vcpus_used = vcpus
        node.memory_mb_used = memory
        node.local_gb_used = disk
        node.running_vms = running
        # Nova counts instances with a task in progress; here that is the in-flight migrations.
        node.current_workload = migrating
        node.free_ram_mb = node.memory_mb - memory
        node.free_disk_gb = node.local_gb - disk
        node.disk_available_least = node.local_gb - disk
        cap = capacity(node)
        self.free[node.uuid] = (cap.vcpus - vcpus, cap.memory_mb - memory, cap.disk_gb - disk)

    @staticmethod
    def _watched(node: db.ComputeNode) -> tuple[object, ...]:
        return tuple(getattr(node, name) for name in NOTIFY_ON_CHANGE)
