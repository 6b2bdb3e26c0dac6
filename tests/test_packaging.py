"""What a user gets (issue 13 item 10): ``pip install <repo>`` without extras gives services that start, and
the lock (``constraints.txt``) pins every dependency pyproject.toml declares.

The plain install lives in ``.venv-install/<key>``, keyed on pyproject.toml and constraints.txt: built once
(about a minute from pip's cache), then only novawatch itself is reinstalled from the current source on
each run (a few seconds), so a new undeclared import still fails here.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
from interop.venvs import base_python, locked, run
from packaging.requirements import Requirement
from tests.api.helpers import free_port, wait_for

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "constraints.txt"
#: Where the plain installs live (one per key; others are removed when the key changes).
INSTALLS = Path(os.environ.get("NOVAWATCH_INSTALL_VENVS") or REPO / ".venv-install")


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()  # PEP 503


def _declared() -> dict[str, list[Requirement]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    groups = {"dependencies": project.get("dependencies", []), **project.get("optional-dependencies", {})}
    return {group: [Requirement(r) for r in reqs] for group, reqs in groups.items()}


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version and " " not in line, f"{CONSTRAINTS.name}: not NAME==VERSION: {line!r}"
        pins[_name(name)] = version
    return pins


def test_the_lock_pins_every_declared_dependency_within_its_bounds() -> None:
    pins = _pins()
    assert "novawatch" not in pins
    problems = []
    for group, requirements in _declared().items():
        for req in requirements:
            version = pins.get(_name(req.name))
            if version is None:
                problems.append(f"{req.name} ({group}) is not in {CONSTRAINTS.name}")
            elif not req.specifier.contains(version, prereleases=True):
                problems.append(f"{req.name}=={version} in {CONSTRAINTS.name} is outside {req} ({group})")
    assert not problems, "; ".join(problems) + ": refresh the lock with ./run lock"


def test_run_installs_from_the_lock_and_notices_when_it_changes(tmp_path: Path) -> None:
    # ./run in a copy of the project, with a stand-in .venv whose tools only record how they were called.
    for name in ("run", "pyproject.toml", "constraints.txt"):
        shutil.copy2(REPO / name, tmp_path / name)
    calls = tmp_path / "calls.log"
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    for tool in ("python", "novawatch"):
        (venv_bin / tool).write_text(f'#!/bin/sh\necho "$(basename "$0") $*" >> {calls}\n')
        (venv_bin / tool).chmod(0o755)
    stamp = tmp_path / ".venv" / ".novawatch-installed"
    stamp.touch()
    t0 = stamp.stat().st_mtime - 100  # every time set below is in the past

    def run_and_calls(mtimes: dict[str, float]) -> list[str]:
        for name, when in mtimes.items():
            os.utime(tmp_path / name, (when, when))
        calls.unlink(missing_ok=True)
        done = subprocess.run([str(tmp_path / "run"), "novawatch", "--version"], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        return calls.read_text().splitlines()

    # installed after both files changed last: nothing to do but run the command
    fast = {"pyproject.toml": t0, "constraints.txt": t0 + 10, ".venv/.novawatch-installed": t0 + 20}
    assert run_and_calls(fast) == ["novawatch --version"]
    # the lock changed since: install again, from the lock, and remember it (the next run is fast again)
    again = run_and_calls({"constraints.txt": t0 + 30})
    assert "python -m pip install -q --disable-pip-version-check -c constraints.txt -e .[test]" in again
    assert again[-1] == "novawatch --version"
    assert run_and_calls({}) == ["novawatch --version"]
    # so does a change of pyproject.toml
    assert len(run_and_calls({"pyproject.toml": t0 + 90, ".venv/.novawatch-installed": t0 + 40})) > 1


FAKE_PYTHON = """#!{python}
# Stands in for Python in ./run's lock: records its calls, makes a venv of itself, freezes a fixed list.
import os, sys
args = sys.argv[1:]
with open({calls!r}, "a") as fh:
    fh.write(" ".join(args) + "\\n")
if args[:2] == ["-m", "venv"]:
    os.makedirs(os.path.join(args[2], "bin"))
    os.symlink(__file__, os.path.join(args[2], "bin", "python"))
elif args[:3] == ["-m", "pip", "install"]:
    sys.exit(int(os.environ.get("FAKE_PIP_STATUS", "0")))
elif args[:3] == ["-m", "pip", "freeze"]:
    print("Zeta==1.0\\nalpha==2.0\\nmsgspec==0.19.0")
elif args == ["--version"] or "platform" in " ".join(args):
    print("Python 3.99.0")
"""


def test_run_lock_writes_the_freeze_of_a_fresh_environment(tmp_path: Path) -> None:
    for name in ("run", "pyproject.toml"):
        shutil.copy2(REPO / name, tmp_path / name)
    (tmp_path / "constraints.txt").write_text("old==1\n")
    calls = tmp_path / "calls.log"
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTHON.format(python=sys.executable, calls=str(calls)))
    fake.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "NOVAWATCH_PYTHON": str(fake), "TMPDIR": str(tmp_path)}

    def lock(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(tmp_path / "run"), "lock"], capture_output=True, text=True, timeout=60,
                              cwd=tmp_path, env={**env, **extra}, stdin=subprocess.DEVNULL)

    failed = lock(FAKE_PIP_STATUS="1")
    assert failed.returncode == 1 and "constraints.txt is unchanged" in failed.stderr
    assert (tmp_path / "constraints.txt").read_text() == "old==1\n"
    done = lock()
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "constraints.txt").read_text().splitlines()
    assert lines[0].startswith("# ") and "Python 3.99.0" in lines[1]
    assert lines[2:] == ["alpha==2.0", "msgspec==0.19.0", "Zeta==1.0"]  # sorted, as pip freeze names them
    recorded = calls.read_text()
    assert "-m pip install -q --disable-pip-version-check .[test]" in recorded  # from PyPI, no old pins
    assert "-m pip freeze --all --disable-pip-version-check --exclude novawatch --exclude pip" in recorded
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("novawatch-lock")) == []  # cleaned up


# --- the plain install ---------------------------------------------------------------------------


def _key() -> str:
    digest = hashlib.sha256()
    for path in (REPO / "pyproject.toml", CONSTRAINTS):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def plain_install() -> Path:
    """A virtual environment with ``pip install -c constraints.txt <repo>`` (no extras, not editable) and
    novawatch reinstalled from the current source; its ``bin`` folder."""
    key = _key()
    target = INSTALLS / key
    python = target / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    with locked(INSTALLS / ".lock"):
        if not (target / ".novawatch-ready").exists():
            for stale in INSTALLS.iterdir():
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
            # Built in place (its scripts name their interpreter by path); the marker, written last, is what
            # makes an interrupted build look incomplete.
            run([base_python(), "-m", "venv", str(target)])
            run([*pip, "-c", str(CONSTRAINTS), str(REPO)])
            (target / ".novawatch-ready").write_text(key + "\n")
        else:  # the dependencies are cached; novawatch itself is what may have changed
            run([*pip, "--no-deps", "--force-reinstall", str(REPO)])
    return target / "bin"


def test_a_plain_install_starts_both_services(tmp_path: Path) -> None:
    bin_dir = plain_install()
    python = str(bin_dir / "python")
    where = subprocess.run([python, "-c", "import novawatch; print(novawatch.__file__)"], capture_output=True,
                           text=True, timeout=60, cwd=tmp_path)
    assert where.returncode == 0 and str(bin_dir.parent) in where.stdout, where  # installed, not the worktree
    test_only = subprocess.run(
        [python, "-c", "import importlib.util as u; print([m for m in ('pytest', 'hypothesis', 'oslo_messaging', "
         "'selenium') if u.find_spec(m)])"], capture_output=True, text=True, timeout=60)
    assert test_only.stdout.strip() == "[]", test_only  # nothing of the test extras came along

    pc, pm = free_port(), free_port()
    # The model reads the compute service's Nova API through a clouds.yaml cloud (`model serve --os-cloud`):
    # openstacksdk and keystoneauth1 are runtime dependencies.
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(f"clouds:\n  local:\n    auth_type: none\n"
                      f"    compute_endpoint_override: http://127.0.0.1:{pc}/v2.1\n")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "OS_CLIENT_CONFIG_FILE": str(clouds)}
    state = str(tmp_path / "state")
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("compute", "model")}
    procs = {
        "compute": subprocess.Popen([str(bin_dir / "novawatch"), "compute", "serve", "--port", str(pc),
                                     "--data-dir", state, "--hosts", "2"],
                                    stdout=logs["compute"], stderr=subprocess.STDOUT, env=env, cwd=tmp_path),
        "model": subprocess.Popen([str(bin_dir / "novawatch"), "model", "serve", "--port", str(pm),
                                   "--data-dir", state, "--os-cloud", "local"],
                                  stdout=logs["model"], stderr=subprocess.STDOUT, env=env, cwd=tmp_path),
    }
    codes = {}
    try:
        def healthy(port: int) -> dict[str, object]:
            for name, proc in procs.items():
                assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()[-3000:]
            answer: dict[str, object] = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=30).json()
            return answer

        wait_for(lambda: healthy(pc), 120, "the compute service's health")
        model = wait_for(lambda: (h := healthy(pm))["bootstrapped"] and h, 120, "the model service to bootstrap")
        assert model["nodes"] == 2 and model["status"] == "ok" and model["source"] == "cloud 'local'"
    finally:
        for name, proc in procs.items():
            proc.send_signal(signal.SIGINT)
            try:
                codes[name] = proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait(10)
            logs[name].close()
    assert codes == {"compute": 0, "model": 0}, {n: (tmp_path / f"{n}.log").read_text()[-2000:] for n in procs}


def test_pyproject_keeps_lower_bounds_only() -> None:
    # Pins belong in constraints.txt: pyproject.toml keeps ranges that other projects can share.
    for group, requirements in _declared().items():
        for req in requirements:
            assert req.specifier and all(s.operator == ">=" for s in req.specifier), f"{req} ({group})"
