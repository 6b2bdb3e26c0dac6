"""``novawatch compute`` (and ``simulate``) on a database they cannot use: one line that names the database
with its password masked, says what went wrong and what to do, exit status 2, and no traceback; and the
services on a port that cannot be."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import PostgresServer

from novawatch.redact import MASK

PASSWORD = "pw-db-5e1c"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _novawatch(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "novawatch.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})


#: (what the URL is; the URL, with {user} and {pg} for the test server's user and host:port, {tmp} for a folder
#: of the test's, {closed} for a port nothing listens on; what the message must say, beside the URL)
CASES = [
    ("a server that is not there", "postgresql://nova:{pw}@127.0.0.1:{closed}/db",
     ("Connection refused", "running and reachable")),
    ("a database the server does not have", "postgresql://{user}:{pw}@{pg}/no_such_database",
     ('database "no_such_database" does not exist', "running and reachable")),
    ("a SQLite file in a folder that does not exist", "{tmp}/missing/compute.db",
     ("unable to open database file", "its folder must exist")),
    ("a database novawatch has no driver for", "mysql://nova:{pw}@127.0.0.1/nova",
     ("MySQLdb", "SQLite", "PostgreSQL")),
    ("no database URL at all", "nova:{pw}@127.0.0.1://x",
     ("SQLite", "PostgreSQL")),
]

#: Every command that opens the compute database, with the flag that names it.
COMMANDS = [
    (["compute", "db-upgrade", "--db"], "novawatch compute: cannot migrate"),
    (["compute", "snapshot", "--db"], "novawatch compute: cannot read"),
    (["simulate", "--hosts", "1", "--instances", "0", "--actions", "0", "--db"], "novawatch simulate: cannot open"),
    (["compute", "serve", "--port", "0", "--data-dir", "state", "--database-url"], "novawatch compute: cannot open"),
    (["compute", "serve", "--workers", "2", "--port", "0", "--data-dir", "state", "--db"],  # --database-url's alias
     "novawatch compute: cannot migrate"),
]


#: Each command on each database, but two on a SQLite file: ``--workers`` refuses SQLite before opening it
#: (test_compute_workers covers that), and ``snapshot`` reads only a file that exists (the test below).
RUNS = [pytest.param(command, prefix, case, template, said,
                     id=f"{' '.join(command[:2])} {'workers ' * ('--workers' in command)}{case}")
        for command, prefix in COMMANDS for case, template, said in CASES
        if not ({"--workers", "snapshot"} & set(command) and "its folder must exist" in said)]


@pytest.mark.parametrize(("command", "prefix", "case", "template", "said"), RUNS)
def test_a_database_that_cannot_be_used_is_one_clear_line(
    postgres_server: PostgresServer, tmp_path: Path, command: list[str], prefix: str, case: str, template: str,
    said: tuple[str, ...],
) -> None:
    user, _, rest = postgres_server.url.removeprefix("postgresql://").partition("@")
    url = template.format(user=user, pw=PASSWORD, pg=rest.split("/", 1)[0], tmp=tmp_path, closed=_closed_port())
    done = _novawatch([*command, url], tmp_path)
    assert done.returncode == 2, f"{case}: {done.stdout}{done.stderr}"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, f"{case}: {done.stderr}"
    line = lines[0]
    assert line.startswith(prefix) and url.replace(PASSWORD, MASK) in line, line
    for words in said:
        assert words in line, f"{case}: {words!r} not in {line!r}"
    assert PASSWORD not in done.stderr + done.stdout and "Traceback" not in done.stderr


def test_a_snapshot_of_what_is_not_a_compute_database_says_so_and_creates_nothing(tmp_path: Path) -> None:
    missing, empty = tmp_path / "never.db", tmp_path / "empty.db"
    empty.write_bytes(b"")
    for path, reason in ((missing, f"no such file: {missing}"), (empty, "no novawatch_compute_version table")):
        done = _novawatch(["compute", "snapshot", "--db", str(path)], tmp_path)
        assert done.returncode == 2, done.stderr
        assert f"{path} is not a compute database" in done.stderr and reason in done.stderr, done.stderr
        assert "novawatch compute db-upgrade" in done.stderr and "Traceback" not in done.stderr
    assert not missing.exists()  # reading did not create it


def test_a_port_out_of_range_is_refused_before_serving(tmp_path: Path) -> None:
    # 99999 used to reach uvicorn, which failed with a traceback after the start-up line.
    for command in (["compute", "serve"], ["model", "serve"]):
        done = _novawatch([*command, "--port", "99999", "--data-dir", "state"], tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "port = 99999: Expected `int` <= 65535" in done.stderr and done.stdout == "", done.stderr
