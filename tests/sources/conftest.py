"""The served compute service of tests/api/nova, for the openstacksdk source tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api" / "nova"))

from novacloud import NovaCloud, start_cloud


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[NovaCloud]:
    c, server = start_cloud(tmp_path)
    try:
        yield c
    finally:
        server.stop()
        c.service.close()
