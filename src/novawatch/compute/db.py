"""The compute service's database schema: SQLAlchemy 2 typed ORM models.

Attribute names follow Nova's objects (``vm_state``, ``image_ref``, ``hostname``...) so that the
notification catalog's ``SCHEMA`` maps can read them directly. Primary keys are assigned by the
repository, not by the database, so that SQLite and PostgreSQL produce the same ids for the same run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """Declarative base of every compute table."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=False)}


class Service(Base):
    """A nova-compute service on one host."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    binary: Mapped[str] = mapped_column(String(255), default="nova-compute")
    topic: Mapped[str | None] = mapped_column(String(255), default="compute")
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    availability_zone: Mapped[str | None] = mapped_column(String(255), default="nova")
    last_seen_up: Mapped[datetime | None] = mapped_column(default=None)
    forced_down: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=74)
    created_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)


class ComputeNode(Base):
    """A hypervisor node: every ``ComputeNodePayload`` field plus the allocation ratios."""

    __tablename__ = "compute_nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    service_id: Mapped[int | None] = mapped_column(Integer, default=None)
    host: Mapped[str | None] = mapped_column(String(255), index=True)
    hypervisor_hostname: Mapped[str | None] = mapped_column(String(255))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    local_gb: Mapped[int] = mapped_column(Integer)
    vcpus_used: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb_used: Mapped[int] = mapped_column(Integer, default=0)
    local_gb_used: Mapped[int] = mapped_column(Integer, default=0)
    hypervisor_type: Mapped[str] = mapped_column(String(255), default="fake")
    hypervisor_version: Mapped[int] = mapped_column(Integer, default=1000)
    free_ram_mb: Mapped[int | None] = mapped_column(Integer, default=None)
    free_disk_gb: Mapped[int | None] = mapped_column(Integer, default=None)
    current_workload: Mapped[int | None] = mapped_column(Integer, default=0)
    running_vms: Mapped[int | None] = mapped_column(Integer, default=0)
    disk_available_least: Mapped[int | None] = mapped_column(Integer, default=None)
    host_ip: Mapped[str | None] = mapped_column(String(64), default=None)
    cpu_allocation_ratio: Mapped[float] = mapped_column(Float, default=4.0)
    ram_allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    disk_allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)


class Flavor(Base):
    """A flavor (instance type) with its extra specs."""

    __tablename__ = "flavors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    flavorid: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    memory_mb: Mapped[int] = mapped_column(Integer)
    vcpus: Mapped[int] = mapped_column(Integer)
    root_gb: Mapped[int] = mapped_column(Integer)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0)
    swap: Mapped[int] = mapped_column(Integer, default=0)
    rxtx_factor: Mapped[float] = mapped_column(Float, default=1.0)
    vcpu_weight: Mapped[int] = mapped_column(Integer, default=0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    extra_specs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime | None] = mapped_column(default=None)


class Instance(Base):
    """An instance: every field ``InstancePayload`` carries (``metadata`` is ``metadata_`` here,
    because ``metadata`` is reserved by SQLAlchemy)."""

    __tablename__ = "instances"
    __table_args__ = (Index("ix_instances_host_deleted", "host", "deleted"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    reservation_id: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    display_description: Mapped[str | None] = mapped_column(String(255))
    hostname: Mapped[str | None] = mapped_column(String(255))
    host: Mapped[str | None] = mapped_column(String(255))
    node: Mapped[str | None] = mapped_column(String(255))
    launched_on: Mapped[str | None] = mapped_column(String(255), default=None)
    os_type: Mapped[str | None] = mapped_column(String(255), default=None)
    architecture: Mapped[str | None] = mapped_column(String(255), default=None)
    availability_zone: Mapped[str | None] = mapped_column(String(255), default=None)
    instance_type_id: Mapped[int] = mapped_column(Integer)
    old_flavor_id: Mapped[int | None] = mapped_column(Integer, default=None)
    new_flavor_id: Mapped[int | None] = mapped_column(Integer, default=None)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    root_gb: Mapped[int] = mapped_column(Integer)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0)
    image_ref: Mapped[str | None] = mapped_column(String(255))
    key_name: Mapped[str | None] = mapped_column(String(255), default=None)
    kernel_id: Mapped[str | None] = mapped_column(String(255), default="")
    ramdisk_id: Mapped[str | None] = mapped_column(String(255), default="")
    created_at: Mapped[datetime | None] = mapped_column(default=None)
    launched_at: Mapped[datetime | None] = mapped_column(default=None)
    terminated_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)
    vm_state: Mapped[str | None] = mapped_column(String(255))
    power_state: Mapped[str | None] = mapped_column(String(32))
    task_state: Mapped[str | None] = mapped_column(String(255), default=None)
    progress: Mapped[int | None] = mapped_column(Integer, default=0)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    system_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_by: Mapped[str | None] = mapped_column(String(32), default=None)
    locked_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    auto_disk_config: Mapped[bool] = mapped_column(Boolean, default=False)
    booted_from_volume: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    info_cache: Mapped[InstanceInfoCache] = relationship(lazy="selectin")


class Volume(Base):
    """A block storage volume (the fake Cinder's record)."""

    __tablename__ = "volumes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default="available")
    instance_uuid: Mapped[str | None] = mapped_column(String(36), default=None)
    created_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Given through the block storage API (``openstack volume create NAME``); volumes made otherwise have none.
    name: Mapped[str | None] = mapped_column(String(255), default=None)
    project_id: Mapped[str | None] = mapped_column(String(255), default=None)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)


class BlockDeviceMapping(Base):
    """A volume (or image) attached to an instance at a device name."""

    __tablename__ = "block_device_mappings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)
    volume_id: Mapped[str | None] = mapped_column(String(36))
    attachment_id: Mapped[str | None] = mapped_column(String(36), default=None)
    device_name: Mapped[str | None] = mapped_column(String(255))
    boot_index: Mapped[int | None] = mapped_column(Integer, default=None)
    source_type: Mapped[str] = mapped_column(String(32), default="volume")
    destination_type: Mapped[str] = mapped_column(String(32), default="volume")
    delete_on_termination: Mapped[bool] = mapped_column(Boolean, default=False)
    volume_size: Mapped[int | None] = mapped_column(Integer, default=None)
    tag: Mapped[str | None] = mapped_column(String(255), default=None)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class InstanceInfoCache(Base):
    """The network info cache: the instance's VIFs (port id, MAC, device, label, fixed IPs)."""

    __tablename__ = "instance_info_caches"

    instance_uuid: Mapped[str] = mapped_column(ForeignKey("instances.uuid"), primary_key=True)
    network_info: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)


class InstanceFault(Base):
    """A failure recorded against an instance."""

    __tablename__ = "instance_faults"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)
    code: Mapped[int] = mapped_column(Integer, default=500)
    message: Mapped[str] = mapped_column(String(255))
    details: Mapped[str | None] = mapped_column(Text, default=None)
    host: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime | None] = mapped_column(default=None)


class InstanceAction(Base):
    """One user action on an instance (the ``os-instance-actions`` record)."""

    __tablename__ = "instance_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(255), default=None)
    user_id: Mapped[str | None] = mapped_column(String(255), default=None)
    project_id: Mapped[str | None] = mapped_column(String(255), default=None)
    start_time: Mapped[datetime | None] = mapped_column(default=None)
    finish_time: Mapped[datetime | None] = mapped_column(default=None)
    message: Mapped[str | None] = mapped_column(String(255), default=None)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)


class InstanceActionEvent(Base):
    """What one service did for an action (``compute_stop_instance``...), with its result."""

    __tablename__ = "instance_actions_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    action_id: Mapped[int] = mapped_column(Integer, index=True)
    event: Mapped[str] = mapped_column(String(255))
    host: Mapped[str | None] = mapped_column(String(255), default=None)
    start_time: Mapped[datetime | None] = mapped_column(default=None)
    finish_time: Mapped[datetime | None] = mapped_column(default=None)
    #: ``Success`` or ``Error``.
    result: Mapped[str | None] = mapped_column(String(255), default=None)
    traceback: Mapped[str | None] = mapped_column(Text, default=None)
    details: Mapped[str | None] = mapped_column(Text, default=None)


class Migration(Base):
    """A resize, cold/live migration or evacuation of an instance between hosts."""

    __tablename__ = "migrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)
    migration_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    source_compute: Mapped[str | None] = mapped_column(String(255))
    dest_compute: Mapped[str | None] = mapped_column(String(255))
    source_node: Mapped[str | None] = mapped_column(String(255))
    dest_node: Mapped[str | None] = mapped_column(String(255))
    old_instance_type_id: Mapped[int | None] = mapped_column(Integer, default=None)
    new_instance_type_id: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Who asked for the move (``os-migrations`` shows them from 2.80).
    user_id: Mapped[str | None] = mapped_column(String(255), default=None)
    project_id: Mapped[str | None] = mapped_column(String(255), default=None)


class KeyPair(Base):
    """A user's SSH key or X.509 certificate (the public half)."""

    __tablename__ = "key_pairs"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uniq_key_pairs0user_id0name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str | None] = mapped_column(String(255))
    public_key: Mapped[str | None] = mapped_column(Text)
    #: ``ssh`` or ``x509``.
    type: Mapped[str] = mapped_column(String(32), default="ssh")
    created_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)


class InstanceGroup(Base):
    """A server group: a placement policy over its member instances."""

    __tablename__ = "instance_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255), index=True)
    #: ``affinity``, ``anti-affinity``, ``soft-affinity`` or ``soft-anti-affinity``.
    policy: Mapped[str] = mapped_column(String(255))
    rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Member instance uuids, in the order they joined.
    members: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)


class OutboxMessage(Base):
    """A notification waiting for the bus: written in the transaction of the change it reports (the outbox).

    Deleted once the bus confirmed it; whatever a crash left is sent on the next start, with its
    ``message_id`` unchanged so that consumers drop the copy they may already have.
    """

    __tablename__ = "notification_outbox"

    #: Application-assigned, in emission order (64 bits: it only grows while the service runs).
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    message_id: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    priority: Mapped[str] = mapped_column(String(32))
    #: The encoded notification (the plain oslo.messaging dict as JSON), exactly as it is published.
    body: Mapped[bytes] = mapped_column(LargeBinary)


class ComputeState(Base):
    """One row (``id`` 1) that the workers of one database share (``compute serve --workers N``).

    ``generation`` counts committed actions: a worker whose in-memory state was loaded at an older
    generation reloads it. ``outbox_next`` is the next outbox id, so that ids follow commit order
    across workers.
    """

    __tablename__ = "compute_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger)
    outbox_next: Mapped[int] = mapped_column(BigInteger)
    #: The oldest generation whose changes ``compute_changes`` still holds (older ones were pruned).
    changes_from: Mapped[int] = mapped_column(BigInteger, server_default="0")


class ComputeChange(Base):
    """One row a committed action wrote (``compute serve --workers N``), under the generation it committed as.

    A worker behind the current generation reads the rows since its own and refreshes only those in
    memory (:mod:`novawatch.compute.catchup`); pruned after a while (``compute_state.changes_from``).
    """

    __tablename__ = "compute_changes"

    generation: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    #: The changed row's table and primary key (as text).
    table: Mapped[str] = mapped_column("tbl", String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: The instance whose derived state the row feeds (claims, volumes, migrations), if any.
    instance_uuid: Mapped[str | None] = mapped_column(String(36), default=None)
