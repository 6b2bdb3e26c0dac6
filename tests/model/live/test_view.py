"""The node query: answered from orders kept current by change events, the same as a scan would answer it."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # modelkit
from modelkit import NODES, UUIDS, instance, service

from novawatch.model import Consumer, from_snapshot
from novawatch.model.live.view import NODE_SORTS, NodeQuery, StoreView
from novawatch.snapshot import NodeRecord, build

HOSTS = [f"host-{i:02d}" for i in range(12)]
SORTS = [s for name in NODE_SORTS for s in (name, f"-{name}")]


def cloud() -> tuple[Consumer, StoreView]:
    nodes = [NodeRecord(uuid=NODES[i], host=h, hypervisor_hostname=h, vcpus=16, memory_mb=32768, local_gb=400)
             for i, h in enumerate(HOSTS)]
    consumer = Consumer(from_snapshot(build(nodes, [])))
    return consumer, StoreView(consumer.cluster)


def both(view: StoreView, q: NodeQuery) -> None:
    """The view's answer (from an order when it can) equals the scan's, page and total."""
    total, page = view.query_nodes(q)
    scanned_total, scanned = view._scan_nodes(q)
    assert (total, [n.uuid for n in page]) == (scanned_total, [n.uuid for n in scanned]), q
    assert page == scanned


@settings(max_examples=40, deadline=None)
@given(st.randoms(use_true_random=False))
def test_ordered_answers_equal_a_scan_while_the_model_changes(rng: random.Random) -> None:
    consumer, view = cloud()
    for step in range(1, 120):
        roll = rng.random()
        if roll < 0.7:
            i = rng.randrange(40)
            flavor = (rng.choice((1, 2, 4)), rng.choice((512, 2048, 4096)), rng.choice((1, 10, 20)), 0, 0)
            event = rng.choice(("instance.update", "instance.create.end", "instance.live_migration_post.end"))
            consumer.process(instance(event, UUIDS[i], when=step, host=rng.choice(HOSTS), flavor=flavor))
        elif roll < 0.8:
            consumer.process(instance("instance.delete.end", UUIDS[rng.randrange(40)], when=step, state="deleted"))
        else:
            consumer.process(service("service.update", rng.choice(HOSTS), when=step, disabled=rng.random() < 0.5,
                                     forced_down=rng.random() < 0.3))
        if step % 10 == 0:
            sort = rng.choice(SORTS)
            own = {"free_ram_mb": "min_free_ram_mb", "free_vcpus": "min_free_vcpus",
                   "free_disk_gb": "min_free_disk_gb"}.get(sort.lstrip("-"))
            minimum = {own: rng.choice((0, 16000, 30000, 32768, 10, 200, 390))} if own and rng.random() < 0.7 else {}
            if rng.random() < 0.4:  # a capacity query: several minimums at once, whatever the sort
                keys = rng.sample(["min_free_ram_mb", "min_free_vcpus", "min_free_disk_gb"], rng.choice((2, 3)))
                minimum = {k: rng.choice({"min_free_ram_mb": (0, 2048, 16000, 30000), "min_free_vcpus": (0, 4, 12, 15),
                                          "min_free_disk_gb": (0, 10, 390)}[k]) for k in keys}
            q = NodeQuery(sort=sort, state=rng.choice((None, "up", "down")),
                          status=rng.choice((None, "enabled", "disabled")), limit=rng.choice((1, 3, 100)),
                          offset=rng.choice((0, 2)), **minimum)
            both(view, q)
    assert consumer.cluster.store.check() == []


def test_the_free_capacity_query_follows_usage_and_status() -> None:
    consumer, view = cloud()
    consumer.process(instance("instance.create.end", UUIDS[0], when=1, host="host-00", flavor=(1, 30000, 1, 0, 0)))
    q = NodeQuery(min_free_ram_mb=8192, state="up", status="enabled", sort="-free_ram_mb", limit=100)
    total, page = view.query_nodes(q)
    assert total == 11 and "host-00" not in [n.host for n in page]
    consumer.process(service("service.update", "host-01", when=2, disabled=True))
    total, page = view.query_nodes(q)
    assert total == 10 and "host-01" not in [n.host for n in page]
    consumer.process(instance("instance.delete.end", UUIDS[0], when=3, host="host-00", state="deleted"))
    total, page = view.query_nodes(q)
    assert total == 11 and page[-1].host == "host-11"  # ties by host


def test_a_query_the_orders_cannot_answer_is_scanned() -> None:
    consumer, view = cloud()
    consumer.process(instance("instance.create.end", UUIDS[0], when=1, host="host-03", flavor=(1, 1024, 1, 0, 0)))
    for q in (NodeQuery(host="host-0*"), NodeQuery(project="6f70656e737461636b20342065766572"),
              NodeQuery(min_free_vcpus=1, sort="-free_ram_mb")):
        both(view, q)
    assert view.query_nodes(NodeQuery(host="host-03"))[0] == 1


def test_an_unknown_sort_is_an_error_that_lists_the_sorts() -> None:
    _consumer, view = cloud()
    with pytest.raises(ValueError, match="free_ram_mb"):
        view.query_nodes(NodeQuery(sort="-memory"))
