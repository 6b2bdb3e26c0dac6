"""The one error a source raises (:class:`~novawatch.snapshot.SourceError`, beside the source interface), and
how its messages are kept free of secrets."""

from __future__ import annotations

from novawatch.redact import mask
from novawatch.snapshot import SourceError

__all__ = ["SourceError", "scrub"]


def scrub(text: str) -> str:
    """``text`` with any password or token in it masked (:func:`novawatch.redact.mask`)."""
    return mask(text)
