"""The notifier driver that sends through the bus: ``Notifier([BusDriver(open_publisher(url))])``."""

from __future__ import annotations

from typing import Any

from novawatch.bus.base import Publisher
from novawatch.notifications.message import Notification


class BusDriver:
    """A notifications :class:`~novawatch.notifications.drivers.Driver` publishing each notification."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    def send(self, topic: str, notification: Notification[Any], body: bytes) -> None:
        # the notifier already encoded the body: publish it as is rather than encoding it again
        self.publisher.publish_body(topic, notification.priority, body)
