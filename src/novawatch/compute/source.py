"""The compute database as a :class:`novawatch.snapshot.Source`: what the data model bootstraps and audits from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from novawatch import snapshot
from novawatch.compute import db
from novawatch.compute.repository import make_engine
from novawatch.snapshot import InstanceRecord, NodeRecord


class ComputeSource:
    """Reads nodes and instances (committed state) from the compute database; implements ``Source``."""

    def __init__(self, engine: Engine | str | Path) -> None:
        self.engine = engine if isinstance(engine, Engine) else make_engine(engine)

    def list_nodes(self) -> Iterator[NodeRecord]:
        with Session(self.engine) as session:
            services = {s.id: s for s in session.scalars(select(db.Service))}
            nodes = list(session.scalars(select(db.ComputeNode).order_by(db.ComputeNode.uuid)))
        return iter([node_record(n, services.get(n.service_id or -1)) for n in nodes])

    def list_instances(self) -> Iterator[InstanceRecord]:
        with Session(self.engine) as session:
            flavors = {f.id: f for f in session.scalars(select(db.Flavor))}
            volumes: dict[str, list[str]] = {}
            for bdm in session.scalars(select(db.BlockDeviceMapping).where(db.BlockDeviceMapping.deleted.is_(False))):
                if bdm.volume_id is not None:
                    volumes.setdefault(bdm.instance_uuid, []).append(bdm.volume_id)
            rows = list(session.scalars(
                select(db.Instance).where(db.Instance.deleted.is_(False)).order_by(db.Instance.uuid)
            ))
        return iter([instance_record(i, flavors[i.instance_type_id], volumes.get(i.uuid, [])) for i in rows])

    def get_node(self, uuid: str) -> NodeRecord | None:
        with Session(self.engine) as session:
            node = session.scalar(select(db.ComputeNode).where(db.ComputeNode.uuid == uuid))
            if node is None:
                return None
            service = session.get(db.Service, node.service_id) if node.service_id is not None else None
            return node_record(node, service)

    def get_instance(self, uuid: str) -> InstanceRecord | None:
        with Session(self.engine) as session:
            inst = session.scalar(select(db.Instance).where(db.Instance.uuid == uuid, db.Instance.deleted.is_(False)))
            if inst is None:
                return None
            flavor = session.get(db.Flavor, inst.instance_type_id)
            assert flavor is not None
            vols = list(session.scalars(select(db.BlockDeviceMapping.volume_id).where(
                db.BlockDeviceMapping.instance_uuid == uuid, db.BlockDeviceMapping.deleted.is_(False),
                db.BlockDeviceMapping.volume_id.is_not(None),
            )))
            return instance_record(inst, flavor, [v for v in vols if v is not None])

    def snapshot(self) -> snapshot.Snapshot:
        """The truth: every node and live instance, as a ``novawatch.model/1`` snapshot."""
        return snapshot.build(self.list_nodes(), self.list_instances())


def node_record(node: db.ComputeNode, service: db.Service | None) -> NodeRecord:
    """A node row (and its service) as the model holds it."""
    down = service is None or service.forced_down
    return NodeRecord(
        uuid=node.uuid, host=node.host or "", hypervisor_hostname=node.hypervisor_hostname or "",
        state="down" if down else "up",
        status="disabled" if service is not None and service.disabled else "enabled",
        disabled_reason=service.disabled_reason if service is not None else None,
        vcpus=node.vcpus, memory_mb=node.memory_mb, local_gb=node.local_gb,
    )


def instance_record(inst: db.Instance, flavor: db.Flavor, volumes: list[str]) -> InstanceRecord:
    """An instance row as the model holds it (local disk counted as Watcher does)."""
    return InstanceRecord(
        uuid=inst.uuid, host=inst.host, node=inst.node, project_id=inst.project_id or "",
        display_name=inst.display_name or "", state=inst.vm_state or "", power_state=inst.power_state or "",
        task_state=inst.task_state, locked=inst.locked, vcpus=flavor.vcpus, memory_mb=flavor.memory_mb,
        disk_gb=snapshot.instance_disk_gb(flavor.root_gb, flavor.ephemeral_gb, flavor.swap, inst.booted_from_volume),
        volumes=sorted(volumes),
    )
