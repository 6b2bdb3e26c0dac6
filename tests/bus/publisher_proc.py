"""A publisher process for the kill -9 tests: publishes notifications forever, in small batches.

    python publisher_proc.py URL OUT

After each batch is flushed (durable in the bus), appends the batch's message ids to OUT: every id in OUT
must reach the consumers even if this process is killed at any moment.
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime

from novawatch.bus import open_publisher
from novawatch.notifications.codec import decode
from novawatch.notifications.message import format_timestamp

SAMPLE = (
    b'{"event_type":"service.update","priority":"INFO","publisher_id":"nova-compute:host1","payload":'
    b'{"nova_object.name":"ServiceStatusPayload","nova_object.namespace":"nova","nova_object.version":"1.1",'
    b'"nova_object.data":{"availability_zone":null,"binary":"nova-compute","disabled":false,'
    b'"disabled_reason":null,"forced_down":false,"host":"host1","last_seen_up":"2012-10-29T13:42:05Z",'
    b'"report_count":1,"topic":"compute","uuid":"fa69c544-906b-4a6a-a9c6-c1f7a8078c73","version":23}}}'
)


def main(url: str, out: str) -> None:
    template = decode(SAMPLE)
    publisher = open_publisher(url)
    with open(out, "a", buffering=1) as published:
        while True:
            batch = []
            for _ in range(10):
                n = type(template)(
                    event_type=template.event_type, payload=template.payload, priority=template.priority,
                    publisher_id=template.publisher_id, message_id=str(uuid.uuid4()),
                    timestamp=format_timestamp(datetime.now(UTC)),
                )
                publisher.publish(n)
                batch.append(n.message_id)
            publisher.flush(60)
            published.write("".join(f"{i}\n" for i in batch))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
