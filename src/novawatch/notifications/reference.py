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

from novawatch.notifications.catalog import SHARED_LEGACY, EventSpec, events
from novawatch.notifications.timestamp import FUTURE_TOLERANCE
from novawatch.objects import NovaObject, Payload, info, registered
from novawatch.objects.fields import EnumFormat

COMMAND = "python -m novawatch.notifications.reference > docs/notifications.md"


def render() -> str:
    """The whole reference page as Markdown."""
    return "\n".join(_page()) + "\n"


def _all_entries() -> list[EventSpec]:
    """Every catalog entry, the legacy half of shared event types included, by event type (versioned first)."""
    return sorted([*events(), *SHARED_LEGACY.values()], key=lambda e: (e.event_type, not e.versioned))


def _page() -> Iterator[str]:
    entries = _all_entries()
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
        f"{len(events())} event types: {len(versioned)} versioned (topic `versioned_notifications`, payload in a "
        f"`nova_object` envelope, publisher id `binary:host`) and {len(legacy)} legacy (topic `notifications`, "
        f"a plain dict, publisher id `service.host`); {len(SHARED_LEGACY)} of them Nova sends in both formats "
        "under the same event type (see [Decoding](#decoding))."
    )
    yield ""
    yield from _decoding()
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


def _decoding() -> Iterator[str]:
    """What the decoder accepts and rejects (``novawatch decode``, the data model and the bus agree)."""
    yield "## Decoding"
    yield ""
    yield ("`novawatch decode`, the data model and the bus subscribers decode with the same code "
           "(`novawatch.notifications.codec`), so they accept and reject the same notifications:")
    yield ""
    yield ("* **Envelope.** `event_type`, `publisher_id` and `payload` are required. `priority` may be absent or "
           "null (it is then `INFO`), and so may `message_id` and `timestamp`: captured notifications "
           "(Watcher's and Nova's test fixtures) often lack them. An oslo.messaging `oslo.message` envelope is "
           "unwrapped first.")
    yield ("* **Legacy or versioned.** An event type Nova sends in both formats (below: the event types listed "
           "twice) is legacy when it came on the topic `notifications`, versioned when it came on "
           "`versioned_notifications`, and, where the topic is not known (a file, stdin, another topic), "
           "legacy when its payload has no `nova_object.*` key. A payload whose shape contradicts its topic "
           "is rejected, naming the topic. Any other event type has one format, which its payload must have.")
    yield ("* **Versions.** Any minor version of a major this reader knows is accepted (unknown fields are "
           "ignored, fields newer than the sender's minor get their defaults); an unknown major is rejected "
           "with its reason.")
    yield ("* **Enums.** Nova adds enum values in minor versions, so a value this reader does not know is kept "
           "as text and the notification is accepted with a warning (`novawatch decode` prints "
           "`warning EVENT PAYLOAD VERSION: unknown InstanceState value ...`; the data model counts it and "
           "keeps the value, e.g. as an instance's state). A value of the wrong type is rejected.")
    yield ("* **Numbers.** Integers are bounded by the database column Nova keeps them in (Nova's "
           "`IntegerField` has no bounds of its own): `Integer` columns are 32-bit, `BigInteger` ones 64-bit, "
           "and sizes and counts (flavor sizes, node capacity and usage) are non-negative. Out of range, or "
           "`true`/`false`/a float where an integer belongs, is rejected naming the field. JSON has no NaN or "
           "Infinity, and a number too large for a double (`1e400`) is rejected.")
    yield ("* **Timestamps.** A `timestamp` must be a date-time (oslo's `YYYY-MM-DD HH:MM:SS.ffffff`, naive UTC, "
           "or ISO 8601 with or without an offset) that is a date in UTC: `2026-13-45 99:99:99.000000` and "
           "`9999-12-31T23:59:59-01:00` (year 10000 in UTC) are rejected. One more than "
           f"{FUTURE_TOLERANCE:.0f} seconds ahead of the reader's clock is accepted with a warning: the data "
           "model orders it by arrival, as if it had none (see docs/model.md).")
    yield ("* **Text.** Strings with lone surrogates (`\\ud800`), invalid UTF-8, truncated or trailing JSON, "
           "documents over 4 MiB and nesting too deep to decode are rejected.")


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
    used_by = sorted(e.event_type for e in _all_entries() if e.payload is cls)
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
            if isinstance(extra, EnumFormat):
                return "enum: " + ", ".join(f"`{v}`" for v in extra.values)
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
