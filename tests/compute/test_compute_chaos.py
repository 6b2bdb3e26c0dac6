"""Chaos: ``novawatch compute serve`` killed with SIGKILL again and again during a burst of actions.

A real service process (SQLite or PostgreSQL; the embedded bus or RabbitMQ) serves concurrent clients
booting, moving, pausing, resizing, attaching and deleting instances (with 5 % of hypervisor calls
failing, so ``*.error`` notifications are in the stream). It is killed mid-burst several times and
restarted each time. Afterwards a data model fed only from the bus (bootstrapped from the snapshot taken
before the burst; no audit, no source) must equal the database, and the bus must hold no notification
about an instance the database never had. The outcome does not depend on when the kills land.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from computehelpers import Listener
from processkit import Burst, ComputeProcess, assert_bus_fed_model_is, instance_uuids, published_through, wait_for
from sqlalchemy import create_engine, select
from tests.api.helpers import free_port

from novawatch import snapshot
from novawatch.compute import db
from novawatch.compute.repository import normalize_url

KILLS = 3  #: SIGKILLs per run
ANSWERED_BETWEEN_KILLS = 15  #: write requests the service answers between two kills
CLIENTS = 4
HOSTS = 4


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of the test's own: a SQLite file, or a new database in the session's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'compute.sqlite3'}"
        return
    with request.getfixturevalue("postgres_server").database("chaos") as url:
        yield url


@pytest.fixture(params=["embedded", "rabbit"])
def bus(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "embedded":
        return f"embedded://{tmp_path / 'bus'}"
    broker = request.getfixturevalue("rabbitmq")
    return f"{broker.oslo_url}?exchange=chaos-{uuid.uuid4().hex[:8]}"


def test_sigkill_during_a_burst_leaves_the_bus_and_the_database_in_agreement(
        database: str, bus: str, tmp_path: Path) -> None:
    port = free_port()
    service = ComputeProcess(
        ["compute", "serve", "--port", str(port), "--bus", bus, "--data-dir", str(tmp_path / "state"),
         "--database-url", database, "--hosts", str(HOSTS), "--failure-rate", "0.05"],
        tmp_path / "compute.log", f"http://127.0.0.1:{port}")
    listener: Listener | None = None
    burst = Burst(service.url, seed=7)
    try:
        service.start()
        wait_for(lambda: service.health()["outbox"]["unsent"] == 0, "the seeded cloud's notifications to leave")
        listener = Listener(bus)  # from here on the model's queue keeps everything published
        initial = snapshot.loads(httpx.get(service.url + "/v1/snapshot").content)
        assert len(initial.nodes) == HOSTS

        burst.run(CLIENTS)
        for _ in range(KILLS):
            mark = burst.answered_now()
            wait_for(lambda m=mark: burst.answered_now() >= m + ANSWERED_BETWEEN_KILLS,  # type: ignore[misc]
                     "the clients to get answers")
            service.kill()  # mid-burst: the clients have requests in flight
            service.start()
        mark = burst.answered_now()
        wait_for(lambda: burst.answered_now() >= mark + ANSWERED_BETWEEN_KILLS, "answers after the last restart")
        burst.join()
        assert not [s for s in burst.statuses if s >= 500], burst.statuses
        assert burst.statuses[202] > 0 and burst.dropped > 0, (burst.statuses, burst.dropped)

        received, truth = published_through(service.url, listener, "chaos-end")
        assert service.health()["outbox"]["unsent"] == 0

        assert_bus_fed_model_is(initial, received, truth)

        # No notification about an instance the database never had (a create that was not committed).
        engine = create_engine(normalize_url(database))
        with engine.connect() as conn:
            rows = set(conn.scalars(select(db.Instance.uuid)))
        engine.dispose()
        mentioned = set().union(*(instance_uuids(n) for n in received))
        assert mentioned <= rows, sorted(mentioned - rows)[:5]
        assert len(mentioned) > 10 and len(truth.instances) > 0
    finally:
        burst.stop.set()
        service.stop()
        if listener is not None:
            listener.close()
