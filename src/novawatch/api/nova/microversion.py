"""Compute API microversions: parsing the request headers and the supported range.

A request names its version with ``OpenStack-API-Version: compute 2.x`` (or the older
``X-OpenStack-Nova-API-Version: 2.x``); none means the minimum, 2.1, and ``latest`` means
:data:`MAX_VERSION`. Every response names the version it was served at in both headers.
"""

from __future__ import annotations

import re
from typing import NamedTuple

#: The oldest microversion served: the v2.1 base API.
MIN_VERSION = "2.1"
#: The newest microversion served. 2.88 removed the capacity fields (``vcpus``, ``memory_mb``,
#: ``local_gb`` and their ``*_used``) from ``os-hypervisors``; Watcher's collector falls back to
#: them when there is no Placement service, and novawatch has none, so the maximum stays below it.
MAX_VERSION = "2.87"

_VERSION_RE = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


class Version(NamedTuple):
    """A microversion as ``(major, minor)``: compare with ``>=`` against :func:`v`."""

    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


class VersionError(ValueError):
    """A requested version that is malformed (``status`` 400) or outside the range (``status`` 406)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def v(text: str) -> Version:
    """Parse ``"2.53"`` into a :class:`Version` (raises ``ValueError`` when it is not ``MAJOR.MINOR``)."""
    match = _VERSION_RE.match(text.strip())
    if match is None:
        raise ValueError(text)
    return Version(int(match.group(1)), int(match.group(2)))


MIN = v(MIN_VERSION)
MAX = v(MAX_VERSION)


def requested(headers: dict[str, str]) -> Version:
    """The version a request asks for, from its (lower-cased) headers; raises :class:`VersionError`."""
    text: str | None = None
    new_style = headers.get("openstack-api-version")
    if new_style:
        # The header may list several services ("compute 2.53, volume 3.0"): take ours.
        for part in new_style.split(","):
            service, _, value = part.strip().partition(" ")
            if service.lower() == "compute":
                text = value.strip()
                break
    if text is None:
        text = headers.get("x-openstack-nova-api-version") or None
    if text is None:
        return MIN
    if text.lower() == "latest":
        return MAX
    try:
        version = v(text)
    except ValueError:
        raise VersionError(f"API Version String {text} is of invalid format. Must be of format "
                           "MajorNum.MinorNum.", 400) from None
    if not MIN <= version <= MAX:
        raise VersionError(f"Version {text} is not supported by the API. Minimum is {MIN_VERSION} and "
                           f"maximum is {MAX_VERSION}.", 406)
    return version


def response_headers(version: Version) -> list[tuple[str, str]]:
    """The headers that tell the client which version served it."""
    return [
        ("OpenStack-API-Version", f"compute {version}"),
        ("X-OpenStack-Nova-API-Version", str(version)),
        ("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    ]
