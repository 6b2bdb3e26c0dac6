"""Fixtures of the Nova-compatible API tests: a served compute service, no-auth and token mode.

The machinery lives in ``novacloud`` (the suite runs with --import-mode=importlib, which does not put
test folders on sys.path).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from novacloud import TOKEN, NovaCloud, cloud, running_cloud, wall_cloud

__all__ = ["TOKEN", "NovaCloud", "cloud", "wall_cloud"]


@pytest.fixture
def token_cloud(tmp_path: Path) -> Iterator[NovaCloud]:
    """Static token mode (what a service bound beyond loopback requires)."""
    with running_cloud(tmp_path, token=TOKEN) as c:
        yield c
