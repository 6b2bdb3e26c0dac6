"""Projections of payload classes: the same payload with only the fields a reader uses.

A consumer that reads a few fields of a large payload need not build (or check) the rest: decoding into a
projection skips every other field of the JSON without making an object of it. What a projection keeps is
exactly what its payload declares for those fields (type, range, text format, default, wire name), so their
bad values are rejected with the same reasons; nested payloads (``NovaObject[...]``) are projected too, and
a projection of a versioned payload keeps its name, version and the ``SINCE`` of its kept fields, so the
envelope's name, major version and required fields are checked as for the payload itself.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

import msgspec

from novawatch.objects.base import NovaObject, Payload


class Projection:
    """Which fields to keep, by payload class (a class keeps the fields named for it and for its bases);
    a class named nowhere in its hierarchy is kept whole."""

    def __init__(self, keep: Mapping[type, Iterable[str]]) -> None:
        self.keep = {cls: frozenset(names) for cls, names in keep.items()}
        self._made: dict[type, type] = {}

    def fields_of(self, cls: type) -> frozenset[str] | None:
        """The fields kept of ``cls``, or None when it is kept whole."""
        found: frozenset[str] | None = None
        for base in cls.__mro__:
            names = self.keep.get(base)
            if names is not None:
                found = names if found is None else found | names
        return found

    def of(self, cls: type[msgspec.Struct]) -> type[msgspec.Struct]:
        """The projection of ``cls`` (``cls`` itself when it is kept whole); made once per class."""
        made = self._made.get(cls)
        if made is not None:
            return made
        wanted = self.fields_of(cls)
        if wanted is None:
            self._made[cls] = cls
            return cls
        declared = msgspec.structs.fields(cls)
        unknown = wanted - {f.name for f in declared}
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))} to keep")
        fields: list[tuple[str, Any, Any]] = []
        for field in declared:  # in the payload's own order, the one msgspec decodes fastest
            if field.name in wanted:
                fields.append((field.name, self._type(field.type), _default(field)))
        if issubclass(cls, Payload):
            namespace = {"VERSION": cls.VERSION, "NAMESPACE": cls.NAMESPACE, "SCHEMA": {},
                         "SINCE": {k: v for k, v in cls.SINCE.items() if k in wanted}}
            made = msgspec.defstruct(cls.__name__, fields, bases=(Payload,), kw_only=True, module=cls.__module__,
                                     namespace=namespace, gc=False)
        else:
            made = msgspec.defstruct(cls.__name__, fields, kw_only=True, module=cls.__module__, gc=False)
        made.__qualname__ = f"{cls.__qualname__} (projection)"
        self._made[cls] = made
        return made

    def _type(self, tp: Any) -> Any:
        """``tp`` with every payload it nests (``NovaObject[X]``) projected."""
        origin = typing.get_origin(tp)
        if origin is None:
            return tp
        args = typing.get_args(tp)
        if isinstance(origin, type) and issubclass(origin, NovaObject):
            (inner,) = args
            made = self.of(inner)
            return tp if made is inner else NovaObject[made]  # type: ignore[valid-type]
        if origin is Annotated:
            base = self._type(args[0])
            return tp if base is args[0] else Annotated[(base, *tp.__metadata__)]
        if origin is typing.Literal:
            return tp
        new = tuple(self._type(a) for a in args)
        if all(n is a for n, a in zip(new, args, strict=True)):
            return tp
        if origin in (typing.Union, types.UnionType):
            return typing.Union[new]  # noqa: UP007 -- built from a tuple
        return origin[new] if len(new) > 1 else origin[new[0]]


def _default(field: msgspec.structs.FieldInfo) -> Any:
    if field.default_factory is not msgspec.NODEFAULT:
        return msgspec.field(name=field.encode_name, default_factory=field.default_factory)
    if field.default is not msgspec.NODEFAULT:
        return msgspec.field(name=field.encode_name, default=field.default)
    return msgspec.field(name=field.encode_name)
