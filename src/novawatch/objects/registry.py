"""The registry of payload classes by (namespace, name) and major version."""

from __future__ import annotations

from typing import TypeVar

from novawatch.objects.base import Payload, info

_P = TypeVar("_P", bound=type[Payload])

_REGISTRY: dict[tuple[str, str], dict[int, type[Payload]]] = {}


class UnknownPayload(LookupError):
    """No payload class is registered for that name, or none for that major version."""


def register(cls: _P) -> _P:
    """Class decorator: make a payload class findable by its name and major version."""
    meta = info(cls)
    majors = _REGISTRY.setdefault((meta.namespace, meta.name), {})
    if majors.get(meta.major, cls) is not cls:
        raise TypeError(f"{meta.namespace}.{meta.name} {meta.major}.x is registered twice")
    majors[meta.major] = cls
    return cls


def lookup(name: str, version: str | None = None, namespace: str = "nova") -> type[Payload]:
    """The class for ``name`` (and the major of ``version``), or :class:`UnknownPayload` saying why not."""
    majors = _REGISTRY.get((namespace, name))
    if not majors:
        raise UnknownPayload(f"unknown payload {namespace}.{name}")
    if version is None:
        return majors[max(majors)]
    major = version.partition(".")[0]
    if not major.isdigit() or int(major) not in majors:
        known = ", ".join(f"{m}.x" for m in sorted(majors))
        raise UnknownPayload(f"unknown major version {version} of {name}: this reader knows {known}")
    return majors[int(major)]


def registered() -> list[type[Payload]]:
    """Every registered payload class, sorted by name then major."""
    return [majors[m] for _, majors in sorted(_REGISTRY.items()) for m in sorted(majors)]
