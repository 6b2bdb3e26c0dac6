"""Change events: what the model changed, reported by the store itself, as client-go's informer does.

While someone listens (:meth:`Changes.subscribe`), the store records each entity just before it changes:
its record as it was (``old``). When a step of the model is over (one notification applied, one audit
repaired, one lookup adopted), :meth:`Changes.commit` compares each recorded entity with what it is now
and tells every listener one :class:`Update`: the entities added (``old`` None), updated, or deleted
(``new`` None), in the snapshot contract's records, and the notification that made them, if one did.
Nobody listening, nothing is recorded: the hot path pays one ``is None`` test per store change.

An entity that was touched but ends as it was (a stale notification, a usage that moved back) yields no
change. A listener sees every change exactly once and in order, so a mirror kept from updates alone
equals the store after each one (the tests check exactly that); ``reset`` says the store was loaded
anew (bootstrap): rebuild from it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from novawatch.logs import Throttle
from novawatch.model.outcome import Outcome
from novawatch.snapshot import InstanceRecord, NodeRecord

if TYPE_CHECKING:
    from novawatch.model.store import Instance, Node, Store

log = logging.getLogger("novawatch.model.changes")
_throttle = Throttle()

#: ``Change.kind`` of a compute node and of an instance.
NODE = "node"
INSTANCE = "instance"

#: ``Update.cause``: what made the changes.
NOTIFICATION = "notification"
BOOTSTRAP = "bootstrap"
AUDIT = "audit"
LOOKUP = "lookup"
REFRESH = "refresh"

Record = NodeRecord | InstanceRecord


class Change(NamedTuple):
    """One entity changed: ``old`` is None when it was added, ``new`` None when it was deleted."""

    kind: str  # NODE | INSTANCE
    key: str  # its uuid
    old: Any  # NodeRecord | InstanceRecord | None
    new: Any  # NodeRecord | InstanceRecord | None

    @property
    def op(self) -> str:
        """``add``, ``update`` or ``delete``."""
        return "add" if self.old is None else "delete" if self.new is None else "update"


class Consumed(NamedTuple):
    """A notification the model consumed, as the feed, the metrics and a checkpoint need it.

    The head fields are as the notification carried them (None when absent or when it could not be read);
    ``payload`` is what the model decoded (None unless it was decoded), ``reason`` why it was rejected or
    what it was noted for (a timestamp ahead of the clock, a reused message id), else None.
    """

    outcome: Outcome
    event_type: str | None
    message_id: str | None
    publisher_id: str | None
    timestamp: str | None
    payload: Any
    reason: str | None


class Update(NamedTuple):
    """What one step of the model did: the entities it changed (instances first, then nodes, each in the
    order they were first touched) and, when a notification was the step, that notification."""

    cause: str
    changes: tuple[Change, ...]
    notification: Consumed | None = None
    #: The store was loaded anew (bootstrap): ``changes`` is empty, rebuild whatever mirrors it.
    reset: bool = False


Listener = Callable[[Update], None]


class Recorder:
    """Collects the entities the store is about to change, each with its record from before."""

    __slots__ = ("_instances", "_nodes", "store")

    def __init__(self, store: Store) -> None:
        self.store = store
        self._instances: dict[str, InstanceRecord | None] = {}
        self._nodes: dict[str, NodeRecord | None] = {}

    def instance(self, inst: Instance) -> None:
        """``inst`` is about to change (or be added, or removed)."""
        uuid = inst.uuid
        if uuid not in self._instances:
            # What the store holds under that uuid now (a new object replacing it is not "before").
            current = self.store.instances.get(uuid)
            self._instances[uuid] = None if current is None else self.store.instance_record(current)

    def node(self, node: Node) -> None:
        """``node`` (its fields or the usage of its host) is about to change, or be added, or removed."""
        uuid = node.uuid
        if uuid not in self._nodes:
            current = self.store.nodes.get(uuid)
            self._nodes[uuid] = None if current is None else self.store.node_record(current)

    def host(self, host: str) -> None:
        """The usage of ``host`` is about to change: so is the record of its node, if it has one."""
        node = self.store.nodes_by_host.get(host)
        if node is not None:
            self.node(node)

    def take(self) -> tuple[Change, ...]:
        """The changes since the last call: what each recorded entity was, and what it is now."""
        if not self._instances and not self._nodes:
            return ()
        store = self.store
        changes = []
        for uuid, old in self._instances.items():
            inst = store.instances.get(uuid)
            new = None if inst is None else store.instance_record(inst)
            if new != old:
                changes.append(Change(INSTANCE, uuid, old, new))
        for uuid, old_node in self._nodes.items():
            node = store.nodes.get(uuid)
            new_node = None if node is None else store.node_record(node)
            if new_node != old_node:
                changes.append(Change(NODE, uuid, old_node, new_node))
        self._instances.clear()
        self._nodes.clear()
        return tuple(changes)


class Changes:
    """The listeners of one store, and the recorder that runs while there are any."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._listeners: list[Listener] = []

    @property
    def active(self) -> bool:
        """Whether anyone listens (the store records changes only then)."""
        return bool(self._listeners)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every :class:`Update` from now on; returns the function that unsubscribes.

        Listeners run on the thread that changes the model, in the order they subscribed; one that raises is
        logged and does not keep the others (or the model) from going on.
        """
        self._listeners.append(listener)
        if self.store.recorder is None:
            self.store.recorder = Recorder(self.store)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)
            if not self._listeners:
                self.store.recorder = None

        return unsubscribe

    def commit(self, cause: str, notification: Consumed | None = None) -> Update | None:
        """Tell the listeners what changed since the last commit (and which notification did it); the
        update told, None when nobody listens or when nothing happened and no notification asks to be told."""
        recorder = self.store.recorder
        if recorder is None:
            return None
        changes = recorder.take()
        if not changes and notification is None:
            return None
        update = Update(cause, changes, notification)
        self._tell(update)
        return update

    @contextlib.contextmanager
    def reloading(self) -> Iterator[None]:
        """Load the store anew inside this block without recording each entity (a bootstrap lists them all);
        afterwards the listeners are told to rebuild from the store (an update with ``reset``)."""
        recorder = self.store.recorder
        self.store.recorder = None
        try:
            yield
        finally:
            if recorder is not None:
                recorder.take()  # what was recorded before the reload is moot
                self.store.recorder = recorder
                self._tell(Update(BOOTSTRAP, (), None, reset=True))

    def _tell(self, update: Update) -> None:
        for listener in list(self._listeners):
            try:
                listener(update)
            except Exception as exc:  # one listener's bug must not stop the model or the other listeners
                _throttle.log(log, logging.ERROR, (repr(listener), type(exc)), "change listener %r failed: %s: %s",
                              listener, type(exc).__name__, exc, exc_info=True)
