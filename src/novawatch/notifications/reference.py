"""The notification reference page, generated from the catalog so that it cannot drift from the code.

``python -m novawatch.notifications.reference > docs/notifications.md``
"""

from __future__ import annotations

import datetime as _dt
import inspect
import sys
import types
import typing
from collections.abc import Iterator
from typing import Any

import msgspec

from novawatch.notifications.catalog import EventSpec, events
from novawatch.objects import NovaObject, Payload, info, registered

COMMAND = "python -m novawatch.notifications.reference > docs/notifications.md"


def render() -> str:
    """The whole reference page as Markdown."""
    return "\n".join(_page()) + "\n"


def _page() -> Iterator[str]:
    entries = events()
    yield "# Notification reference"
    yield ""
    yield (
        "Generated from the catalog (`src/novawatch/notifications/catalog/`); do not edit. "
        f"Regenerate with `{COMMAND}`."
    )
    yield ""
    versioned = [e for e in entries if e.versioned]
    legacy = [e for e in entries if not e.versioned]
    yield (
        f"{len(entries)} event types: {len(versioned)} versioned (topic `versioned_notifications`, payload in a "
        f"`nova_object` envelope, publisher id `binary:host`) and {len(legacy)} legacy (topic `notifications`, "
        "a plain dict, publisher id `service.host`)."
    )
    yield ""
    yield "## Event types"
    yield ""
    yield "| event type | payload | version | priority | source | format |"
    yield "|---|---|---|---|---|---|"
    for entry in entries:
        kind = "versioned" if entry.versioned else "legacy"
        yield (
            f"| `{entry.event_type}` | [{entry.payload.__name__}](#{entry.payload.__name__.lower()}) "
            f"| {_version(entry)} | {entry.priority} | {entry.source} | {kind} |"
        )
    yield ""
    yield "## Versioned payloads"
    yield ""
    yield (
        "A reader accepts any minor version of a major it knows. *since* is the minor version that added a field "
        "(older senders omit it and the reader fills in the default); *schema* is the source object and attribute "
        "that `Payload.populate` copies it from."
    )
    for cls in sorted(_versioned_classes(entries), key=lambda c: c.__name__):
        yield ""
        yield from _payload_section(cls, versioned=True)
    yield ""
    yield "## Legacy payloads"
    yield ""
    yield "Plain dicts with no version; keys the reader does not know are ignored."
    for struct in sorted({e.payload for e in legacy}, key=lambda c: c.__name__):
        yield ""
        yield from _payload_section(struct, versioned=False)


def _version(entry: EventSpec) -> str:
    return entry.payload.VERSION if issubclass(entry.payload, Payload) else "-"


def _versioned_classes(entries: list[EventSpec]) -> set[type[Payload]]:
    found: set[type[Payload]] = set(registered())
    for entry in entries:
        if issubclass(entry.payload, Payload):
            found.add(entry.payload)
    return found


def _payload_section(cls: type[msgspec.Struct], *, versioned: bool) -> Iterator[str]:
    name = cls.__name__
    major = ""
    if versioned and issubclass(cls, Payload):
        meta = info(cls)
        major = str(meta.major)
        yield f"### {name}"
        yield ""
        yield f"Version {meta.version} (namespace `{meta.namespace}`)."
        since, schema = cls.SINCE, cls.SCHEMA
    else:
        yield f"### {name}"
        yield ""
        since, schema = {}, {}
    doc = inspect.getdoc(cls)
    if doc:
        yield ""
        yield doc.split("\n\n")[0].replace("\n", " ").replace("``", "`")
    used_by = sorted(e.event_type for e in events() if e.payload is cls)
    if used_by:
        yield ""
        yield "Sent as: " + ", ".join(f"`{t}`" for t in used_by) + "."
    yield ""
    if versioned:
        yield "| field | type | nullable | since | schema |"
        yield "|---|---|---|---|---|"
    else:
        yield "| field | type | nullable | required |"
        yield "|---|---|---|---|"
    hints = typing.get_type_hints(cls, include_extras=True)
    for field in msgspec.structs.fields(cls):
        tp = hints[field.name]
        nullable = "yes" if _has(tp, type(None)) else "no"
        wire = field.encode_name
        if versioned:
            added = f"{major}.{since[field.name].minor}" if field.name in since else ""
            if not added and _has(tp, msgspec.UnsetType):
                added = "optional"
            source = ".".join(schema[field.name]) if field.name in schema else ""
            yield f"| `{wire}` | {describe(tp)} | {nullable} | {added} | {source} |"
        else:
            required = "yes" if field.required else "no"
            yield f"| `{wire}` | {describe(tp)} | {nullable} | {required} |"


def _has(tp: Any, member: type) -> bool:
    return any(arg is member for arg in _union_args(tp))


def _union_args(tp: Any) -> tuple[Any, ...]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


def describe(tp: Any) -> str:
    """A short human-readable name for a field type (``list of IpPayload``, ``UUID``, ``enum: a, b``)."""
    args = [a for a in _union_args(tp) if a is not type(None) and a is not msgspec.UnsetType]
    if len(args) > 1:
        return " or ".join(describe(a) for a in args)
    tp = args[0]
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *extras = typing.get_args(tp)
        for extra in extras:
            if isinstance(extra, msgspec.Meta) and extra.description:
                return extra.description
        return describe(base)
    if origin is typing.Literal:
        return "enum: " + ", ".join(f"`{v}`" for v in typing.get_args(tp))
    if origin is list:
        return f"list of {describe(typing.get_args(tp)[0])}"
    if origin is dict:
        key, value = typing.get_args(tp)
        return f"dict of {describe(key)} to {describe(value)}"
    if origin is not None and isinstance(origin, type) and issubclass(origin, NovaObject):
        inner = typing.get_args(tp)[0]
        return f"[{inner.__name__}](#{inner.__name__.lower()})"
    if tp is _dt.datetime:
        return "date-time"
    if tp is Any:
        return "any JSON"
    return getattr(tp, "__name__", str(tp))


def main() -> int:
    """Print the page to stdout."""
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
