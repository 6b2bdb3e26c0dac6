"""Bus URLs: which transport, where, and with which options; and how to show one without its password.

=================================================  =====================================================
``memory://[NAME]``                                in-process (tests, embedding); one bus per NAME
``embedded://DIR`` (``embedded:///abs/dir``)        the default: a SQLite queue in DIR, shared by processes
``rabbit://USER:PASS@HOST:PORT[,HOST2:PORT]/VHOST`` RabbitMQ, as oslo.messaging's ``transport_url``
``amqp://...``                                     the same (``amqp://guest:guest@host:5672//`` = vhost /)
``rabbit+ssl://``, ``amqps://``, ``?ssl=1``        RabbitMQ over TLS
=================================================  =====================================================

Query options (``?name=value&...``) tune the transport; see each transport's ``OPTIONS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from novawatch.bus.base import BusError
from novawatch.redact import mask

RABBIT_SCHEMES = {"rabbit": False, "amqp": False, "rabbit+ssl": True, "amqps": True, "rabbits": True}
SCHEMES = {"memory", "embedded", *RABBIT_SCHEMES}

#: The URL with every password (and password-like query option) masked: :func:`novawatch.redact.mask`.
mask_url = mask


@dataclass(frozen=True)
class Host:
    host: str
    port: int | None
    user: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class BusURL:
    """A parsed bus URL; ``str()`` and ``repr()`` never show the password."""

    scheme: str
    hosts: tuple[Host, ...] = ()
    path: str = ""
    options: Mapping[str, str] = field(default_factory=dict)
    raw: str = field(default="", repr=False, compare=False)

    @property
    def transport(self) -> str:
        return "rabbit" if self.scheme in RABBIT_SCHEMES else self.scheme

    @property
    def tls(self) -> bool:
        return RABBIT_SCHEMES.get(self.scheme, False) or truthy(self.options.get("ssl", "0"))

    def __str__(self) -> str:
        return mask(self.raw)

    def __repr__(self) -> str:
        return f"BusURL({mask(self.raw)!r})"


def truthy(text: str) -> bool:
    """Query-option booleans: ``1/true/yes/on`` (any case)."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise BusError(f"not a boolean: {text!r}")


def parse_url(url: str) -> BusURL:
    """Parse a bus URL (see the module's table); raises :class:`BusError` naming the problem."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise BusError(f"unsupported bus URL {mask(url)!r}: use memory://, embedded://DIR, rabbit:// or amqp://")
    rest, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    if scheme in ("memory", "embedded"):
        return BusURL(scheme, (), unquote(rest), options, url)
    # RabbitMQ URLs are read as oslo.messaging reads a transport_url: urllib's split, then the network
    # location split at "," into hosts, each host's credentials up to its last "@".
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise BusError(f"bus URL {mask(url)!r} is not a URL ({exc}); write it as rabbit://USER:PASS@HOST:PORT/"
                       ) from None
    if "@" in url[url.index("://") + 3 + len(parts.netloc):]:
        # The host part ended early, inside the credentials: a "/", "?" or "#" that was not encoded.
        raise BusError(f"the user or password in bus URL {mask(url)!r} holds a '/', '?' or '#': percent-encode "
                       "it (%2F, %3F, %23), or give the password as bus.password (NOVAWATCH_BUS_PASSWORD)")
    hosts = []
    for part in parts.netloc.split(","):
        if not part:
            continue
        creds, at, hostport = part.rpartition("@")
        user = password = None
        if at:
            user_text, colon, password_text = creds.partition(":")
            user = unquote(user_text)
            password = unquote(password_text) if colon else None
        hostname, port = _host_port(hostport, url)
        hosts.append(Host(hostname, port, user, password))
    if not hosts:
        hosts.append(Host("localhost", None))
    # oslo writes "rabbit://h/" for the default vhost, aio-pika "amqp://h//": both mean "/"
    vhost = unquote(parts.path[1:]) if parts.path else ""
    return BusURL(scheme, tuple(hosts), vhost or "/", options, url)


def _host_port(text: str, url: str) -> tuple[str, int | None]:
    if text.startswith("["):  # [ipv6]:port
        host, _, port = text[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = text.partition(":")
    try:
        return host or "localhost", int(port) if port else None
    except ValueError:
        raise BusError(f"bad port in bus URL {mask(url)!r}: write HOST:PORT with a number") from None


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` (percent-encoded) as the password of every host that names a user."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL: parse_url says what is wrong with it
        return url
    if not parts.netloc or "@" not in parts.netloc:
        return url
    hosts = []
    for host in parts.netloc.split(","):
        credentials, at, address = host.rpartition("@")
        if at:
            host = f"{credentials.partition(':')[0]}:{quote(password, safe='')}@{address}"
        hosts.append(host)
    start = url.index("://") + 3
    return url[:start] + ",".join(hosts) + url[start + len(parts.netloc):]


def default_url(data_dir: str | Path) -> str:
    """The embedded bus in ``DATA_DIR/bus``: what ``novawatch`` uses when no bus URL is configured."""
    return f"embedded://{Path(data_dir).expanduser().resolve() / 'bus'}"
