"""Two bounds on any Python ``model replay`` of a stream; executed by bench_model.py as a process of its own.

Usage: ``python replay_bounds.py scan|decode STREAM.jsonl``; prints how many notifications it read.

Both pay what a whole command pays before applying anything: interpreter start-up, imports, reading the
stream line by line. ``scan`` then has msgspec find one field (``event_type``) in each line, validating
nothing else; ``decode`` has the model's own decoder (:data:`novawatch.model.decoder.MODEL_READER`) read
each line, every field the model uses type-checked, and applies nothing. ``model replay`` does all of that
and the apply besides, so a whole command can be no faster than either.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def scanner() -> Callable[[bytes], Any]:
    import msgspec

    class EventType(msgspec.Struct):
        event_type: str

    return msgspec.json.Decoder(EventType).decode


def decoder() -> Callable[[bytes], Any]:
    from novawatch.model.decoder import MODEL_READER

    return MODEL_READER.fields


def main() -> int:
    mode, path = sys.argv[1], sys.argv[2]
    read = {"scan": scanner, "decode": decoder}[mode]()
    count = 0
    with open(path, "rb", buffering=1 << 20) as stream:
        for line in stream:
            read(line)
            count += 1
    print(count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
