"""Declarations on a shared broker: look first, create only what is missing, with oslo's settings; gaps.

Against the session's RabbitMQ broker, with novawatch's AMQP client and aio-pika on the side for what
another service (Nova) would have declared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import pytest
import pytest_asyncio
from bushelpers import TIMEOUT, collect, delete_exchanges, delete_queues, ids_of, new_group, stream, unique

from novawatch.bus import amqp, open_publisher, open_subscriber
from novawatch.bus.rabbit import RabbitConfig, gap_reason, open_exchange
from novawatch.bus.topology import Declarer, Exchange, ExchangeMissing, Refused, explain, permissions_command
from novawatch.bus.url import parse_url
from novawatch.logs import QuietLog
from novawatch.notifications.message import Notification


async def connection_of(rabbitmq: Any, user: str = "guest", password: str = "guest") -> amqp.Connection:
    return await amqp.connect("127.0.0.1", rabbitmq.port, user=user, password=password, timeout=TIMEOUT)


@pytest_asyncio.fixture
async def guest(rabbitmq: Any) -> AsyncIterator[amqp.Connection]:
    connection = await connection_of(rabbitmq)
    yield connection
    await connection.close()


@contextlib.contextmanager
def restricted_user(rabbitmq: Any, exchange: str) -> Iterator[tuple[str, str]]:
    """A user with the documented permissions, for control exchange ``exchange``."""
    user, password = unique("novawatch-user"), unique("pw")
    rabbitmq.ctl("add_user", user, password)
    rabbitmq.ctl("set_permissions", "-p", "/", user, "^novawatch-.*", "^novawatch-.*", f"^({exchange}|novawatch-.*)$")
    try:
        yield user, password
    finally:
        rabbitmq.ctl("delete_user", user)


def exchange_row(rabbitmq: Any, name: str) -> list[str]:
    out = rabbitmq.ctl("list_exchanges", "-q", "--no-table-headers", "-s", "name", "type", "durable", "auto_delete",
                       "arguments")
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in out.splitlines() if line.strip()}
    return rows[name]


async def declare_elsewhere(rabbitmq: Any, exchange: str, *, durable: bool) -> None:
    """What an oslo service configured ``amqp_durable_queues = durable`` would have declared."""
    connection = await aio_pika.connect(rabbitmq.amqp_url, timeout=30)
    async with connection:
        await (await connection.channel()).declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=durable)


@pytest.mark.asyncio
async def test_an_existing_exchange_is_used_as_it_is_and_its_durability_checked(
    rabbitmq: Any, guest: amqp.Connection
) -> None:
    exchange = unique("nova")
    await declare_elsewhere(rabbitmq, exchange, durable=True)
    try:
        declarer = Declarer(guest, user="guest", vhost="/")
        found = await declarer.control_exchange(exchange, durable=False, auto_delete=False)
        assert found == Exchange(created=False, durable=True)  # the check was refused, harmlessly
        assert await declarer.control_exchange(exchange, durable=True, auto_delete=False) == Exchange(False, True)
        assert await declarer.control_exchange(exchange, durable=False, auto_delete=False, check=False) == \
            Exchange(False, None)
        assert exchange_row(rabbitmq, exchange) == ["topic", "true", "false", "[]"]  # unchanged
        assert guest.closed.done() is False  # only channels were closed
    finally:
        await delete_exchanges(rabbitmq.amqp_url, exchange)


@pytest.mark.asyncio
async def test_a_missing_exchange_is_created_exactly_as_oslo_declares_it(
    rabbitmq: Any, guest: amqp.Connection
) -> None:
    transient, durable = unique("nova"), unique("nova")
    declarer = Declarer(guest, user="guest", vhost="/")
    try:
        assert await declarer.control_exchange(transient, durable=False, auto_delete=False) == Exchange(True, False)
        assert await declarer.control_exchange(durable, durable=True, auto_delete=False) == Exchange(True, True)
        assert exchange_row(rabbitmq, transient) == ["topic", "false", "false", "[]"]
        assert exchange_row(rabbitmq, durable) == ["topic", "true", "false", "[]"]
    finally:
        await delete_exchanges(rabbitmq.amqp_url, transient, durable)


@pytest.mark.asyncio
async def test_without_configure_permission_a_missing_exchange_is_waited_for(rabbitmq: Any) -> None:
    exchange = unique("nova")
    with restricted_user(rabbitmq, exchange) as (user, password):
        connection = await connection_of(rabbitmq, user, password)
        try:
            declarer = Declarer(connection, user=user, vhost="/")
            with pytest.raises(ExchangeMissing) as missing:
                await declarer.control_exchange(exchange, durable=False, auto_delete=False)
            assert "waiting for a Nova service" in str(missing.value)
            await declare_elsewhere(rabbitmq, exchange, durable=False)
            # present now; the check is refused (no configure permission): its durability stays unknown
            assert await declarer.control_exchange(exchange, durable=False, auto_delete=False) == \
                Exchange(False, None)
            queue = unique("novawatch-q")
            assert await declarer.queue(queue, durable=False)
            await declarer.bind(queue, exchange, ["versioned_notifications.info"])
            with pytest.raises(Refused) as refused:  # write on Nova's exchange is not granted: no binding to it
                await declarer.bind(unique("other"), exchange, ["x"])
            assert refused.value.code == 403 and "write permission on queue" in refused.value.advice
            assert permissions_command(user, "/") in str(refused.value)
        finally:
            await connection.close()
            await delete_queues(rabbitmq.amqp_url, queue)
            await delete_exchanges(rabbitmq.amqp_url, exchange)


@pytest.mark.asyncio
async def test_an_existing_queue_with_other_settings_is_used_as_it_is(
    rabbitmq: Any, guest: amqp.Connection
) -> None:
    queue = unique("novawatch-q")
    connection = await aio_pika.connect(rabbitmq.amqp_url, timeout=30)
    async with connection:
        await (await connection.channel()).declare_queue(queue, durable=True)
    try:
        declarer = Declarer(guest, user="guest", vhost="/")
        assert await declarer.queue(queue, durable=False) is False  # no 406: it was not declared again
        assert await declarer.queue(unique("novawatch-q2"), durable=False) is True
    finally:
        await delete_queues(rabbitmq.amqp_url, queue)


@pytest.mark.asyncio
async def test_a_durability_mismatch_is_logged_once_with_what_to_set(
    rabbitmq: Any, guest: amqp.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="novawatch")
    exchange = unique("nova")
    await declare_elsewhere(rabbitmq, exchange, durable=False)
    config = RabbitConfig.from_url(parse_url(f"{rabbitmq.amqp_url}?exchange={exchange}&durable=true"), {})
    notices = QuietLog(logging.getLogger("novawatch.bus.rabbit"))
    try:
        for _ in range(3):
            _, found = await open_exchange(guest, config, notices)
            assert found == Exchange(created=False, durable=False)
    finally:
        await delete_exchanges(rabbitmq.amqp_url, exchange)
    said = [r.getMessage() for r in caplog.records if "set durable=false" in r.getMessage()]
    assert len(said) == 1 and "amqp_durable_queues" in said[0], said


def test_gap_reasons() -> None:
    transient = RabbitConfig.from_url(parse_url("rabbit://h/"), {})
    durable = RabbitConfig.from_url(parse_url("rabbit://h/?durable=true"), {})
    kept = Exchange(created=False, durable=None)
    assert gap_reason(transient, "q", False, kept) is None  # the queue was there: it kept everything
    assert gap_reason(durable, "q", False, Exchange(False, True)) is None
    assert "created again" in (gap_reason(transient, "q", True, kept) or "")
    assert "exchange 'nova' was gone" in (gap_reason(durable, "q", False, Exchange(True, True)) or "")
    assert "bindings may have been lost" in (gap_reason(durable, "q", False, Exchange(False, False)) or "")


def test_explain_names_the_cause_and_the_fix() -> None:
    login = amqp.ConnectionClosed("closed by the broker: ACCESS_REFUSED - Login was refused", 403)
    key, text = explain(login, user="nw", vhost="/", where="amqp://nw:***@h//")
    assert key == "login" and "password" in text
    key, text = explain(amqp.ConnectionClosed("no access to vhost", 530), user="nw", vhost="/nova", where="x")
    assert key == "vhost" and "rabbitmqctl set_permissions -p /nova nw" in text
    key, text = explain(ConnectionRefusedError(111, "refused"), user="nw", vhost="/", where="x")
    assert key.startswith("unreachable") and "RabbitMQ running" in text


@pytest.mark.asyncio
async def test_a_subscriber_reports_a_gap_only_when_its_queue_was_lost(
    rabbitmq: Any, sample_notifications: list[Notification[Any]], rabbit_groups: list[str]
) -> None:
    group = new_group(rabbit_groups, "novawatch-gaps")
    gaps: list[str] = []
    subscriber = open_subscriber(rabbitmq.amqp_url, group=group, retry_max=0.5)
    subscriber.on_gap = gaps.append
    publisher = open_publisher(rabbitmq.amqp_url)
    try:
        await subscriber.start()

        async def round_trip(count: int) -> None:
            sent = stream(sample_notifications, count)
            for n in sent:
                publisher.publish(n)
            await asyncio.to_thread(publisher.flush, TIMEOUT)
            got = await collect(subscriber, lambda ds: ids_of(ds) >= {n.message_id for n in sent})
            assert ids_of(got) >= {n.message_id for n in sent}

        await round_trip(5)
        await asyncio.to_thread(rabbitmq.ctl, "close_all_connections", "test: a dropped connection")
        await round_trip(5)  # consumed through a new connection; the queue kept them meanwhile
        assert gaps == [] and subscriber.gaps == 0

        await delete_queues(rabbitmq.amqp_url, group)  # the broker cancels the consumer; the queue is lost
        sent = stream(sample_notifications, 5)
        want = {n.message_id for n in sent}
        consuming = asyncio.create_task(collect(subscriber, lambda ds: ids_of(ds) >= want))
        for _ in range(int(TIMEOUT / 0.05)):
            if gaps:
                break
            await asyncio.sleep(0.05)
        assert len(gaps) == 1 and "had to be created again" in gaps[0] and subscriber.gaps == 1
        for n in sent:  # after the gap: the queue is back and bound
            publisher.publish(n)
        assert ids_of(await asyncio.wait_for(consuming, TIMEOUT)) >= want
    finally:
        publisher.close()
        await subscriber.close()


@pytest.mark.asyncio
async def test_a_passing_consumers_queue_goes_with_it(rabbitmq: Any, rabbit_groups: list[str]) -> None:
    """``novawatch tail`` subscribes with ``queue_auto_delete``: nothing is left to fill up on Nova's broker."""
    group = new_group(rabbit_groups, "novawatch-tail")
    subscriber = open_subscriber(rabbitmq.amqp_url, group=group, queue_auto_delete=True)
    await subscriber.start()

    def names() -> set[str]:
        return {row[0] for row in rabbitmq.list_queues("name")}

    assert group in await asyncio.to_thread(names)
    await subscriber.close()
    for _ in range(int(TIMEOUT / 0.1)):
        if group not in await asyncio.to_thread(names):
            break
        await asyncio.sleep(0.1)
    assert group not in await asyncio.to_thread(names)
