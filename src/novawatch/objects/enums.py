"""Enum values a reader does not know, found in a decoded payload.

Nova adds enum values in minor versions, so decoding keeps any text in an enum field (see
:class:`~novawatch.objects.fields.EnumFormat`). This walk, off the decoding hot path, says which values
this reader does not know, for ``novawatch decode`` to warn about.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from novawatch.objects.base import NovaObject
from novawatch.objects.fields import EnumFormat, shorten

_ENUMS: dict[type, tuple[tuple[str, EnumFormat], ...]] = {}


def unknown_values(obj: object) -> list[str]:
    """One line per enum value this reader does not know, in ``obj`` and every object nested in it."""
    found: list[str] = []
    _walk(obj, found, 0)
    return found


def _walk(value: object, found: list[str], depth: int) -> None:
    if depth > 64:  # deeper than any payload Nova sends; decoding bounds it anyway
        return
    if isinstance(value, NovaObject):
        data = value.data
        for name, fmt in _enum_fields(type(data)):
            got = getattr(data, name)
            if got not in fmt.known:
                found.append(f"unknown {fmt.name} value {shorten(got)} in `{type(data).__name__}.{name}`, "
                             "kept as text")
        for name in data.__struct_fields__:
            _walk(getattr(data, name), found, depth + 1)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, NovaObject | list):
                _walk(item, found, depth + 1)


def _enum_fields(cls: type) -> tuple[tuple[str, EnumFormat], ...]:
    """The fields of a payload class declared with an :class:`EnumFormat`, with it (computed once)."""
    try:
        return _ENUMS[cls]
    except KeyError:
        pass
    hints = typing.get_type_hints(cls, include_extras=True)
    names: tuple[str, ...] = getattr(cls, "__struct_fields__", ())
    fields = tuple((name, fmt) for name in names if (fmt := _format(hints[name])) is not None)
    _ENUMS[cls] = fields
    return fields


def _format(tp: Any) -> EnumFormat | None:
    if typing.get_origin(tp) is typing.Annotated:
        return next((x for x in typing.get_args(tp)[1:] if isinstance(x, EnumFormat)), None)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return next((f for arg in typing.get_args(tp) if (f := _format(arg)) is not None), None)
    return None
