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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from novawatch.bus.base import DEFAULT_GROUP, DEFAULT_TOPICS, BusError, Decoder

if TYPE_CHECKING:
    from novawatch.bus.base import Publisher, Subscriber

RABBIT_SCHEMES = {"rabbit": False, "amqp": False, "rabbit+ssl": True, "amqps": True, "rabbits": True}
SCHEMES = {"memory", "embedded", *RABBIT_SCHEMES}

_CREDENTIALS = re.compile(r"(?P<user>[^:/@,]*):(?P<password>[^@/]*)@")


def mask_url(url: str) -> str:
    """The URL with every password replaced by ``***`` (and password-like query options too)."""
    masked = _CREDENTIALS.sub(lambda m: f"{m['user']}:***@", url)
    return re.sub(r"(?i)((?:password|passwd|pass|ssl_key_password)=)[^&]*", r"\1***", masked)


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
        return mask_url(self.raw)

    def __repr__(self) -> str:
        return f"BusURL({mask_url(self.raw)!r})"


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
        raise BusError(f"unsupported bus URL {mask_url(url)!r}: use memory://, embedded://DIR, rabbit:// or amqp://")
    rest, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    if scheme in ("memory", "embedded"):
        return BusURL(scheme, (), unquote(rest), options, url)
    netloc, slash, path = rest.partition("/")
    hosts = []
    for part in netloc.split(","):
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
    vhost = unquote(path) if slash else ""
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
        raise BusError(f"bad port in bus URL {mask_url(url)!r}") from None


def default_url(data_dir: str | Path) -> str:
    """The embedded bus in ``DATA_DIR/bus``: what ``novawatch`` uses when no bus URL is configured."""
    return f"embedded://{Path(data_dir).expanduser().resolve() / 'bus'}"


def open_publisher(url: str, **options: Any) -> Publisher:
    """A publisher for ``url``; keyword options override the URL's query options."""
    parsed = parse_url(url)
    if parsed.transport == "memory":
        from novawatch.bus.memory import MemoryPublisher

        return MemoryPublisher(parsed, **options)
    if parsed.transport == "embedded":
        from novawatch.bus.embedded import EmbeddedPublisher

        return EmbeddedPublisher(parsed, **options)
    from novawatch.bus.rabbit import RabbitPublisher

    return RabbitPublisher(parsed, **options)


def open_subscriber(
    url: str,
    *,
    group: str = DEFAULT_GROUP,
    topics: Sequence[str] = DEFAULT_TOPICS,
    decoder: Decoder | None = None,
    **options: Any,
) -> Subscriber:
    """A subscriber for ``url`` in consumer ``group``; keyword options override the URL's query options."""
    parsed = parse_url(url)
    if parsed.transport == "memory":
        from novawatch.bus.memory import MemorySubscriber

        return MemorySubscriber(parsed, group=group, topics=topics, decoder=decoder, **options)
    if parsed.transport == "embedded":
        from novawatch.bus.embedded import EmbeddedSubscriber

        return EmbeddedSubscriber(parsed, group=group, topics=topics, decoder=decoder, **options)
    from novawatch.bus.rabbit import RabbitSubscriber

    return RabbitSubscriber(parsed, group=group, topics=topics, decoder=decoder, **options)
