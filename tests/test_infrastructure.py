"""The test infrastructure itself: the private servers of conftest.py really work."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import aio_pika
import pytest
import sqlalchemy as sa
from tests.conftest import PostgresServer, RabbitMQBroker, amqp_ready, parse_kv, port_open, sqlalchemy_url

# --- helpers (no server) ---------------------------------------------------------------------


def test_parse_kv_handles_shell_quoting() -> None:
    out = "AMQP_URL=amqp://guest:guest@127.0.0.1:5672//\nDIR=/tmp/with\\ space\nQUOTED='a b'\nEMPTY=\nsome log line\n"
    assert parse_kv(out) == {
        "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672//",
        "DIR": "/tmp/with space",
        "QUOTED": "a b",
        "EMPTY": "",
    }


def test_sqlalchemy_url() -> None:
    assert sqlalchemy_url("postgresql://u@127.0.0.1:5/db") == "postgresql+psycopg://u@127.0.0.1:5/db"
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(ValueError):
        sqlalchemy_url("mysql://u@h/db")


# --- RabbitMQ ----------------------------------------------------------------------------------


def test_rabbitmq_urls(rabbitmq: RabbitMQBroker) -> None:
    assert rabbitmq.amqp_url == f"amqp://guest:guest@127.0.0.1:{rabbitmq.port}//"
    assert rabbitmq.oslo_url == f"rabbit://guest:guest@127.0.0.1:{rabbitmq.port}/"
    assert rabbitmq.dir.is_dir()
    assert rabbitmq.is_running()


@pytest.mark.asyncio
async def test_rabbitmq_publish_and_consume(rabbitmq: RabbitMQBroker) -> None:
    queue_name = f"test.infra.{uuid.uuid4().hex}"
    body = b'{"hello": "novawatch"}'
    connection = await aio_pika.connect(rabbitmq.amqp_url, timeout=30)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, auto_delete=True)
        await channel.default_exchange.publish(
            aio_pika.Message(body, content_type="application/json"), routing_key=queue_name
        )
        async with queue.iterator(timeout=30) as messages:
            async for message in messages:
                async with message.process():
                    assert message.body == body
                    assert message.content_type == "application/json"
                break


@pytest.mark.asyncio
async def test_rabbitmq_durable_message_survives_stop_app_start_app(rabbitmq: RabbitMQBroker) -> None:
    queue_name = f"test.infra.durable.{uuid.uuid4().hex}"
    body = b"persistent payload"
    beam_pid = rabbitmq.pid

    # publish one persistent message to a durable queue, and keep a second connection open
    publisher = await aio_pika.connect(rabbitmq.amqp_url, timeout=30)
    async with publisher:
        channel = await publisher.channel(publisher_confirms=True)
        await channel.declare_queue(queue_name, durable=True)
        await channel.default_exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue_name,
        )
    bystander = await aio_pika.connect(rabbitmq.amqp_url, timeout=30)
    dropped = asyncio.Event()
    bystander.close_callbacks.add(lambda _conn, _exc: dropped.set())

    try:
        with rabbitmq.stopped():
            # the broker is really down: no AMQP, and open connections were closed by it
            assert not port_open(rabbitmq.port)
            assert not amqp_ready(rabbitmq.port)
            await asyncio.wait_for(dropped.wait(), timeout=10)
            assert not bystander.connected.is_set()
            with pytest.raises(aio_pika.exceptions.AMQPConnectionError):
                await aio_pika.connect(rabbitmq.amqp_url, timeout=5)
    finally:
        await bystander.close()

    # same node (same Erlang VM), same port, same data
    assert rabbitmq.is_running()
    if beam_pid:
        assert (rabbitmq.dir / "rabbitmq.pid").read_text().strip() == str(beam_pid)
    assert [queue_name, "1"] in rabbitmq.list_queues("name", "messages")

    consumer = await aio_pika.connect(rabbitmq.amqp_url, timeout=30)
    async with consumer:
        channel = await consumer.channel()
        queue = await channel.declare_queue(queue_name, durable=True)
        message = await queue.get(timeout=10, fail=True)
        assert message is not None
        assert message.body == body
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        await message.ack()
        await queue.delete(if_unused=False, if_empty=False)


# --- PostgreSQL --------------------------------------------------------------------------------


def test_postgres_roundtrip(postgres: str, postgres_server: PostgresServer) -> None:
    assert postgres.startswith("postgresql+psycopg://")
    assert postgres == postgres_server.sqlalchemy_url
    table_name = f"infra_{uuid.uuid4().hex[:12]}"
    metadata = sa.MetaData()
    table = sa.Table(
        table_name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
    )
    engine = sa.create_engine(postgres)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"id": 1, "name": "compute-1", "payload": {"vcpus": 8}}])
        with engine.connect() as conn:
            row = conn.execute(sa.select(table.c.name, table.c.payload).where(table.c.id == 1)).one()
            version = conn.execute(sa.text("SHOW server_version")).scalar_one()
        assert row.name == "compute-1"
        assert row.payload == {"vcpus": 8}
        assert int(str(version).split(".")[0]) >= 12
        metadata.drop_all(engine)
    finally:
        engine.dispose()


# --- Chromium ----------------------------------------------------------------------------------


def test_chromium_renders_a_page(chromium_path: str) -> None:
    html = "data:text/html,<html><body><p id=x>novawatch-ok</p></body></html>"
    proc = subprocess.run(
        [
            chromium_path,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--dump-dom",
            html,
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '<p id="x">novawatch-ok</p>' in proc.stdout


def test_chromedriver_present(chromedriver_path: str) -> None:
    proc = subprocess.run([chromedriver_path, "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "ChromeDriver" in proc.stdout
