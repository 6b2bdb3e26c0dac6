"""Secrets out of sight: one function, :func:`mask`, hides passwords and tokens wherever text is shown.

It is what the command line prints, what health and errors carry, what ``config show`` writes and what
the log filter (:mod:`novawatch.logs`) applies to every record. URLs are parsed with :mod:`urllib.parse`
(as oslo.messaging parses a ``transport_url``: the network location split at ``,`` into hosts, each host's
credentials up to its last ``@``), so ``p@ss`` is masked whole and every host of a multi-host URL is kept.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MASK = "***"

#: A URL inside free text: a scheme, ``://``, and everything up to white space.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s]+")
#: Credentials without a scheme (``guest:secret@host``); the password runs to the token's last ``@``.
_BARE_CREDENTIALS = re.compile(r"(?P<user>[\w.%+\-]+):(?P<password>[^\s]+)@(?=[\w\[])")
#: Query options and header-like phrases that carry a secret value.
_SECRET_OPTION = re.compile(
    r"(?i)(?P<key>(?:^|(?<=[?&;\s]))(?:[\w.\-]*(?:password|passwd|secret|token)|pass)=)(?P<value>[^&;#\s]*)")
_BEARER = re.compile(r"(?i)(?P<key>\b(?:bearer|x-auth-token:)\s*)(?P<value>[^\s,;'\"]+)")


def mask(text: str) -> str:
    """``text`` with every password and token replaced by :data:`MASK`; anything else unchanged.

    ``text`` is a URL (``rabbit://u:p@h1,u:p@h2/``, ``postgresql+psycopg://u:p@h/db``) or free text
    holding URLs, ``user:password@host`` or ``Bearer <token>``. Cheap on text without ``@``, ``=`` or
    ``bearer``/``token``.
    """
    if "@" in text:
        text = _URL.sub(lambda m: _mask_url(m.group(0)), text)
        if "@" in _URL.sub("", text):
            text = _mask_bare(text)
    if "=" in text:
        text = _SECRET_OPTION.sub(lambda m: m["key"] + (MASK if m["value"] else ""), text)
    lowered = text.lower()
    if "bearer" in lowered or "x-auth-token" in lowered:
        text = _BEARER.sub(lambda m: m["key"] + MASK, text)
    return text


def _mask_url(url: str) -> str:
    """One URL with the password of each host masked (query options are left to :func:`mask`)."""
    start = url.find("://") + 3
    try:
        netloc = urlsplit(url).netloc
    except ValueError:  # e.g. an unclosed "[" of an IPv6 host: mask anything that looks like credentials
        return _mask_from_last_at(url, start)
    rest = url[start + len(netloc):]
    if netloc and ("@" in rest.partition("?")[0] or ("@" in rest and "@" not in netloc)):
        # The password held a "/", "?" or "#" that was not percent-encoded, so the parser ended the host
        # part inside it: the credentials run to the last "@".
        return _mask_from_last_at(url, start)
    hosts = [_mask_host(host) for host in netloc.split(",")]
    return url[:start] + ",".join(hosts) + rest


def _mask_host(host: str) -> str:
    credentials, at, address = host.rpartition("@")
    if not at:
        return host
    user, colon, _ = credentials.partition(":")
    return f"{user}:{MASK}@{address}" if colon else host


def _mask_from_last_at(url: str, start: int) -> str:
    at = url.rfind("@")
    if at < start:
        return url
    user, colon, _ = url[start:at].partition(":")
    if not colon:
        return url
    return f"{url[:start]}{user.split('/')[0]}:{MASK}{url[at:]}"


def _mask_bare(text: str) -> str:
    # Only outside URLs (already masked): split the text at URLs and mask the pieces between them.
    pieces: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        pieces.append(_BARE_CREDENTIALS.sub(_bare, text[last:match.start()]))
        pieces.append(match.group(0))
        last = match.end()
    pieces.append(_BARE_CREDENTIALS.sub(_bare, text[last:]))
    return "".join(pieces)


def _bare(match: re.Match[str]) -> str:
    return match.group(0) if match["password"] == MASK else f"{match['user']}:{MASK}@"
