"""``compute serve --workers 2`` runs actions on different instances side by side (real processes, PostgreSQL).

The tests take locks from their own database connection, as a worker in the middle of an action holds them,
and watch which requests wait (PostgreSQL's ``pg_locks`` shows a waiting lock; no timing):

- an action on instance B waits while B's lock is held, and meanwhile actions on instance A and a boot
  complete; with the write lock held shared (as an action on one instance holds it) an action on A and a
  boot complete and a new flavor (a write that runs alone) waits. Same-instance races give one success
  and Nova's 409s;
- twenty boots at once across the workers, on room for twelve: exactly twelve run, no node is booked past
  its size, the node rows hold the claims, no address is handed out twice;
- a delete waits for the lock of its instance's host only: while host X's lock is held, a delete on X waits
  and a delete and a boot on Y complete; four deletes on X released at once run one after another, the usage stored
  in each node row equals what its remaining instances claim (without the host lock they run side by side
  and the last commit's usage wins), and a model fed only by the bus equals the database;
- a worker told to stop (SIGTERM) while one of its requests waits for a lock answers it 503 at once
  (nothing was changed) and exits while the lock is still held; the other worker goes on.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from computehelpers import TIMEOUT, Listener, advisory_lock, lock_waiters, reopened_consistent
from processkit import ComputeProcess, assert_bus_fed_model_is, published_through, wait_for
from tests.api.helpers import free_port

from novawatch import snapshot
from novawatch.compute.shared import HOST_LOCKS, INSTANCE_LOCKS, WRITE_LOCK, lock_key


class Pending:
    """One request sent from a thread of its own; :attr:`answer` once it returned."""

    def __init__(self, method: str, url: str, body: Any = None) -> None:
        self.answer: httpx.Response | None = None
        self.thread = threading.Thread(target=self._send, args=(method, url, body), daemon=True)
        self.thread.start()

    def _send(self, method: str, url: str, body: Any) -> None:
        with httpx.Client(timeout=TIMEOUT) as client:
            self.answer = client.request(method, url, json=body)

    def result(self) -> httpx.Response:
        self.thread.join(TIMEOUT)
        assert self.answer is not None, "the request did not return"
        return self.answer


def _lock(instance: str | None, host: str | None) -> tuple[str, tuple[int, int]]:
    if instance is not None:
        return advisory_lock(INSTANCE_LOCKS, instance)
    return advisory_lock(HOST_LOCKS, host) if host is not None else advisory_lock()


def waiting_for(conn: psycopg.Connection[Any], *, instance: str | None = None, host: str | None = None) -> int:
    """How many connections wait for an advisory lock: ``instance``'s, ``host``'s, or the write lock."""
    return lock_waiters(conn, _lock(instance, host))


def waiting_worker(conn: psycopg.Connection[Any], *, instance: str) -> int | None:
    """The process id of the worker whose request waits for ``instance``'s lock (its lock connection's
    ``application_name``), or None."""
    where, args = _lock(instance, None)
    row = conn.execute("SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                       f"WHERE l.locktype = 'advisory' AND NOT l.granted AND {where}", args).fetchone()
    return int(row[0].rsplit("-", 1)[1]) if row and row[0].startswith("novawatch-compute-worker-") else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def two_workers(url: str, tmp_path: Path, *more: str) -> ComputeProcess:
    port = free_port()
    return ComputeProcess(
        ["compute", "serve", "--workers", "2", "--port", str(port), "--data-dir", str(tmp_path / "state"),
         "--database-url", url, "--hosts", "2", "--failure-rate", "0", *more],
        tmp_path / "compute.log", f"http://127.0.0.1:{port}")


def boot(url: str, name: str, host: str | None = None) -> str:
    body = {"name": name, "flavor": "m1.tiny"} | ({"host": host} if host else {})
    answer = httpx.post(url + "/v1/instances", json=body, timeout=TIMEOUT)
    assert answer.status_code == 202 and answer.json()["vm_state"] == "active", answer.text
    return str(answer.json()["uuid"])


def test_actions_on_different_instances_do_not_wait_for_each_other(pg_database: str, tmp_path: Path) -> None:
    port = free_port()
    service = ComputeProcess(
        ["compute", "serve", "--workers", "2", "--port", str(port), "--data-dir", str(tmp_path / "state"),
         "--database-url", pg_database, "--hosts", "2", "--failure-rate", "0"],
        tmp_path / "compute.log", f"http://127.0.0.1:{port}")
    url = service.url
    holder = psycopg.connect(pg_database, autocommit=True)  # the test's own hand on the locks
    watcher = psycopg.connect(pg_database, autocommit=True)
    try:
        service.start()
        a, b = (httpx.post(url + "/v1/instances", json={"name": n, "flavor": "m1.tiny"}, timeout=TIMEOUT).json()["uuid"]
                for n in ("a", "b"))

        # B's lock is taken: an action on B waits for it, actions on A and a boot go on.
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (INSTANCE_LOCKS, lock_key(b)))
        on_b = Pending("POST", f"{url}/v1/instances/{b}/pause")
        wait_for(lambda: waiting_for(watcher, instance=b) == 1, "the action on B to wait for B's lock")
        assert httpx.post(f"{url}/v1/instances/{a}/pause", timeout=TIMEOUT).status_code == 200
        assert httpx.post(f"{url}/v2.1/servers/{a}/action", json={"unpause": None}, timeout=TIMEOUT).status_code == 202
        booted = httpx.post(url + "/v1/instances", json={"name": "c", "flavor": "m1.tiny"}, timeout=TIMEOUT)
        assert booted.status_code == 202, booted.text
        assert on_b.answer is None and waiting_for(watcher, instance=b) == 1  # still waiting
        holder.execute("SELECT pg_advisory_unlock(%s, %s)", (INSTANCE_LOCKS, lock_key(b)))
        assert on_b.result().status_code == 200
        assert httpx.get(f"{url}/v1/instances/{b}").json()["vm_state"] == "paused"

        # The write lock held shared (as an action on one instance holds it): an action on A and a boot (it
        # holds its host's lock and the write lock shared) go on; a write that runs alone (a new flavor) waits
        # (and, queued, makes later actions wait behind it: PostgreSQL lets no writer starve).
        holder.execute("SELECT pg_advisory_lock_shared(%s)", (WRITE_LOCK,))
        changed = httpx.post(f"{url}/v1/instances/{a}/metadata", json={"metadata": {"k": "v"}}, timeout=TIMEOUT)
        assert changed.status_code == 200, changed.text
        boot(url, "d")  # not held up by the shared write lock (it asserts the answer)
        flavor = Pending("POST", url + "/v1/flavors", {"name": "m1.odd", "vcpus": 1, "memory_mb": 128, "root_gb": 1})
        wait_for(lambda: waiting_for(watcher) == 1, "the new flavor to wait for the write lock")
        holder.execute("SELECT pg_advisory_unlock_shared(%s)", (WRITE_LOCK,))
        assert flavor.result().status_code == 201

        # Four simultaneous pauses of one instance: one wins, the others meet its task or state (409).
        racers = [Pending("POST", f"{url}/v1/instances/{a}/pause") for _ in range(4)]
        assert sorted(r.result().status_code for r in racers) == [200, 409, 409, 409]
        shown = httpx.get(f"{url}/v1/instances/{a}").json()
        assert shown["vm_state"] == "paused" and shown["metadata"] == {"k": "v"}
    finally:
        service.stop()
        holder.close()
        watcher.close()

    with reopened_consistent(pg_database) as (svc, _):
        assert {a, b} <= set(svc.instances) and svc.instances[a].metadata_ == {"k": "v"}


def test_a_delete_waits_for_its_instances_host_only(pg_database: str, rabbitmq: Any, tmp_path: Path) -> None:
    bus = f"{rabbitmq.oslo_url}?exchange=hosts-{uuid.uuid4().hex[:8]}"
    service = two_workers(pg_database, tmp_path, "--bus", bus)
    url = service.url
    holder = psycopg.connect(pg_database, autocommit=True)
    watcher = psycopg.connect(pg_database, autocommit=True)
    listener: Listener | None = None
    try:
        service.start()
        wait_for(lambda: service.health()["outbox"]["unsent"] == 0, "the seeded cloud's notifications to leave")
        listener = Listener(bus)
        initial = snapshot.loads(httpx.get(url + "/v1/snapshot").content)
        x1, x2, x3, x4, x5 = (boot(url, n, "host-0001") for n in ("x1", "x2", "x3", "x4", "x5"))
        y1 = boot(url, "y1", "host-0002")

        # Host X's lock is taken (as a delete on X holds it): a delete on X waits for it, whichever worker it
        # reached; a delete on Y, and a one-instance action on X (shelve keeps the host's usage), go on.
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (HOST_LOCKS, lock_key("host-0001")))
        on_x = [Pending("DELETE", f"{url}/v1/instances/{x1}")]
        wait_for(lambda: waiting_for(watcher, host="host-0001") == 1, "the delete on X to wait for X's lock")
        gone = httpx.delete(f"{url}/v1/instances/{y1}", timeout=TIMEOUT)
        assert gone.status_code == 202, gone.text
        shelved = httpx.post(f"{url}/v1/instances/{x5}/shelve", timeout=TIMEOUT)
        assert shelved.status_code == 200 and shelved.json()["instance"]["vm_state"] == "shelved", shelved.text
        y2 = boot(url, "y2", "host-0002")  # a boot on Y (it holds Y's lock) goes on too
        assert on_x[0].answer is None and waiting_for(watcher, host="host-0001") == 1

        # Three more deletes on X queue behind it. With the write lock held too, X's lock released: one
        # delete takes it and waits for the write lock, the others still wait for X's. Released, they all
        # run, one after the other: each catches up with the one before (no lost update of X's usage).
        holder.execute("SELECT pg_advisory_lock(%s)", (WRITE_LOCK,))
        on_x += [Pending("DELETE", f"{url}/v2.1/servers/{x2}"), Pending("DELETE", f"{url}/v1/instances/{x3}"),
                 Pending("DELETE", f"{url}/v1/instances/{x4}")]
        # (a worker that has not seen an instance yet guesses no host: its delete waits for the write lock first)
        wait_for(lambda: waiting_for(watcher, host="host-0001") + waiting_for(watcher) == 4,
                 "four deletes to wait for X's lock (or, not knowing the instance yet, for the write lock)")
        on_x_lock = waiting_for(watcher, host="host-0001")
        assert on_x_lock >= 1  # the first delete, whose worker knew the instance, waits for X's lock
        holder.execute("SELECT pg_advisory_unlock(%s, %s)", (HOST_LOCKS, lock_key("host-0001")))
        wait_for(lambda: (waiting_for(watcher, host="host-0001"), waiting_for(watcher))
                 == (on_x_lock - 1, 5 - on_x_lock), "one delete to hold X's lock and wait for the write lock")
        holder.execute("SELECT pg_advisory_unlock(%s)", (WRITE_LOCK,))
        assert [p.result().status_code for p in on_x] == [202, 204, 202, 202]

        listed = {i["uuid"]: i for i in httpx.get(url + "/v1/instances", params={"limit": 100}).json()["instances"]}
        assert {x5, y2} <= set(listed) and not {x1, x2, x3, x4, y1} & set(listed)
        received, truth = published_through(url, listener, "hosts-end")
    finally:
        service.stop()
        holder.close()
        watcher.close()
        if listener is not None:
            listener.close()

    # No lost update: each node row holds what its remaining instances claim (x5 alone on X, nothing on Y).
    with reopened_consistent(pg_database) as (svc, expected):
        assert expected[svc.nodes["host-0001"].uuid][3] == 1 and expected[svc.nodes["host-0002"].uuid][3] == 1
    assert_bus_fed_model_is(initial, received, truth)


def test_a_worker_stopped_while_its_request_waits_answers_it_and_exits(pg_database: str, tmp_path: Path) -> None:
    service = two_workers(pg_database, tmp_path)
    url = service.url
    holder = psycopg.connect(pg_database, autocommit=True)
    watcher = psycopg.connect(pg_database, autocommit=True)
    try:
        service.start()
        a, b = boot(url, "a"), boot(url, "b")
        before = httpx.get(f"{url}/v1/instances/{a}").json()

        # A's lock is held; a pause of A waits in one of the workers. That worker is told to stop.
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (INSTANCE_LOCKS, lock_key(a)))
        on_a = Pending("POST", f"{url}/v1/instances/{a}/pause")
        pid = wait_for(lambda: waiting_worker(watcher, instance=a), "the pause of A to wait for A's lock")
        os.kill(pid, signal.SIGTERM)

        # Answered at once, and the worker exits, while the test still holds the lock it waited for.
        answer = on_a.result()
        assert answer.status_code == 503, answer.text
        assert "stopping" in answer.json()["error"] and "nothing was changed" in answer.json()["error"]
        wait_for(lambda: not alive(pid), "the stopped worker to exit")
        assert waiting_for(watcher, instance=a) == 0

        # The other worker (and the one started in its place) go on; nothing of the pause was written.
        paused = httpx.post(f"{url}/v1/instances/{b}/pause", timeout=TIMEOUT)
        assert paused.status_code == 200, paused.text
        now = httpx.get(f"{url}/v1/instances/{a}").json()
        assert (now["vm_state"], now["task_state"], now["updated_at"]) == ("active", None, before["updated_at"])
        holder.execute("SELECT pg_advisory_unlock(%s, %s)", (INSTANCE_LOCKS, lock_key(a)))
        again = httpx.post(f"{url}/v1/instances/{a}/pause", timeout=TIMEOUT)
        assert again.status_code == 200, again.text
    finally:
        service.stop()
        holder.close()
        watcher.close()

    with reopened_consistent(pg_database) as (svc, _):
        assert svc.instances[a].vm_state == "paused" and svc.instances[b].vm_state == "paused"
        with psycopg.connect(pg_database) as conn:
            pauses = conn.execute("SELECT count(*) FROM instance_actions WHERE instance_uuid = %s AND action = "
                                  "'pause'", (a,)).fetchone()
        assert pauses is not None and pauses[0] == 1  # the stopped worker's request left no record


def test_concurrent_boots_on_a_cloud_with_room_for_fewer_take_each_slot_once(pg_database: str,
                                                                              tmp_path: Path) -> None:
    """Twenty boots at once, across two workers, on three hosts with room for four each: exactly twelve run
    (the others are refused by the scheduler: ERROR, no valid host), no node is booked past its size, the
    node rows hold what the instances claim, and no two ports share an address."""
    service = two_workers(pg_database, tmp_path, "--hosts", "0")
    url = service.url
    try:
        service.start()
        for n in range(3):
            made = httpx.post(url + "/v1/services", json={"host": f"big-{n}", "vcpus": 32, "memory_mb": 4096,
                                                          "local_gb": 1000}, timeout=TIMEOUT)
            assert made.status_code == 201, made.text
        flavor = {"name": "m1.quarter", "vcpus": 1, "memory_mb": 1024, "root_gb": 1}
        assert httpx.post(url + "/v1/flavors", json=flavor, timeout=TIMEOUT).status_code == 201
        boots = [Pending("POST", url + "/v1/instances", {"name": f"b{n}", "flavor": "m1.quarter"}) for n in range(20)]
        answers = [b.result() for b in boots]
        assert all(a.status_code == 202 for a in answers), [a.text for a in answers if a.status_code != 202]
        states = sorted(a.json()["vm_state"] for a in answers)
        assert states == ["active"] * 12 + ["error"] * 8
    finally:
        service.stop()

    with reopened_consistent(pg_database) as (svc, expected):
        assert sorted(expected[node.uuid] for node in svc.nodes.values()) == [(4, 4096, 4, 4)] * 3
        addresses = [ip["address"] for inst in svc.instances.values() for vif in inst.info_cache.network_info
                     for subnet in vif["network"]["subnets"] for ip in subnet["ips"]]
        assert len(addresses) == 12 * 2 and len(set(addresses)) == len(addresses)
