"""Lenient twins of payload classes: the same fields, with every enum (a ``Literal``) as any text.

Decoding is strict first: msgspec checks ``Literal`` enums for almost nothing and hands back Nova's values as
shared strings, which the data model keeps. Nova adds enum values in minor versions, though, so a payload
that fails only because an enum holds a value this reader does not know is decoded again with its lenient
twin, which keeps that value as text (``Annotated[str, EnumFormat(...)]``, found again by
:func:`novawatch.objects.enums.unknown_values`). A twin subclasses its payload class: same name, version,
schema and checks.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal

import msgspec

from novawatch.objects.base import NovaObject, Payload
from novawatch.objects.fields import EnumFormat, enum_names

_TWINS: dict[type, type] = {}
_NAMES: dict[Any, str] = {}


def lenient(cls: type[Payload]) -> type[Payload]:
    """The lenient twin of a payload class (the class itself when no enum is in it or in what it nests)."""
    twin = _TWINS.get(cls)
    if twin is not None:
        return twin
    _TWINS[cls] = cls  # while building: a payload nesting itself gets the strict class there
    hints = typing.get_type_hints(cls, include_extras=True)
    changed: list[tuple[str, Any, Any]] = []
    for field in msgspec.structs.fields(cls):
        tp = lenient_type(hints[field.name])
        if tp is not hints[field.name]:
            if field.default_factory is not msgspec.NODEFAULT:
                default = msgspec.field(name=field.encode_name, default_factory=field.default_factory)
            elif field.default is not msgspec.NODEFAULT:
                default = msgspec.field(name=field.encode_name, default=field.default)
            else:
                default = msgspec.field(name=field.encode_name)
            changed.append((field.name, tp, default))
    if changed:
        twin = typing.cast(
            type[Payload],
            msgspec.defstruct(cls.__name__, changed, bases=(cls,), kw_only=True, module=cls.__module__),
        )
        twin.__qualname__ = f"{cls.__qualname__} (lenient)"
    else:
        twin = cls
    _TWINS[cls] = twin
    return twin


def lenient_type(tp: Any) -> Any:
    """``tp`` with every ``Literal`` of text made any text; ``tp`` itself when it holds none."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        if not _NAMES:
            _NAMES.update(enum_names())
        args = typing.get_args(tp)
        return Annotated[str, EnumFormat(_NAMES.get(tp, "enum"), tuple(str(a) for a in args))]
    if origin is None:
        return tp
    if isinstance(origin, type) and issubclass(origin, NovaObject):
        (inner,) = typing.get_args(tp)
        twin = lenient(inner)
        return tp if twin is inner else NovaObject[twin]  # type: ignore[valid-type]
    args = typing.get_args(tp)
    if origin is Annotated:
        base = lenient_type(args[0])
        return tp if base is args[0] else Annotated[(base, *tp.__metadata__)]
    new = tuple(lenient_type(a) for a in args)
    if all(n is a for n, a in zip(new, args, strict=True)):
        return tp
    if origin in (typing.Union, types.UnionType):
        return typing.Union[new]  # noqa: UP007 -- built from a tuple
    return origin[new] if len(new) > 1 else origin[new[0]]
