"""Fixtures of the compute tests: every database test runs on SQLite and on PostgreSQL.

Helpers live in ``computehelpers`` (the suite may run with --import-mode=importlib, which does not put
test folders on sys.path).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from computehelpers import Cloud, make_cloud

from novawatch.compute.repository import make_engine, reset, upgrade


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL: a SQLite file, or the session's private PostgreSQL (tables replaced per test)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'compute.db'}"
    url: str = request.getfixturevalue("postgres")
    return url


@pytest.fixture
def pg(postgres: str) -> str:
    """The session's private PostgreSQL with the compute schema dropped and migrated afresh."""
    engine = make_engine(postgres)
    reset(engine)
    upgrade(engine)
    engine.dispose()
    return postgres


@pytest.fixture
def cloud(db_url: str) -> Iterator[Cloud]:
    c = make_cloud(db_url)
    try:
        yield c
    finally:
        c.service.close()

