"""A stream subscriber's cursor, and the stream offset read from a delivery's header."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pamqp import commands as spec
from pamqp import frame as pamqp_frame
from pamqp import header as pamqp_header

from novawatch.bus.amqp import header_offset
from novawatch.bus.streams import StreamCursor


def content_header(headers: dict[str, object] | None, **properties: object) -> bytes:
    """The payload of a content header frame as pamqp (the reference encoder) writes it."""
    props = spec.Basic.Properties(headers=headers, **properties)  # type: ignore[arg-type]
    frame = pamqp_frame.marshal(pamqp_header.ContentHeader(0, 123, props), 1)
    return frame[7:-1]  # without the frame head and the frame end


INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@given(st.integers(min_value=0, max_value=2**63 - 1), st.dictionaries(st.text(max_size=20), INT64, max_size=4),
       st.booleans(), st.text(max_size=40))
def test_the_offset_is_read_from_the_header_whatever_its_integer_type_and_neighbours(
    offset: int, others: dict[str, int], first: bool, content_type: str
) -> None:
    """Alone in the table (a notification's) the offset is read directly; among others, found all the same."""
    rest = {k: v for k, v in others.items() if k != "x-stream-offset"}
    headers = {"x-stream-offset": offset, **rest} if first else {**rest, "x-stream-offset": offset}
    payload = content_header(headers, content_type=content_type, content_encoding="utf-8", delivery_mode=2)
    assert header_offset(payload) == offset


def test_an_offset_look_alike_in_another_property_is_not_taken_for_it() -> None:
    fake = "\x0fx-stream-offsetl\x00\x00\x00\x00\x00\x00\x00\x07"
    assert header_offset(content_header({"x-stream-offset": 99}, content_type=fake)) == 99
    assert header_offset(content_header({"a": fake, "x-stream-offset": 5})) == 5
    assert header_offset(content_header({"a": fake})) is None


def test_no_offset_when_the_header_has_none_or_not_an_integer() -> None:
    assert header_offset(content_header(None, content_type="application/json")) is None
    assert header_offset(content_header({"x-other": 5})) is None
    assert header_offset(content_header({"x-stream-offset": "12"})) is None
    assert header_offset(b"") is None


def test_the_cursor_moves_over_what_is_acknowledged_in_order() -> None:
    cursor = StreamCursor("first")
    assert cursor.resume() == "first" and cursor.position is None
    cursor.subscribed()
    for tag, offset in ((1, 10), (2, 11), (3, 13), (4, 14)):  # offsets need not be contiguous
        cursor.delivered(tag, offset)
    assert cursor.received == 14 and cursor.resume() == 10  # nothing acknowledged: from the first delivered
    cursor.settled(2)  # out of order: 1 is not acknowledged yet
    assert cursor.position is None
    cursor.settled(1)
    assert cursor.position == 11  # 1 and 2 together
    cursor.settled(4)
    assert cursor.position == 11
    cursor.settled(3)
    assert cursor.position == 14 and cursor.resume() == 15
    cursor.subscribed()  # a new channel: tags start again, the position stays
    cursor.delivered(1, 15)
    cursor.settled(1)
    assert cursor.position == 15 and cursor.resume() == 16


@pytest.mark.parametrize("start", ["next", "last"])
def test_a_relative_start_resumes_from_when_it_first_subscribed(start: str) -> None:
    cursor = StreamCursor(start)  # type: ignore[arg-type]
    before = datetime.now().astimezone()
    cursor.subscribed()
    resume = cursor.resume()
    assert isinstance(resume, datetime) and resume <= before  # what came while disconnected is read again
    cursor.subscribed()  # a later subscription does not move it on
    assert cursor.resume() == resume


def test_a_restart_forgets_the_old_streams_offsets() -> None:
    cursor = StreamCursor(100)
    cursor.subscribed()
    cursor.delivered(1, 100)
    cursor.settled(1)
    assert cursor.resume() == 101
    cursor.restart("first")
    assert cursor.position is None and cursor.resume() == "first"
