"""Instance search (``GET /v1/instances?q=``) without a pass over every instance's record: uuids kept sorted (a
uuid prefix is a bisection) and display names kept lower-cased (a substring test per name, nothing else), up to
date from the model's change events."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable

from novawatch.model.changes import INSTANCE, Update


class InstanceSearch:
    """Sorted uuids and lower-cased names; subscribe :meth:`update` (a reset rebuilds from ``records()``)."""

    def __init__(self, records: Callable[[], Iterable[tuple[str, str]]]) -> None:
        #: (uuid, display name) of every instance the store holds now.
        self.records = records
        self.rebuild()

    def rebuild(self) -> None:
        self.names = {uuid: name.lower() for uuid, name in self.records()}
        self.uuids = sorted(self.names)

    def update(self, update: Update) -> None:
        if update.reset:
            self.rebuild()
            return
        for change in update.changes:
            if change.kind != INSTANCE:
                continue
            key = change.key
            if change.new is None:
                if self.names.pop(key, None) is not None:
                    index = bisect_left(self.uuids, key)
                    if index < len(self.uuids) and self.uuids[index] == key:
                        del self.uuids[index]
                continue
            if key not in self.names:
                insort(self.uuids, key)
            self.names[key] = change.new.display_name.lower()

    def matching(self, text: str) -> set[str]:
        """The uuids starting with ``text`` or whose name contains it (case-insensitive)."""
        lowered = text.lower()
        uuids = self.uuids
        found = set()
        index = bisect_left(uuids, lowered)
        while index < len(uuids) and uuids[index].startswith(lowered):
            found.add(uuids[index])
            index += 1
        found.update(uuid for uuid, name in self.names.items() if lowered in name)
        return found
