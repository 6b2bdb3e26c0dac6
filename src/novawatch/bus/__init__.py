"""The message bus between the compute service and the data model, chosen by URL.

``open_publisher(url).publish(notification)`` sends; ``async for delivery in open_subscriber(url, group=...)``
receives, and ``await delivery.ack()`` once the notification is applied (at-least-once: consumers dedup by
``message_id``). URLs: ``memory://NAME``, ``embedded://DIR`` (the default: a SQLite queue that processes
share), ``rabbit://user:pass@host:port/vhost`` or ``amqp://`` (oslo.messaging's wire format).
"""

from novawatch.bus.base import (
    DEFAULT_GROUP,
    DEFAULT_TOPICS,
    BusError,
    Decoder,
    Delivery,
    Publisher,
    Status,
    Subscriber,
    topic_of,
)
from novawatch.bus.driver import BusDriver
from novawatch.bus.factory import open_publisher, open_subscriber
from novawatch.bus.url import BusURL, default_url, mask_url, parse_url

__all__ = [
    "DEFAULT_GROUP",
    "DEFAULT_TOPICS",
    "BusDriver",
    "BusError",
    "BusURL",
    "Decoder",
    "Delivery",
    "Publisher",
    "Status",
    "Subscriber",
    "default_url",
    "mask_url",
    "open_publisher",
    "open_subscriber",
    "parse_url",
    "topic_of",
]
