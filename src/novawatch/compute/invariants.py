"""Checks of the resource tracker against the rows: no node over capacity, usage equal to the claims.

The expected usage is recomputed from instances and migrations, independently of the tracker's
own claim table, so a bookkeeping mistake in either shows up.
"""

from __future__ import annotations

from novawatch.compute.core import ComputeCore
from novawatch.compute.resource_tracker import capacity


def expected_usage(svc: ComputeCore) -> dict[str, tuple[int, int, int, int]]:
    """Per node uuid: (vcpus, memory_mb, disk_gb, running_vms) its instances and migrations claim."""
    totals: dict[str, list[int]] = {n.uuid: [0, 0, 0, 0] for n in svc.nodes.values()}

    def add(host: str | None, vcpus: int, memory: int, disk: int, vms: int) -> None:
        node = svc.nodes.get(host or "")
        if node is not None:
            t = totals[node.uuid]
            t[0] += vcpus
            t[1] += memory
            t[2] += disk
            t[3] += vms

    for inst in svc.instances.values():
        if inst.host is not None:
            u = svc.usage(inst, svc.flavor_of(inst))
            add(inst.host, u.vcpus, u.memory_mb, u.disk_gb, 1)
    for mig in svc.migrations.values():
        moving = svc.instances.get(mig.instance_uuid)
        if moving is None:
            continue
        if mig.migration_type in ("resize", "migration") and mig.status == "finished" \
                and mig.old_instance_type_id is not None:
            u = svc.usage(moving, svc.flavors[mig.old_instance_type_id])
            add(mig.source_compute, u.vcpus, u.memory_mb, u.disk_gb, 0)
        elif mig.migration_type == "live-migration" and mig.status == "running":
            u = svc.usage(moving, svc.flavor_of(moving))
            add(mig.dest_compute, u.vcpus, u.memory_mb, u.disk_gb, 0)
    return {k: (v[0], v[1], v[2], v[3]) for k, v in totals.items()}


def violations(svc: ComputeCore) -> list[str]:
    """Every broken invariant, as a sentence; empty when the books balance."""
    problems: list[str] = []
    expected = expected_usage(svc)
    for node in svc.nodes.values():
        cap = capacity(node)
        if node.vcpus_used > cap.vcpus or node.memory_mb_used > cap.memory_mb or node.local_gb_used > cap.disk_gb:
            problems.append(
                f"{node.host} is over capacity: {node.vcpus_used}/{cap.vcpus:g} vCPUs, "
                f"{node.memory_mb_used}/{cap.memory_mb:g} MB, {node.local_gb_used}/{cap.disk_gb:g} GB"
            )
        got = (node.vcpus_used, node.memory_mb_used, node.local_gb_used, node.running_vms or 0)
        if got != expected[node.uuid]:
            claimed = expected[node.uuid]
            problems.append(f"{node.host} reports usage {got}, its instances and migrations claim {claimed}")
    return problems
