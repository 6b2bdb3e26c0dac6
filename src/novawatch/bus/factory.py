"""Opening a bus by URL: the one place that knows which transport serves which scheme.

The transports import :mod:`novawatch.bus.url` (for :class:`~novawatch.bus.url.BusURL`); this module imports
the transports, so the two never import each other. Each transport is imported on first use: a process on the
embedded bus never loads the AMQP client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from novawatch.bus.base import DEFAULT_GROUP, DEFAULT_TOPICS, Decoder, Publisher, Subscriber
from novawatch.bus.url import parse_url


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
