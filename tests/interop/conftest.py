"""The python-watcher virtual environment, created once per test session (cached under .venv-watcher).

Tests marked ``watcher`` run in the default run; deselect them with ``-m "not watcher"`` on a machine
without access to PyPI.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

CHECK = Path(__file__).resolve().parents[2] / "interop" / "watcher" / "check.py"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "watcher: installs python-watcher from PyPI into its own venv (cached)")
    config.addinivalue_line("markers", "keystone: installs keystone from PyPI into its own venv (cached)")


def load_check() -> ModuleType:
    """interop/watcher/check.py as a module (it is a script, not part of the package)."""
    name = "novawatch_interop_watcher_check"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, CHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def check() -> ModuleType:
    return load_check()


@pytest.fixture(scope="session")
def watcher_python(check: ModuleType) -> Path:
    """The Python of the python-watcher environment (installed from PyPI on first use)."""
    try:
        python: Path = check.ensure_venv()
    except check.SetupError as exc:
        pytest.fail(f"could not create the python-watcher environment: {exc}")
    return python
