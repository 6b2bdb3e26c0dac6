"""The python-watcher and Nova virtual environments, created once (cached under .venv-watcher, .venv-nova).

Tests marked ``watcher`` or ``nova`` run in the default run; deselect them with ``-m "not watcher and not
nova"`` on a machine without access to PyPI.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

# The suite runs with --import-mode=importlib, which does not put test folders on sys.path (novakit).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

INTEROP = Path(__file__).resolve().parents[2] / "interop"
CHECK = INTEROP / "watcher" / "check.py"
NOVA_CHECK = INTEROP / "nova" / "check.py"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "watcher: installs python-watcher from PyPI into its own venv (cached)")
    config.addinivalue_line("markers", "keystone: installs keystone from PyPI into its own venv (cached)")
    config.addinivalue_line("markers", "nova: installs nova from PyPI into its own venv (cached) and runs its cloud")


def load_check(path: Path = CHECK, name: str = "novawatch_interop_watcher_check") -> ModuleType:
    """An interop check script (interop/*/check.py) as a module (it is a script, not part of the package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
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


@pytest.fixture(scope="session")
def nova_check() -> ModuleType:
    return load_check(NOVA_CHECK, "novawatch_interop_nova_check")


@pytest.fixture(scope="session")
def nova_capture_file(nova_check: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workload run once in Nova's functional-test cloud, through the check's command line as a person runs
    it (``check.py --save CAPTURE --log LOG --json REPORT``; the Nova environment is built on first use)."""
    out = tmp_path_factory.mktemp("nova") / "capture.json"
    status = nova_check.main(["--save", str(out), "--log", str(out.with_name("nova.log")),
                              "--json", str(out.with_name("report.json"))])
    if status == 2 or not out.exists():
        pytest.fail(f"could not run Nova's workload (check.py exit status {status}; see the captured output)")
    return out
