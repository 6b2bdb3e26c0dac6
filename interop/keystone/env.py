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

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:  # run as a script: interop.venvs is found from the repository's root
    sys.path.insert(0, str(REPO))
from interop.venvs import SetupError, cached, run  # noqa: E402

KEYSTONE_VERSION = "30.0.0"
REGION = "RegionOne"


def venv_dir(version: str = KEYSTONE_VERSION) -> Path:
    base = Path(os.environ.get("NOVAWATCH_KEYSTONE_VENVS") or REPO / ".venv-keystone")
    return base / version


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
    run([str(venv / "bin" / "python"), "-c", "import sys; from keystone.cmd.manage import main; sys.exit(main())",
         "--config-file", str(conf), *args], timeout=900)


def ensure_venv(version: str = KEYSTONE_VERSION) -> Path:
    """The Keystone environment (with its set-up template); built on first use. Returns its directory."""
    def fill(folder: Path) -> None:
        run([str(folder / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             f"keystone=={version}"])
        # The template: what db_sync, fernet_setup and credential_setup make (the slow part of a start).
        template = folder / "template"
        template.mkdir()
        conf = _write_conf(template)
        user = ["--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid())]
        _manage(folder, conf, "db_sync")
        _manage(folder, conf, "fernet_setup", *user)
        _manage(folder, conf, "credential_setup", *user)

    return cached(venv_dir(version), version, fill)


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
