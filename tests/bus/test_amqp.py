"""The small AMQP client: its hand-packed frames checked against pamqp, and its behaviour against the broker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bushelpers import TIMEOUT, unique
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import body as pamqp_body
from pamqp import commands as spec
from pamqp import frame as pamqp_frame
from pamqp import header as pamqp_header

from novawatch.bus import amqp


class RecordingTransport:
    """Stands in for the socket: keeps what the client writes."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


def frames_of(data: bytes) -> list[tuple[int, Any]]:
    out = []
    while data:
        used, channel, frame = pamqp_frame.unmarshal(bytes(data))
        out.append((channel, frame))
        data = data[used:]
    return out


def open_channel(loop: asyncio.AbstractEventLoop, frame_max: int = 131072) -> tuple[amqp.Channel, RecordingTransport]:
    connection = amqp.Connection(loop)
    transport = RecordingTransport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    connection.frame_max = frame_max
    transport.data.clear()  # the protocol header
    channel = connection._channels[1] = amqp.Channel(connection, 1)
    return channel, transport


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(max_size=3000),
    routing_key=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=60),
    frame_max=st.sampled_from([4096, 131072]),
)
def test_publish_frames_are_what_pamqp_reads(body: bytes, routing_key: str, frame_max: int) -> None:
    loop = asyncio.new_event_loop()
    try:
        channel, transport = open_channel(loop, frame_max)
        tags = [channel.publish("nova", routing_key, body), channel.publish("nova", routing_key, body[::-1])]
        channel.connection.flush()
    finally:
        loop.close()
    assert tags == [1, 2]
    frames = frames_of(transport.data)
    for expected in (body, body[::-1]):
        (_, method), (_, header), *bodies = frames[: 2 + len(frames_of_body(expected, frame_max))]
        frames = frames[2 + len(bodies) :]
        assert isinstance(method, spec.Basic.Publish)
        assert (method.exchange, method.routing_key, method.mandatory) == ("nova", routing_key, False)
        assert isinstance(header, pamqp_header.ContentHeader)
        assert header.body_size == len(expected)
        props = header.properties
        assert (props.content_type, props.content_encoding, props.delivery_mode) == ("application/json", "utf-8", 2)
        assert all(isinstance(b, pamqp_body.ContentBody) and len(b.value) <= frame_max - 8 for _, b in bodies)
        assert b"".join(b.value for _, b in bodies) == expected
    assert frames == []


def frames_of_body(body: bytes, frame_max: int) -> list[bytes]:
    room = frame_max - 8
    return [body[i : i + room] for i in range(0, len(body), room)]


def test_publish_with_other_properties_carries_them() -> None:
    loop = asyncio.new_event_loop()
    try:
        channel, transport = open_channel(loop)
        props = spec.Basic.Properties(headers={"x-novawatch-reason": "bad"}, delivery_mode=2)
        channel.publish("", "q.dead-letter", b"{}", props)
        channel.connection.flush()
    finally:
        loop.close()
    (_, method), (_, header), (_, content) = frames_of(transport.data)
    assert method.routing_key == "q.dead-letter"
    assert header.properties.headers == {"x-novawatch-reason": "bad"}
    assert content.value == b"{}"


@pytest.mark.parametrize(("tag", "multiple"), [(1, False), (2**40 + 7, True)])
def test_ack_frame_is_pamqps(tag: int, multiple: bool) -> None:
    loop = asyncio.new_event_loop()
    try:
        channel, transport = open_channel(loop)
        channel.ack(tag, multiple=multiple)
        channel.connection.flush()
    finally:
        loop.close()
    assert bytes(transport.data) == pamqp_frame.marshal(spec.Basic.Ack(delivery_tag=tag, multiple=multiple), 1)


def deliver_frames(tag: int, body: bytes, routing_key: str, redelivered: bool, frame_max: int) -> bytes:
    props = spec.Basic.Properties(content_type="application/json", content_encoding="utf-8", delivery_mode=2)
    out = pamqp_frame.marshal(
        spec.Basic.Deliver(
            consumer_tag="novawatch.1.1", delivery_tag=tag, redelivered=redelivered, exchange="nova",
            routing_key=routing_key,
        ),
        1,
    )
    out += pamqp_frame.marshal(pamqp_header.ContentHeader(0, len(body), props), 1)
    for part in frames_of_body(body, frame_max):
        out += pamqp_frame.marshal(pamqp_body.ContentBody(part), 1)
    return out


@settings(max_examples=60, deadline=None)
@given(
    bodies=st.lists(st.binary(max_size=9000), min_size=1, max_size=5),
    cut=st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=40),
    redelivered=st.booleans(),
)
def test_deliveries_are_read_whatever_the_reads_cut(bodies: list[bytes], cut: list[int], redelivered: bool) -> None:
    """Deliveries (bodies over several frames among them) arrive intact however TCP splits the bytes."""
    loop = asyncio.new_event_loop()
    try:
        channel, _ = open_channel(loop)
        got: list[amqp.Message] = []
        channel._consumers["novawatch.1.1"] = got.append
        wire = b"".join(
            deliver_frames(i + 1, body, f"notifications.info.{i}", redelivered, 4096) for i, body in enumerate(bodies)
        )
        offset, sizes = 0, iter(cut * (len(wire) // max(1, min(cut)) + 1))
        while offset < len(wire):
            step = next(sizes)
            channel.connection.data_received(wire[offset : offset + step])
            offset += step
    finally:
        loop.close()
    assert [m.body for m in got] == bodies
    assert [m.delivery_tag for m in got] == list(range(1, len(bodies) + 1))
    assert all(m.redelivered is redelivered and m.exchange == "nova" for m in got)
    assert [m.routing_key for m in got] == [f"notifications.info.{i}" for i in range(len(bodies))]
    assert got[0].properties.content_type == "application/json"


def test_confirms_reach_the_listener_and_the_waiters() -> None:
    loop = asyncio.new_event_loop()
    try:
        channel, _ = open_channel(loop)
        seen: list[tuple[int, bool, bool]] = []
        channel.on_confirm = lambda tag, multiple, acked: seen.append((tag, multiple, acked))

        async def run() -> list[bool]:
            waiters = [asyncio.ensure_future(channel.publish_confirmed("nova", "k", b"x")) for _ in range(4)]
            await asyncio.sleep(0)
            feed = channel.connection.data_received
            feed(pamqp_frame.marshal(spec.Basic.Ack(delivery_tag=2, multiple=True), 1))
            feed(pamqp_frame.marshal(spec.Basic.Nack(delivery_tag=3, multiple=False), 1))
            feed(pamqp_frame.marshal(spec.Basic.Ack(delivery_tag=4, multiple=False), 1))
            return list(await asyncio.gather(*waiters))

        results = loop.run_until_complete(run())
    finally:
        loop.close()
    assert results == [True, True, False, True]
    assert seen == [(2, True, True), (3, False, False), (4, False, True)]


def test_a_channel_closed_by_the_broker_fails_what_waits_on_it() -> None:
    loop = asyncio.new_event_loop()
    try:
        channel, transport = open_channel(loop)
        lost: list[BaseException] = []
        channel.close_callbacks.append(lost.append)

        async def run() -> BaseException:
            waiter = asyncio.ensure_future(channel.publish_confirmed("nova", "k", b"x"))
            await asyncio.sleep(0)
            channel.connection.flush()
            transport.data.clear()
            channel.connection.data_received(pamqp_frame.marshal(
                spec.Channel.Close(reply_code=406, reply_text="PRECONDITION_FAILED", class_id=50, method_id=10), 1
            ))
            with pytest.raises(amqp.ChannelClosed) as info:
                await waiter
            return info.value

        error = loop.run_until_complete(run())
    finally:
        loop.close()
    assert isinstance(error, amqp.ChannelClosed) and error.reply_code == 406
    assert lost == [error]
    assert isinstance(frames_of(transport.data)[0][1], spec.Channel.CloseOk)  # the client answered
    with pytest.raises(amqp.ChannelClosed):
        channel.publish("nova", "k", b"y")


def test_garbage_from_the_broker_drops_the_connection() -> None:
    loop = asyncio.new_event_loop()
    try:
        channel, transport = open_channel(loop)
        lost: list[BaseException] = []
        channel.connection.close_callbacks.append(lost.append)
        channel.connection.data_received(b"\x01\x00\x01\x00\x00\x00\x02AB\x00")  # no frame-end octet
    finally:
        loop.close()
    assert transport.closed
    assert len(lost) == 1 and "malformed frame" in str(lost[0])


# --- against the broker --------------------------------------------------------------------------


async def open_connection(rabbitmq: Any, **kwargs: Any) -> amqp.Connection:
    options: dict[str, Any] = {"user": "guest", "password": "guest", "timeout": TIMEOUT} | kwargs
    return await amqp.connect("127.0.0.1", rabbitmq.port, **options)


@pytest.mark.asyncio
async def test_round_trip_through_the_broker_with_a_body_over_many_frames(rabbitmq: Any) -> None:
    queue = unique("amqp")
    body = bytes(range(256)) * 1200  # 307,200 bytes: three frames at the broker's frame_max
    connection = await open_connection(rabbitmq)
    try:
        channel = await connection.channel(confirms=True)
        assert await channel.queue_declare(queue, durable=False, auto_delete=False) == (0, 0)
        assert await channel.publish_confirmed("", queue, body) is True
        assert await channel.publish_confirmed("", queue, b"") is True
        got: asyncio.Queue[amqp.Message] = asyncio.Queue()
        await channel.basic_qos(10)
        await channel.basic_consume(queue, got.put_nowait)
        first = await asyncio.wait_for(got.get(), TIMEOUT)
        second = await asyncio.wait_for(got.get(), TIMEOUT)
        assert (first.body, second.body) == (body, b"")
        assert first.routing_key == queue and not first.redelivered
        assert first.properties.delivery_mode == 2
        channel.ack(second.delivery_tag, multiple=True)
        assert await channel.queue_delete(queue) == 0  # both acknowledged: none left
    finally:
        await connection.close()
    assert connection.closed.done()


@pytest.mark.asyncio
async def test_refused_credentials_are_reported_without_the_password(rabbitmq: Any) -> None:
    with pytest.raises(amqp.ConnectionClosed) as info:
        await open_connection(rabbitmq, password="not-the-password-xyz")
    assert info.value.reply_code == 403 and "ACCESS_REFUSED" in str(info.value)
    assert "not-the-password-xyz" not in str(info.value)


@pytest.mark.asyncio
async def test_a_refused_declaration_closes_only_its_channel(rabbitmq: Any) -> None:
    connection = await open_connection(rabbitmq)
    try:
        channel = await connection.channel()
        with pytest.raises(amqp.ChannelClosed) as info:
            await channel.queue_declare(unique("absent"), passive=True)
        assert info.value.reply_code == 404
        again = await connection.channel()  # the connection goes on
        queue = unique("amqp")
        await again.queue_declare(queue, durable=False)
        assert await again.queue_delete(queue) == 0
    finally:
        await connection.close()


@pytest.mark.asyncio
async def test_heartbeat_is_the_lower_of_both_asked(rabbitmq: Any) -> None:
    connection = await open_connection(rabbitmq, heartbeat=7)
    try:
        assert connection.heartbeat == 7
        assert "RabbitMQ" in str(connection.server_properties["product"])
    finally:
        await connection.close()


def test_a_silent_broker_is_dropped_after_two_heartbeat_intervals() -> None:
    loop = asyncio.new_event_loop()
    try:
        channel, transport = open_channel(loop)
        connection = channel.connection
        connection.heartbeat = 1

        async def run() -> BaseException:
            connection._heartbeat_task = loop.create_task(connection._heartbeats())
            return await asyncio.wait_for(asyncio.shield(connection.closed), TIMEOUT)

        reason = loop.run_until_complete(run())
    finally:
        loop.close()
    assert "missed heartbeats" in str(reason)
    assert transport.closed
    sent = frames_of(transport.data)
    assert len(sent) >= 4 and all(type(frame).__name__ == "Heartbeat" for _, frame in sent)
