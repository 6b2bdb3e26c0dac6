"""A real Keystone on loopback for tests: the ``keystone`` package from PyPI in its own virtual environment.

The environment is built once and cached under ``.venv-keystone/<version>`` (``$NOVAWATCH_KEYSTONE_VENVS``
to put it elsewhere), under a file lock, renamed into place only when complete. Beside it, a template
of a database that ``keystone-manage db_sync`` migrated and the fernet and credential keys, so that each
Keystone after the first costs a copy and a ``bootstrap`` only.

:func:`start` runs one: SQLite, fernet tokens, ``keystone-manage bootstrap`` (an ``admin`` user with
the ``admin`` role on project ``admin``, region ``RegionOne``, the identity endpoints), served by
``serve.py`` on a free loopback port.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
KEYSTONE_VERSION = "30.0.0"
REGION = "RegionOne"


class SetupError(RuntimeError):
    """Keystone could not be installed, set up or started; the message has the command's output."""


def venv_dir(version: str = KEYSTONE_VERSION) -> Path:
    base = Path(os.environ.get("NOVAWATCH_KEYSTONE_VENVS") or REPO / ".venv-keystone")
    return base / version


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], what: str, timeout: float = 900) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SetupError(f"{what} failed ({done.returncode}):\n{(done.stderr or done.stdout)[-3000:]}")


CONF = """[DEFAULT]
use_stderr = true
[database]
connection = sqlite:///{state}/keystone.db
[fernet_tokens]
key_repository = {state}/fernet-keys
[fernet_receipts]
key_repository = {state}/fernet-receipts
[credential]
key_repository = {state}/credential-keys
[token]
provider = fernet
"""


def _write_conf(state: Path) -> Path:
    conf = state / "keystone.conf"
    conf.write_text(CONF.format(state=state))
    return conf


def _manage(venv: Path, conf: Path, *args: str) -> None:
    # Through the venv's python, not bin/keystone-manage: the environment is built under another name and
    # renamed into place, which leaves the scripts' shebangs pointing at the old one.
    _run([str(venv / "bin" / "python"), "-c", "import sys; from keystone.cmd.manage import main; sys.exit(main())",
          "--config-file", str(conf), *args], f"keystone-manage {args[0]}")


def ensure_venv(version: str = KEYSTONE_VERSION) -> Path:
    """The Keystone environment (with its set-up template); built on first use. Returns its directory."""
    target = venv_dir(version)
    if (target / ".novawatch-ready").exists():
        return target
    with _locked(target.parent / f"{version}.lock"):
        if (target / ".novawatch-ready").exists():
            return target
        building = target.parent / f"{version}.building"
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        base_python = getattr(sys, "_base_executable", None) or sys.executable
        _run([base_python, "-m", "venv", str(building)], "python -m venv")
        _run([str(building / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
              f"keystone=={version}"], f"pip install keystone=={version}")
        # The template: what db_sync, fernet_setup and credential_setup make (the slow part of a start).
        template = building / "template"
        template.mkdir()
        conf = _write_conf(template)
        user = ["--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid())]
        _manage(building, conf, "db_sync")
        _manage(building, conf, "fernet_setup", *user)
        _manage(building, conf, "credential_setup", *user)
        (building / ".novawatch-ready").write_text(version + "\n")
        building.rename(target)
    return target


@dataclass
class Keystone:
    """A running Keystone: ``url`` is its v3 endpoint; ``admin_password`` the bootstrap admin's."""

    url: str
    admin_password: str
    proc: subprocess.Popen[str]
    state: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start(state: Path, admin_password: str, version: str = KEYSTONE_VERSION) -> Keystone:
    """A new Keystone with its own database under ``state`` (a fresh directory)."""
    venv = ensure_venv(version)
    shutil.copytree(venv / "template", state, dirs_exist_ok=True)
    conf = _write_conf(state)
    log = (state / "keystone.log").open("w")
    proc = subprocess.Popen([str(venv / "bin" / "python"), str(HERE / "serve.py"), "--config", str(conf)],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline().split()
    if len(first) != 2 or first[0] != "port":
        proc.kill()
        raise SetupError(f"Keystone did not start:\n{(state / 'keystone.log').read_text()[-3000:]}")
    url = f"http://127.0.0.1:{first[1]}/v3"
    try:
        _manage(venv, conf, "bootstrap", "--bootstrap-password", admin_password, "--bootstrap-admin-url", url,
                "--bootstrap-public-url", url, "--bootstrap-internal-url", url, "--bootstrap-region-id", REGION)
    except SetupError:
        proc.kill()
        raise
    return Keystone(url, admin_password, proc, state)
