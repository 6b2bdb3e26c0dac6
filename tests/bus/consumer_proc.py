"""A consumer process for the kill -9 tests: applies each delivery by appending its message id to a file.

    python consumer_proc.py URL GROUP OUT [DELAY]

One line per applied notification, written (and flushed to the kernel, which keeps it across kill -9)
before the delivery is acknowledged, and its body as one line of ``OUT.bodies`` (the stream this consumer
applied, to replay into a model); ``DELAY`` seconds of "work" per notification keep the stream going
long enough to be killed in the middle. Prints ``ready`` once subscribed.
"""

from __future__ import annotations

import asyncio
import sys
import time

from novawatch.bus import Status, open_subscriber


async def main(url: str, group: str, out: str, delay: float) -> None:
    subscriber = open_subscriber(url, group=group)
    await subscriber.start()
    print("ready", flush=True)
    with open(out, "a", buffering=1) as applied, open(f"{out}.bodies", "ab") as bodies:
        async for delivery in subscriber:
            if delivery.status is Status.OK:
                if delay:
                    time.sleep(delay)  # the model's work, blocking as CPU-bound work would
                bodies.write(delivery.body + b"\n")
                bodies.flush()
                applied.write(f"{delivery.message_id}\n")
                applied.flush()
            await delivery.ack()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 0.0))
