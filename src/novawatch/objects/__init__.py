"""Typed, versioned payloads and Nova's object envelope."""

from novawatch.objects.base import NovaObject, Payload, PayloadInfo, Since, info, parse_version
from novawatch.objects.registry import UnknownPayload, lookup, register, registered

__all__ = [
    "NovaObject",
    "Payload",
    "PayloadInfo",
    "Since",
    "UnknownPayload",
    "info",
    "lookup",
    "parse_version",
    "register",
    "registered",
]
