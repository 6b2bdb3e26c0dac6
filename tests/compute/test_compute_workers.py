"""``novawatch compute serve --workers 4`` on PostgreSQL, driven by concurrent HTTP clients.

Real processes (four forked workers on one port), a real PostgreSQL and a real RabbitMQ. Clients act on
a small cloud (many actions on the same instances); the test checks that same-instance actions are
serialised (one of four simultaneous live migrations wins, the others get 409), that one worker killed
with SIGKILL mid-burst is replaced and the others go on, that the database's invariants hold (no host
over capacity, usage equal to the instances' claims), that the notifications of each instance arrived in
the order of its changes, and that a model fed only from the bus equals the database.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from computehelpers import TIMEOUT, Listener, reopened_consistent
from processkit import Burst, ComputeProcess, assert_bus_fed_model_is, instance_uuids, published_through, wait_for
from tests.api.helpers import free_port

from novawatch import snapshot
from novawatch.notifications.message import parse_timestamp

WORKERS = 4
CLIENTS = 6
HOSTS = 3  #: few hosts: boots compete for the same nodes' capacity


def workers_of(pid: int) -> list[int]:
    """The process ids of ``pid``'s children (the forked workers), from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may hold spaces: the fields after it are fixed
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def race(url: str, path: str, body: Any = None) -> list[httpx.Response]:
    """``POST path`` from four threads released at once (each may reach another worker); the responses."""
    start = threading.Barrier(4)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def one() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            start.wait(TIMEOUT)
            answer = client.post(path, json=body)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    return answers


def test_four_workers_serialise_actions_and_agree_with_the_bus(
        pg_database: str, rabbitmq: Any, tmp_path: Path) -> None:
    bus = f"{rabbitmq.oslo_url}?exchange=workers-{uuid.uuid4().hex[:8]}"
    port = free_port()
    service = ComputeProcess(
        ["compute", "serve", "--workers", str(WORKERS), "--port", str(port), "--bus", bus,
         "--data-dir", str(tmp_path / "state"), "--database-url", pg_database, "--hosts", str(HOSTS),
         "--failure-rate", "0"],
        tmp_path / "compute.log", f"http://127.0.0.1:{port}")
    listener: Listener | None = None
    burst = Burst(service.url, seed=11)
    try:
        service.start()
        assert service.proc is not None
        wait_for(lambda: len(workers_of(service.proc.pid)) == WORKERS, "the four workers")  # type: ignore[union-attr]
        wait_for(lambda: service.health()["outbox"]["unsent"] == 0, "the seeded cloud's notifications to leave")
        listener = Listener(bus)  # from here on the model's queue keeps everything published
        initial = snapshot.loads(httpx.get(service.url + "/v1/snapshot").content)
        assert len(initial.nodes) == HOSTS  # one worker seeded the cloud, the others found it

        # One instance, four simultaneous live migrations (each worker may take one): exactly one starts,
        # the others find it migrating (Nova's 409), whichever worker they reached.
        booted = httpx.post(service.url + "/v1/instances", json={"name": "race", "flavor": "m1.tiny"}, timeout=60)
        assert booted.status_code == 202, booted.text
        raced = booted.json()["uuid"]
        statuses = sorted(r.status_code for r in race(service.url, f"/v1/instances/{raced}/live_migrate"))
        assert statuses == [200, 409, 409, 409]
        shown = httpx.get(f"{service.url}/v1/instances/{raced}").json()
        assert shown["task_state"] == "migrating"  # every worker sees the winner's change
        done = httpx.post(f"{service.url}/v1/instances/{raced}/live_migration_complete", timeout=60)
        assert done.status_code in (200, 202), done.text

        # A host with room for one m1.small (2,048 MB of RAM at a 1.5 ratio, 20 GB of disk at 1.0), four
        # simultaneous boots forced onto it: one lands there, the capacity is never booked twice.
        small = httpx.post(service.url + "/v1/services", json={"host": "small-host", "vcpus": 1, "memory_mb": 2048,
                                                             "local_gb": 20})
        assert small.status_code == 201, small.text
        race(service.url, "/v1/instances", {"name": "squeeze", "flavor": "m1.small", "host": "small-host"})
        listed = httpx.get(service.url + "/v1/instances", params={"limit": 1000}).json()["instances"]
        landed = [i for i in listed if i["host"] == "small-host" and i["vm_state"] == "active"]
        assert len(landed) == 1, landed

        burst.run(CLIENTS)
        wait_for(lambda: burst.answered_now() >= 80, "the clients to get answers")
        victims = workers_of(service.proc.pid)
        os.kill(victims[0], signal.SIGKILL)  # mid-burst: its clients lose their requests, the others go on
        mark = burst.answered_now()
        wait_for(lambda: burst.answered_now() >= mark + 80, "answers after a worker was killed")
        wait_for(lambda: len(set(workers_of(service.proc.pid)) - set(victims)) == 1,  # type: ignore[union-attr]
                 "a worker to replace the killed one")
        burst.join()
        assert not [s for s in burst.statuses if s >= 500], burst.statuses
        assert burst.statuses[202] > 0 and burst.statuses[409] > 0, burst.statuses

        received, truth = published_through(service.url, listener, "workers-end")
        wait_for(lambda: service.health()["outbox"]["unsent"] == 0, "the outbox to be empty")
    finally:
        burst.stop.set()
        service.stop()
        if listener is not None:
            listener.close()

    # The database's invariants, checked on the rows the workers left.
    with reopened_consistent(pg_database) as (svc, _):
        assert len(svc.instances) == len(truth.instances) > 0

    # Each instance's notifications arrived in the order of its changes: a worker emits about an instance
    # only holding its lock or the exclusive write lock, so per instance emission time is commit order (a
    # re-send after the kill repeats a message_id: skipped).
    seen: set[str] = set()
    last: dict[str, Any] = {}
    mentioned: set[str] = set()
    for note in received:
        if note["message_id"] in seen:
            continue
        seen.add(note["message_id"])
        moment = parse_timestamp(note["timestamp"])
        for uuid_ in instance_uuids(note):
            mentioned.add(uuid_)
            assert uuid_ not in last or last[uuid_] <= moment, (uuid_, note["event_type"], last[uuid_], moment)
            last[uuid_] = moment
    assert len(mentioned) > 10

    # A model fed only from the bus equals the database.
    assert_bus_fed_model_is(initial, received, truth)


def test_several_workers_on_sqlite_are_refused_with_the_reason(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from novawatch.cli import main

    db_file = tmp_path / "compute.sqlite3"
    code = main(["compute", "serve", "--workers", "2", "--port", str(free_port()), "--data-dir", str(tmp_path),
                 "--database-url", f"sqlite:///{db_file}"])
    err = capsys.readouterr().err
    assert code == 2  # a command error
    assert "--workers 2 needs PostgreSQL" in err and "--workers 1" in err, err
    assert not db_file.exists()  # refused before anything was created


def test_a_worker_count_out_of_range_is_a_configuration_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from novawatch.cli import main

    code = main(["compute", "serve", "--workers", "0", "--port", str(free_port()), "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "workers" in err, err
