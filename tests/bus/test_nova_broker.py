"""On Nova's RabbitMQ: novawatch shares the control exchange with oslo.messaging's notifier and RPC.

Nova's side is the real oslo.messaging with its default options (``amqp_durable_queues = false``): a
notifier (``messagingv2``) that carries the compute service's notifications, and an RPC server that
receives casts on the same exchange. Whatever the start order, and across restarts of the broker, oslo
never fails, the RPC server gets every cast, and the model (a :class:`ModelRuntime` following a
subscriber, re-listing its source after a gap) ends equal to the compute service's truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import pytest_asyncio
from bushelpers import TIMEOUT, delete_exchanges, delete_queues, new_group, unique
from oslokit import BROKEN, Nova, OsloDriver, Producer, capture

from novawatch.bus import Subscriber, open_subscriber
from novawatch.model import to_snapshot
from novawatch.model.live.runtime import ModelRuntime
from novawatch.simulate import Config, Simulation
from novawatch.snapshot import Snapshot, dumps

DOCS = Path(__file__).resolve().parents[2] / "docs" / "bus.md"
SIM = Config(hosts=4, instances=16, actions=0, seed=23, failure_rate=0.05)
PHASE = 80  # compute actions per phase


class Model:
    """The model service's core on the bus: subscribe, bootstrap, consume; re-list after gaps."""

    def __init__(self, url: str, group: str, fetch: Callable[[], Snapshot] | None) -> None:
        self.runtime = ModelRuntime()
        self.subscriber: Subscriber = open_subscriber(url, group=group, retry_max=1.0)
        self.runtime.follow(self.subscriber, fetch)
        self.task: asyncio.Task[None] | None = None

    async def start(self, bootstrap: Callable[[], Snapshot]) -> None:
        """Subscribe, then list (so that nothing published after the list is missed), then consume."""
        await self.subscriber.start()
        self.runtime.load(await asyncio.to_thread(bootstrap))
        self.task = asyncio.create_task(self.runtime.consume(self.subscriber))

    def snapshot(self) -> bytes:
        return dumps(to_snapshot(self.runtime.cluster, reported=False))

    async def equals(self, truth: bytes, what: str) -> None:
        async def converged() -> None:
            while self.snapshot() != truth:
                assert self.task is None or not self.task.done(), "the consumer stopped"
                await asyncio.sleep(0.05)

        try:
            await asyncio.wait_for(converged(), TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"the model never equalled the truth {what}; health {self.runtime.state.health()}"
                                 ) from None

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        await self.subscriber.close()


async def eventually(predicate: Callable[[], Any], what: str) -> Any:
    for _ in range(int(TIMEOUT / 0.05)):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def ctl_rows(rabbitmq: Any, what: str, *columns: str) -> list[list[str]]:
    out = rabbitmq.ctl(what, "-q", "--no-table-headers", "-s", *columns)
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def consumers(rabbitmq: Any, queue: str) -> int:
    return sum(int(row[1]) for row in ctl_rows(rabbitmq, "list_queues", "name", "consumers") if row[0] == queue)


class Cloud:
    """A compute service whose notifications go through oslo's Notifier, with an oslo RPC server beside."""

    def __init__(self, rabbitmq: Any, exchange: str, *, durable: bool = False) -> None:
        self.rabbitmq = rabbitmq
        self.nova = Nova(rabbitmq.oslo_url, exchange, unique("compute"), durable=durable)
        self.sim = Simulation(SIM, [OsloDriver(self.nova)])
        self.sim.setup()
        self.sim.start()
        self.producer = Producer(self.sim, self.nova)

    async def act(self, actions: int) -> bytes:
        """``actions`` compute actions through oslo, then its truth; every cast arrived."""
        self.producer.run(actions)
        await asyncio.to_thread(self.producer.wait, TIMEOUT)
        await eventually(lambda: self.nova.casts.count() == self.producer.casts,
                         f"the RPC server to get all {self.producer.casts} casts")
        return dumps(await asyncio.to_thread(self.producer.truth))

    async def rpc_server_consuming(self) -> None:
        """After a restart of the broker, oslo's RPC server re-subscribes on its own schedule."""
        queue = f"{self.nova.topic}.host-1"
        await eventually(lambda: consumers(self.rabbitmq, queue) > 0, f"oslo's RPC server to consume {queue}")

    async def close(self) -> None:
        self.nova.close()
        self.sim.close()
        if self.rabbitmq.is_running():
            await delete_queues(self.rabbitmq.amqp_url, *self.nova.queues())
            await delete_exchanges(self.rabbitmq.amqp_url, self.nova.exchange)


@pytest_asyncio.fixture
async def clouds(rabbitmq: Any) -> AsyncIterator[list[Cloud]]:
    made: list[Cloud] = []
    yield made
    for cloud in made:
        await cloud.close()


@pytest.fixture
def oslo_log() -> Iterator[Any]:
    with capture("oslo.messaging", "oslo_messaging") as records:  # the drivers log under the first name
        yield records


def restart(rabbitmq: Any) -> None:
    with rabbitmq.stopped():
        pass


@pytest.mark.asyncio
@pytest.mark.parametrize("first", ["novawatch", "oslo"])
async def test_oslo_notifier_and_rpc_share_the_exchange_in_either_start_order_and_across_a_restart(
    rabbitmq: Any, first: str, clouds: list[Cloud], rabbit_groups: list[str], oslo_log: Any
) -> None:
    exchange = unique("nova")
    cloud = Cloud(rabbitmq, exchange)
    clouds.append(cloud)
    model = Model(f"{rabbitmq.amqp_url}?exchange={exchange}", new_group(rabbit_groups, "novawatch-model"),
                  cloud.producer.truth)
    try:
        if first == "oslo":
            cloud.nova.start_server()
            await cloud.act(10)  # before novawatch exists: the bootstrap covers these
            await model.start(cloud.producer.truth)
        else:
            await model.start(cloud.producer.truth)  # declares the exchange, as oslo would
            cloud.nova.start_server()
        await model.equals(await cloud.act(PHASE), "after the first phase")
        assert model.runtime.state.gaps == 0

        await asyncio.to_thread(restart, rabbitmq)
        # oslo's defaults: the exchange and novawatch's queue were transient, so the queue is created
        # again -- a gap, deterministically -- and the model re-lists its source
        await eventually(lambda: model.runtime.state.relists >= 1, "a re-list after the restart")
        await cloud.rpc_server_consuming()
        await model.equals(await cloud.act(PHASE), "after the restart")

        exchanges = {row[0]: row[1:] for row in ctl_rows(rabbitmq, "list_exchanges", "name", "type", "durable",
                                                          "auto_delete", "arguments")}
        assert exchanges[exchange] == ["topic", "false", "false", "[]"]  # oslo's, whoever declared it
        queues = {row[0]: row[1:] for row in ctl_rows(rabbitmq, "list_queues", "name", "durable", "auto_delete",
                                                       "arguments")}
        assert queues[model.subscriber.group] == ["false", "false", "[]"]
    finally:
        await model.close()
    health = model.runtime.state.health()
    assert health["gaps"] >= 1 and health["relists"] >= 1 and health["status"] in ("ok", "degraded"), health
    assert oslo_log.matching("NOTIFY exchange"), "oslo's log is not captured"  # so the next check can fail
    assert not oslo_log.matching(*BROKEN), oslo_log.matching(*BROKEN)


@pytest.mark.asyncio
async def test_durable_exchange_and_queue_keep_everything_across_a_restart_without_relist(
    rabbitmq: Any, clouds: list[Cloud], rabbit_groups: list[str], oslo_log: Any
) -> None:
    """A cloud with ``amqp_durable_queues = true`` and novawatch with ``?durable=true``: nothing is lost,
    so a model without any source to re-list from still ends equal to the truth."""
    exchange = unique("nova")
    cloud = Cloud(rabbitmq, exchange, durable=True)
    clouds.append(cloud)
    model = Model(f"{rabbitmq.amqp_url}?exchange={exchange}&durable=true",
                  new_group(rabbit_groups, "novawatch-model"), None)
    try:
        cloud.nova.start_server()
        await model.start(cloud.producer.truth)
        await model.equals(await cloud.act(PHASE), "after the first phase")
        cloud.producer.run(PHASE)  # oslo keeps sending (and waiting) while the broker restarts
        await asyncio.to_thread(restart, rabbitmq)
        await asyncio.to_thread(cloud.producer.wait, TIMEOUT)
        await model.equals(await cloud.act(PHASE // 4), "after the restart, without a re-list")
        exchanges = {row[0]: row[1] for row in ctl_rows(rabbitmq, "list_exchanges", "name", "durable")}
        assert exchanges[exchange] == "true"
    finally:
        await model.close()
    health = model.runtime.state.health()
    assert health["gaps"] == 0 and health["relists"] == 0 and health["status"] == "ok", health
    assert oslo_log.matching("NOTIFY exchange"), "oslo's log is not captured"  # so the next check can fail
    assert not oslo_log.matching(*BROKEN), oslo_log.matching(*BROKEN)


# --- a RabbitMQ user with exactly the documented permissions ------------------------------------------


def documented_commands() -> list[str]:
    """The shell block of docs/bus.md that creates the RabbitMQ user (the one with ``add_user``)."""
    blocks = DOCS.read_text().split("```sh\n")[1:]
    for block in blocks:
        body = block.split("```", 1)[0]
        if "rabbitmqctl add_user" in body:
            return [line for line in body.splitlines() if line.strip() and not line.startswith("#")]
    raise AssertionError(f"{DOCS} shows no rabbitmqctl add_user block")


def run_documented(rabbitmq: Any, commands: list[str], tmp: Path, password: str) -> None:
    """Run the documented commands verbatim, ``rabbitmqctl`` being the test broker's."""
    shim = tmp / "bin" / "rabbitmqctl"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(str(rabbitmq.script))} ctl {shlex.quote(str(rabbitmq.dir))} "
                    '"$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}", "NOVAWATCH_RABBIT_PASSWORD": password}
    for command in commands:
        done = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"


async def delete_nova_exchange(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url, timeout=30)
    async with connection:
        await (await connection.channel()).exchange_delete("nova")


@pytest.mark.asyncio
async def test_documented_permissions_suffice_and_a_missing_one_is_a_clear_error(
    rabbitmq: Any, clouds: list[Cloud], rabbit_groups: list[str], oslo_log: Any, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The docs' user may not create Nova's exchange: it waits for Nova. Without read permission on it,
    the model service says so once and keeps trying; the notifications Nova sent meanwhile (across a
    restart of the broker, which lost novawatch's transient queue) come back by the re-list."""
    caplog.set_level(logging.INFO, logger="novawatch")
    commands = documented_commands()
    password = unique("pw")
    with contextlib.suppress(Exception):
        rabbitmq.ctl("delete_user", "novawatch")
    run_documented(rabbitmq, commands, tmp_path, password)
    await delete_nova_exchange(rabbitmq.amqp_url)  # a broker where Nova has not started yet
    host = rabbitmq.amqp_url.split("@", 1)[1]
    cloud = Cloud(rabbitmq, "nova")
    clouds.append(cloud)
    model = Model(f"amqp://novawatch:{password}@{host}", new_group(rabbit_groups, "novawatch-model"),
                  cloud.producer.truth)
    try:
        starting = asyncio.create_task(model.start(cloud.producer.truth))
        await eventually(lambda: model.subscriber.problem, "the subscriber to report why it waits")
        assert "exchange 'nova'" in model.subscriber.problem and "waiting for a Nova service" in \
            model.subscriber.problem, model.subscriber.problem
        assert not starting.done()
        assert model.runtime.state.health()["status"] == "failing"

        cloud.nova.start_server()  # Nova declares its exchange: novawatch binds to it
        await asyncio.wait_for(starting, TIMEOUT)
        assert model.subscriber.problem is None
        await model.equals(await cloud.act(PHASE), "with the documented permissions")

        # no read permission on Nova's exchange, and the broker restarts (novawatch's queue is lost)
        rabbitmq.ctl("set_permissions", "-p", "/", "novawatch", "^novawatch-.*", "^novawatch-.*", "^novawatch-.*")
        await asyncio.to_thread(restart, rabbitmq)
        await eventually(lambda: "read permission on exchange 'nova'" in (model.subscriber.problem or ""),
                         "the subscriber to name the missing permission")
        health = model.runtime.state.health()
        assert health["status"] == "failing" and "rabbitmqctl set_permissions" in " ".join(health["problems"])
        await cloud.rpc_server_consuming()
        truth = await cloud.act(PHASE)  # published while novawatch cannot bind: lost to its queue
        assert model.snapshot() != truth

        run_documented(rabbitmq, [c for c in commands if "set_permissions" in c], tmp_path, password)
        await model.equals(truth, "after the permission is back (re-listed)")
        state = model.runtime.state
        assert state.gaps >= 1 and state.relists >= 1 and state.last_relist_repaired, state.health()
        await model.equals(await cloud.act(PHASE // 4), "streaming again")
    finally:
        await model.close()
        with contextlib.suppress(Exception):
            rabbitmq.ctl("delete_user", "novawatch")
    ours = [r for r in caplog.records if r.name.startswith("novawatch")]
    assert not [r for r in ours if r.exc_info], "no stack traces"
    said = [r for r in ours if "read permission on exchange 'nova'" in r.getMessage()]
    assert 1 <= len(said) <= 2, [r.getMessage() for r in said]  # once (again after 300 s at most)
    assert all("rabbitmqctl set_permissions -p / novawatch" in r.getMessage() for r in said)
    assert oslo_log.matching("NOTIFY exchange"), "oslo's log is not captured"  # so the next check can fail
    assert not oslo_log.matching(*BROKEN), oslo_log.matching(*BROKEN)


def test_the_readme_shows_the_documented_user_commands() -> None:
    # The README's "Connecting to a real cloud" repeats the block that the test above runs verbatim.
    readme = (DOCS.parents[1] / "README.md").read_text()
    block = next(b.split("```", 1)[0] for b in readme.split("```sh\n")[1:] if "rabbitmqctl add_user" in b)
    assert [line for line in block.splitlines() if line.strip()] == documented_commands()
