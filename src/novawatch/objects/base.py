"""Versioned payloads and Nova's ``nova_object`` envelope.

A payload class is a msgspec ``Struct`` with a ``VERSION`` (``MAJOR.MINOR``), a ``SCHEMA`` that says
which source object attribute fills each field, and ``SINCE`` for the fields added after ``MAJOR.0``.
On the wire every payload, at every nesting level, travels inside :class:`NovaObject`.
"""

from __future__ import annotations

import datetime as _dt
import operator
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Generic, NamedTuple, Self, TypeVar

import msgspec

from novawatch.objects.fields import EnumFormat, TextFormat, nova_time

_UTC = _dt.UTC
_UNSET = msgspec.UNSET

P = TypeVar("P", bound="Payload")


class Since(NamedTuple):
    """When a field joined its payload (the minor version) and the value older versions imply."""

    minor: int
    default: Any = None
    factory: Callable[[], Any] | None = None

    def value(self) -> Any:
        return self.factory() if self.factory is not None else self.default


class Payload(msgspec.Struct, kw_only=True):
    """Base of every versioned payload.

    Fields listed in ``SINCE`` must be declared ``T | msgspec.UnsetType = msgspec.UNSET`` so a
    reader can tell an absent field from one sent as null.
    """

    VERSION: ClassVar[str] = "1.0"
    NAMESPACE: ClassVar[str] = "nova"
    SCHEMA: ClassVar[Mapping[str, tuple[str, str]]] = {}
    SINCE: ClassVar[Mapping[str, Since]] = {}

    @classmethod
    def populate(cls, sources: Mapping[str, object], /, **values: Any) -> Self:
        """Build the payload from source objects through ``SCHEMA``; ``values`` fill the other fields."""
        meta = _INFO.get(cls) or info(cls)
        # One attrgetter per source object fetches all of its attributes in a single C call.
        for source, fields, get in meta.by_source:
            got = get(sources[source])
            if len(fields) == 1:
                values[fields[0]] = got
            else:
                values.update(zip(fields, got, strict=True))
        for field in meta.datetime_fields:
            value = values.get(field)
            # nova_time would return these unchanged; skip the call for the usual case.
            if value is not None and (value.microsecond or value.tzinfo is not _UTC):
                values[field] = nova_time(value)
        return cls(**values)

    def wrap(self) -> NovaObject[Self]:
        """This payload inside its ``nova_object`` envelope, at the class's own version."""
        meta = info(type(self))
        return NovaObject(name=meta.name, namespace=meta.namespace, version=meta.version, data=self)


class NovaObject(msgspec.Struct, Generic[P], kw_only=True):
    """Nova's envelope: ``nova_object.name``, ``.namespace``, ``.version`` and ``.data``.

    Decoding checks the name and the major version, enforces the fields the sender's minor
    requires, fills in defaults for newer ones, and leaves the object at the reader's version.
    Decoding and construction both check the payload's UUID and MAC address fields (``TextFormat``), and
    note enum values this reader does not know (``EnumFormat``) without rejecting them.
    """

    # In Nova's wire order (its keys sorted), the order msgspec decodes fastest.
    data: P = msgspec.field(name="nova_object.data")
    name: str = msgspec.field(name="nova_object.name")
    namespace: str = msgspec.field(name="nova_object.namespace")
    version: str = msgspec.field(name="nova_object.version")

    def __post_init__(self) -> None:
        # Decoding calls this once per nested object. The common case, a sender at our version that sent
        # every field, is settled by comparisons against what was computed once for the payload class;
        # everything else (another name, another minor, a missing field) goes to _settle.
        data = self.data
        try:
            name, version, late, checks = _CURRENT[type(data)]
        except KeyError:
            name, version, late, checks = _current_check(type(data))
        if self.name != name or self.version != version or (late is not None and _UNSET in late(data)):
            self._settle(data)
        for fmt, fields, values in checks:
            if not fmt.known.issuperset(values(data)):
                fmt.check(fields, values(data))

    def _settle(self, data: P) -> None:
        """Check the name and the major, enforce the sender's minor and fill in newer fields' defaults."""
        meta = _INFO.get(type(data)) or info(type(data))
        if self.name != meta.name:
            raise ValueError(f"expected a {meta.name}, got a {self.name}")
        if self.version == meta.version:
            for field, _since in meta.late:
                if getattr(data, field) is msgspec.UNSET:
                    raise ValueError(f"{self.name} {self.version} requires field {field!r}, which is missing")
            return
        major, minor = parse_version(self.version, self.name)
        if major != meta.major:
            raise ValueError(f"unknown major version {self.version} of {self.name}: this reader knows {meta.major}.x")
        self.version = meta.version
        for field, since in meta.late:
            if getattr(data, field) is msgspec.UNSET:
                if minor >= since.minor:
                    raise ValueError(f"{self.name} {self.version} requires field {field!r}, which is missing")
                setattr(data, field, since.value())


#: Per payload class: its name, its version, a getter of its late fields' values (None when it has none) and
#: its text checks.
_CURRENT: dict[type, tuple[str, str, Callable[[Any], tuple[Any, ...]] | None, tuple[TextCheck, ...]]] = {}


def _current_check(
    cls: type[Payload],
) -> tuple[str, str, Callable[[Any], tuple[Any, ...]] | None, tuple[TextCheck, ...]]:
    """Compute (once per class) what :meth:`NovaObject.__post_init__` compares against."""
    meta = info(cls)
    entry = (meta.name, meta.version, meta.late_values, meta.text_checks)
    _CURRENT[cls] = entry
    return entry


def parse_version(version: str, name: str = "object") -> tuple[int, int]:
    """``"1.9"`` -> ``(1, 9)``; a clear ``ValueError`` for anything else."""
    major, sep, minor = version.partition(".")
    if not (sep and major.isdigit() and minor.isdigit()):
        raise ValueError(f"version {version!r} of {name} is not MAJOR.MINOR")
    return int(major), int(minor)


class TextCheck(NamedTuple):
    """The fields of one payload class that hold one :class:`TextFormat` (or enum), and a getter of their values."""

    format: TextFormat
    fields: tuple[str, ...]
    values: Callable[[Any], tuple[Any, ...]]


class PayloadInfo(NamedTuple):
    """What the codec needs to know about a payload class, computed once per class."""

    name: str
    namespace: str
    version: str
    major: int
    minor: int
    late: tuple[tuple[str, Since], ...]
    getters: tuple[tuple[str, str, Callable[[Any], Any]], ...]
    datetime_fields: tuple[str, ...]
    #: The values of the ``late`` fields as one tuple (a single C call), or None when there are none; a single
    #: field's value comes twice, so test membership only.
    late_values: Callable[[Any], tuple[Any, ...]] | None = None
    #: ``getters`` grouped by source: (source, fields, attrgetter of their attributes).
    by_source: tuple[tuple[str, tuple[str, ...], Callable[[Any], Any]], ...] = ()
    #: The fields whose text format is checked on every decode and construction, by format.
    text_checks: tuple[TextCheck, ...] = ()


_INFO: dict[type, PayloadInfo] = {}


def info(cls: type[Payload]) -> PayloadInfo:
    """The (cached) :class:`PayloadInfo` of a payload class; validates the class on first use."""
    try:
        return _INFO[cls]
    except KeyError:
        pass
    major, minor = parse_version(cls.VERSION, cls.__name__)
    fields = {f.name: f for f in msgspec.structs.fields(cls)}
    for field, since in cls.SINCE.items():
        if field not in fields:
            raise TypeError(f"{cls.__name__}.SINCE names {field!r}, which is not a field")
        if fields[field].default is not msgspec.UNSET:
            raise TypeError(f"{cls.__name__}.{field} is in SINCE, so its default must be msgspec.UNSET")
        if since.minor > minor:
            raise TypeError(f"{cls.__name__}.{field} added in {major}.{since.minor}, after {cls.VERSION}")
    for field in cls.SCHEMA:
        if field not in fields:
            raise TypeError(f"{cls.__name__}.SCHEMA names {field!r}, which is not a field")
    late = tuple(sorted(cls.SINCE.items()))
    meta = PayloadInfo(
        name=cls.__name__,
        namespace=cls.NAMESPACE,
        version=cls.VERSION,
        major=major,
        minor=minor,
        late=late,
        getters=tuple((f, src, operator.attrgetter(attr)) for f, (src, attr) in cls.SCHEMA.items()),
        datetime_fields=tuple(f.name for f in fields.values() if _is_datetime(f.type)),
        late_values=_values_of(tuple(field for field, _ in late)),
        by_source=_group_by_source(cls.SCHEMA),
        text_checks=_text_checks(cls, fields.values()),
    )
    _INFO[cls] = meta
    return meta


def _group_by_source(
    schema: Mapping[str, tuple[str, str]],
) -> tuple[tuple[str, tuple[str, ...], Callable[[Any], Any]], ...]:
    grouped: dict[str, list[tuple[str, str]]] = {}
    for field, (source, attribute) in schema.items():
        grouped.setdefault(source, []).append((field, attribute))
    return tuple(
        (source, tuple(f for f, _ in pairs), operator.attrgetter(*(a for _, a in pairs)))
        for source, pairs in grouped.items()
    )


def _text_checks(cls: type, fields: Iterable[msgspec.structs.FieldInfo]) -> tuple[TextCheck, ...]:
    by_format: dict[TextFormat, list[str]] = {}
    for field in fields:
        fmt = _text_format(field.type, cls, field.name, top=True)
        if fmt is not None:
            by_format.setdefault(fmt, []).append(field.name)
    checks = []
    for fmt, names in by_format.items():
        getter = _values_of(tuple(names))
        assert getter is not None
        # An enum's note names the payload too: a nested object's field is otherwise ambiguous.
        shown = tuple(f"{cls.__name__}.{n}" for n in names) if isinstance(fmt, EnumFormat) else tuple(names)
        checks.append(TextCheck(fmt, shown, getter))
    return tuple(checks)


def _text_format(tp: Any, cls: type, name: str, *, top: bool) -> TextFormat | None:
    """The :class:`TextFormat` a field type holds (directly or as an option of a union), or None."""
    if typing.get_origin(tp) is typing.Annotated:
        found = next((x for x in typing.get_args(tp)[1:] if isinstance(x, TextFormat)), None)
        if found is not None and not top:
            # Checked values must be the field's own: one inside a list or a dict would go unchecked.
            raise TypeError(f"{cls.__name__}.{name}: {found.name} inside a container would go unchecked")
        return found
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        formats = {_text_format(arg, cls, name, top=top) for arg in typing.get_args(tp)} - {None}
        if len(formats) > 1:
            raise TypeError(f"{cls.__name__}.{name}: a union of several text formats is not supported")
        return formats.pop() if formats else None
    for arg in typing.get_args(tp):
        _text_format(arg, cls, name, top=False)
    return None


def _values_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]] | None:
    if not names:
        return None
    # A C-level attrgetter, not a Python function: it runs for every nested object decoded. Given one
    # name it returns the value itself, so a single name is asked for twice to get a tuple.
    getter: Callable[[Any], tuple[Any, ...]] = operator.attrgetter(*(names * 2 if len(names) == 1 else names))
    return getter


def _is_datetime(tp: Any) -> bool:
    if tp is _dt.datetime:
        return True
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return any(_is_datetime(arg) for arg in typing.get_args(tp))
    return False
