"""The one error a source raises: what went wrong and what to check, never a secret."""

from __future__ import annotations

import re

#: ``scheme://user:password@`` in any text (a URL someone wrote with credentials in it).
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@")


def scrub(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@`` URL in it masked."""
    return _USERINFO.sub(r"\g<scheme>\g<user>:********@", text)


class SourceError(RuntimeError):
    """A source that cannot answer. ``kind`` says which part failed; the message what to check.

    Kinds: ``config`` (clouds.yaml, options), ``auth`` (401: credentials), ``forbidden`` (403, or an
    answer narrowed by policy: the role), ``catalog`` (no compute endpoint), ``unreachable`` (network,
    TLS, timeouts), ``endpoint`` (an answer that is not Nova's), ``version`` (microversions).
    """

    def __init__(self, message: str, kind: str = "endpoint") -> None:
        super().__init__(scrub(message))
        self.kind = kind
