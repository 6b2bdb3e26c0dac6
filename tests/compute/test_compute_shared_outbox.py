"""The workers' outbox relay (``compute/shared_outbox.py``) on a real PostgreSQL: the relaying worker sends its
own commits from memory and the other workers' from the table, in id order, once; when it dies between
commit and send, another worker's relay sends what it left, from the table, in id order.

The relays here run their rounds when the test says (no relay thread), so the interleavings are exact.
"""

from __future__ import annotations

from typing import Any

from computehelpers import act, published
from processkit import wait_for
from sqlalchemy import text

from novawatch.bus import open_publisher
from novawatch.compute.service import ComputeService, open_service
from novawatch.compute.shared_outbox import SharedOutbox
from novawatch.notifications import Notifier


def worker(url: str, bus_url: str, **options: Any) -> tuple[ComputeService, SharedOutbox]:
    """A worker whose outbox relays only when the test calls ``relay()``."""
    svc = open_service(url, Notifier([]), shared=True)
    outbox = SharedOutbox(svc.repo.engine, open_publisher(bus_url), **options)
    svc.attach_outbox(outbox)
    return svc, outbox


def flavor(svc: ComputeService, name: str) -> None:
    act(svc, lambda s: s.create_flavor(name, vcpus=1, memory_mb=64, root_gb=0))


def flavors_sent(group: Any) -> list[str]:
    """The names in the flavor.create notifications on the bus, in the order they arrived (repeats kept)."""
    return [n["payload"]["nova_object.data"]["name"] for n in published(group) if n["event_type"] == "flavor.create"]


def relay_all(outbox: SharedOutbox) -> None:
    while outbox.relay(timeout=30):
        pass


def outbox_rows(svc: ComputeService) -> int:
    with svc.repo.engine.connect() as conn:
        return int(conn.scalar(text("SELECT count(*) FROM notification_outbox")) or 0)


def test_the_relay_sends_its_own_commits_from_memory_and_the_others_from_the_table_in_id_order(
        pg: str, bus: tuple[str, Any]) -> None:
    # poll_interval 0: each round deletes what the bus confirmed at once (no deferred delete to wait for)
    (a, relay_a), (b, relay_b) = worker(pg, bus[0], poll_interval=0.0), worker(pg, bus[0])
    try:
        assert relay_a.relay() == 0 and relay_a.relaying  # a leads (an empty table)
        assert relay_b.relay() == 0 and not relay_b.relaying
        order = ["a1", "b1", "a2", "a3", "b2", "a4"]
        for name in order:
            flavor(a if name[0] == "a" else b, name)
        relay_all(relay_a)
        assert relay_b.relay() == 0  # the standby sends nothing
        assert flavors_sent(bus[1]) == order  # commit order, each once, whichever worker committed
        assert outbox_rows(a) == 0
        # a run of its own commits goes out from memory, without reading the table
        reads = relay_a.table_reads
        for name in ("a5", "a6", "a7"):
            flavor(a, name)
        relay_all(relay_a)
        assert flavors_sent(bus[1]) == [*order, "a5", "a6", "a7"]
        status = relay_a.status()  # as health reports it
        assert status["table_reads"] == reads + 1 and status["memory_rounds"] >= 1  # the last look found nothing
    finally:
        a.close()
        b.close()


def test_a_relaying_worker_that_dies_between_commit_and_send_loses_nothing(pg: str, bus: tuple[str, Any]) -> None:
    (a, relay_a), (b, relay_b) = worker(pg, bus[0]), worker(pg, bus[0])
    try:
        assert relay_a.relay() == 0 and relay_a.relaying
        flavor(a, "sent")
        relay_all(relay_a)
        order = ["a1", "a2", "b1", "a3"]
        for name in order:
            flavor(a if name[0] == "a" else b, name)  # committed; a holds its own in memory, unsent
        # a dies: its connections go (PostgreSQL releases the relay lock with them) and its relay never runs again
        conn = relay_a._conn
        assert conn is not None
        conn.invalidate()
        # PostgreSQL releases the lock once a's server process has gone, a moment after the client closed
        wait_for(lambda: relay_b.relay() >= 0 and relay_b.relaying, "b to take the relay lock")
        relay_all(relay_b)
        # what a did not send goes out from the table, in id order, once; what the bus had confirmed may come
        # again (at least once: its delete waited for the next one, up to poll_interval)
        sent = flavors_sent(bus[1])
        assert sent[0] == "sent" and sent[1:].count("sent") <= 1
        assert [name for name in sent[1:] if name != "sent"] == order
        flavor(b, "b2")
        flavor(b, "b3")
        relay_all(relay_b)
        assert flavors_sent(bus[1])[len(sent):] == ["b2", "b3"]
    finally:
        a.close()
        b.close()
    # b gave the relay lock back after deleting what the bus had confirmed
    (c, relay_c) = worker(pg, bus[0])
    try:
        assert outbox_rows(c) == 0
        assert relay_c.relay() == 0 and relay_c.relaying
    finally:
        c.close()
