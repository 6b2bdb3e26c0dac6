"""Queue types and stream offsets as the bus URL gives them: what is accepted, and what is refused with why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from novawatch.bus import BusError, open_subscriber
from novawatch.bus.queues import age, consume_arguments, describe, queue_arguments, queue_type, stream_offset
from novawatch.bus.rabbit import RabbitConfig
from novawatch.bus.url import parse_url


def config(query: str, **options: Any) -> RabbitConfig:
    return RabbitConfig.from_url(parse_url(f"rabbit://u:p@h1:5672,h2:5673/?{query}"), options)


def test_queue_types_and_their_declarations() -> None:
    assert [queue_type(t) for t in ("classic", "Quorum", " stream ")] == ["classic", "quorum", "stream"]
    assert queue_arguments("classic") is None  # exactly what an oslo listener pool declares: no arguments
    assert queue_arguments("quorum", max_age="1D") == {"x-queue-type": "quorum"}  # retention is a stream's
    assert queue_arguments("stream", max_age="7D", max_length_bytes=10**9, segment_bytes=10**6) == {
        "x-queue-type": "stream", "x-max-age": "7D", "x-max-length-bytes": 10**9,
        "x-stream-max-segment-size-bytes": 10**6}
    with pytest.raises(BusError, match="classic, quorum or stream"):
        queue_type("lazy")


@pytest.mark.parametrize(("text", "expected"), [
    ("first", "first"), ("LAST", "last"), ("next", "next"), ("0", 0), ("123456", 123456),
    ("2026-12-04T10:00:00Z", datetime(2026, 12, 4, 10, tzinfo=UTC)),
    ("2026-12-04T11:00:00+01:00", datetime(2026, 12, 4, 10, tzinfo=UTC)),
    ("2026-12-04 10:00:00", datetime(2026, 12, 4, 10, tzinfo=UTC)),  # no zone: UTC
])
def test_stream_offsets_from_text(text: str, expected: Any) -> None:
    assert stream_offset(text) == expected


@pytest.mark.parametrize("bad", ["-1", "yesterday", "1.5", "", "2026-13-01"])
def test_a_bad_stream_offset_says_what_to_write(bad: str) -> None:
    with pytest.raises(BusError, match="first, last, next, an offset"):
        stream_offset(bad)
    with pytest.raises(BusError, match="negative"):
        stream_offset(-5)
    with pytest.raises(BusError):
        stream_offset(True)


def test_consume_arguments_round_a_moment_down_to_whole_seconds() -> None:
    moment = datetime(2026, 12, 4, 11, 0, 5, 900_000, tzinfo=timezone(timedelta(hours=1)))
    assert consume_arguments(moment) == {"x-stream-offset": datetime(2026, 12, 4, 10, 0, 5, tzinfo=UTC)}
    assert consume_arguments(42) == {"x-stream-offset": 42}
    assert consume_arguments("first") == {"x-stream-offset": "first"}
    assert describe(moment) == "2026-12-04T10:00:05Z" and describe(7) == "7"


def test_max_age_is_rabbitmqs_format() -> None:
    assert [age(v) for v in ("7D", "12h", "30m", "1Y")] == ["7D", "12h", "30m", "1Y"]
    with pytest.raises(BusError, match="Y, M, D, h, m or s"):
        age("7 days")


def test_the_bus_url_carries_the_queue_type_and_the_stream_start() -> None:
    c = config("queue_type=stream&offset=first&max_age=7D&max_length_bytes=5000000&segment_bytes=100000")
    assert (c.queue_type, c.offset, c.max_age, c.max_length_bytes, c.segment_bytes) == (
        "stream", "first", "7D", 5_000_000, 100_000)
    assert c.queue_durable and not c.durable  # a stream is durable whatever Nova's exchange is
    assert config("queue_type=quorum").queue_durable
    assert not config("").queue_durable and config("").queue_type == "classic" and config("").offset == "next"
    assert config("queue_type=stream", offset=12).offset == 12  # keyword options (a checkpoint's) win
    assert [config("").address(i) for i in range(3)] == ["h1:5672", "h2:5673", "h1:5672"]


@pytest.mark.parametrize(("query", "message"), [
    ("queue_type=fifo", "classic, quorum or stream"),
    ("queue_type=quorum&queue_auto_delete=true", "cannot be combined with queue_auto_delete"),
    ("offset=first", "offset= in the bus URL is for queue_type=stream"),
    ("queue_type=quorum&offset=5", "only a stream can be read from an offset"),
    ("queue_type=stream&prefetch=0", "a stream needs prefetch >= 1"),
    ("queue_type=stream&offset=soon", "not a stream offset"),
    ("queue_type=stream&max_age=forever", "is not an age"),
])
def test_a_wrong_combination_is_refused_when_the_subscriber_is_made(query: str, message: str) -> None:
    with pytest.raises(BusError, match=message):
        open_subscriber(f"rabbit://u:p@h1:5672/?{query}", group="novawatch-model")
