"""``compute serve --workers 2`` runs actions on different instances side by side (real processes, PostgreSQL).

The test takes locks from its own database connection, as a worker in the middle of an action holds them,
and watches which requests wait (PostgreSQL's ``pg_locks`` shows a waiting lock; no timing): an action on
instance B waits while B's lock is held, and meanwhile actions on instance A and a boot complete; with the
write lock held shared (as an action on one instance holds it) an action on A completes and a boot waits.
Same-instance races still give one success and Nova's 409s, and the database's invariants hold.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import psycopg
from computehelpers import TIMEOUT
from processkit import ComputeProcess, wait_for
from tests.api.helpers import free_port

from novawatch.compute.invariants import violations
from novawatch.compute.service import open_service
from novawatch.compute.shared import INSTANCE_LOCKS, WRITE_LOCK, instance_key
from novawatch.notifications import Notifier


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


def waiting_for(conn: psycopg.Connection[Any], *, instance: str | None = None) -> int:
    """How many connections wait for an advisory lock: ``instance``'s, or the write lock."""
    if instance is not None:
        where, args = "classid = %s AND objid = %s AND objsubid = 2", (INSTANCE_LOCKS, instance_key(instance) % 2**32)
    else:
        where, args = "classid = %s AND objid = %s AND objsubid = 1", (WRITE_LOCK >> 32, WRITE_LOCK % 2**32)
    row = conn.execute(f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND {where}",
                       args).fetchone()
    return int(row[0]) if row else 0


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
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (INSTANCE_LOCKS, instance_key(b)))
        on_b = Pending("POST", f"{url}/v1/instances/{b}/pause")
        wait_for(lambda: waiting_for(watcher, instance=b) == 1, "the action on B to wait for B's lock")
        assert httpx.post(f"{url}/v1/instances/{a}/pause", timeout=TIMEOUT).status_code == 200
        assert httpx.post(f"{url}/v2.1/servers/{a}/action", json={"unpause": None}, timeout=TIMEOUT).status_code == 202
        booted = httpx.post(url + "/v1/instances", json={"name": "c", "flavor": "m1.tiny"}, timeout=TIMEOUT)
        assert booted.status_code == 202, booted.text
        assert on_b.answer is None and waiting_for(watcher, instance=b) == 1  # still waiting
        holder.execute("SELECT pg_advisory_unlock(%s, %s)", (INSTANCE_LOCKS, instance_key(b)))
        assert on_b.result().status_code == 200
        assert httpx.get(f"{url}/v1/instances/{b}").json()["vm_state"] == "paused"

        # The write lock held shared (as an action on one instance holds it): an action on A goes on, a boot
        # waits (and, queued, makes later actions wait behind it: PostgreSQL lets no writer starve).
        holder.execute("SELECT pg_advisory_lock_shared(%s)", (WRITE_LOCK,))
        changed = httpx.post(f"{url}/v1/instances/{a}/metadata", json={"metadata": {"k": "v"}}, timeout=TIMEOUT)
        assert changed.status_code == 200, changed.text
        boot = Pending("POST", url + "/v1/instances", {"name": "d", "flavor": "m1.tiny"})
        wait_for(lambda: waiting_for(watcher) == 1, "the boot to wait for the write lock")
        holder.execute("SELECT pg_advisory_unlock_shared(%s)", (WRITE_LOCK,))
        assert boot.result().status_code == 202

        # Four simultaneous pauses of one instance: one wins, the others meet its task or state (409).
        racers = [Pending("POST", f"{url}/v1/instances/{a}/pause") for _ in range(4)]
        assert sorted(r.result().status_code for r in racers) == [200, 409, 409, 409]
        shown = httpx.get(f"{url}/v1/instances/{a}").json()
        assert shown["vm_state"] == "paused" and shown["metadata"] == {"k": "v"}
    finally:
        service.stop()
        holder.close()
        watcher.close()

    svc = open_service(pg_database, Notifier([]))
    try:
        assert violations(svc) == []
        assert {a, b} <= set(svc.instances) and svc.instances[a].metadata_ == {"k": "v"}
    finally:
        svc.close()
