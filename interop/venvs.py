"""Cached virtual environments for the interoperability checks (Nova, Watcher, Keystone) and the packaging test.

Each is built once per key under a file lock (two test sessions on one machine must not build the same one at
once), beside its place and renamed in, so an interrupted build never looks complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

#: Written last into a finished environment; holds the key it was built from.
READY = ".novawatch-ready"


class SetupError(RuntimeError):
    """An environment could not be built or set up; the message has the failing command's output."""


def base_python() -> str:
    """The interpreter new environments are made from (the real one, not a venv's shim)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def run(step: list[str], *, quiet: bool = True, timeout: float | None = 1800) -> None:
    """Run one build step; raise :class:`SetupError` with its output's tail when it fails."""
    done = subprocess.run(step, capture_output=quiet, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout or "")[-3000:] if quiet else ""
        raise SetupError(f"{' '.join(step[:5])} ... failed ({done.returncode}):\n{tail}")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created with its folder) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_ready(target: Path, key: str) -> bool:
    """Whether ``target`` is a finished environment built from ``key``."""
    ready = target / READY
    return (target / "bin" / "python").exists() and ready.exists() and ready.read_text().strip() == key


def cached(target: Path, key: str, fill: Callable[[Path], None], *, quiet: bool = True) -> Path:
    """The environment at ``target``, built when missing or built from another key: a fresh venv beside it that
    ``fill(folder)`` completes (its Python is ``folder/bin/python``), then renamed into place. Returns ``target``.

    The rename leaves the venv's console scripts naming the build folder; run tools as ``python -m`` or
    ``python script.py``."""
    if is_ready(target, key):
        return target
    with locked(target.parent / f"{target.name}.lock"):
        if is_ready(target, key):
            return target
        building = target.parent / f"{target.name}.building"
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        run([base_python(), "-m", "venv", str(building)], quiet=quiet)
        fill(building)
        (building / READY).write_text(key + "\n")
        building.rename(target)
    return target
