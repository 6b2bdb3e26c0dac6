"""Alembic environment: runs migrations on the connection the repository hands over."""

from __future__ import annotations

from alembic import context

from novawatch.compute.db import Base

config = context.config
target_metadata = Base.metadata
#: Its own version table, so the compute schema can share a database with other components.
VERSION_TABLE = "novawatch_compute_version"


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        # Command-line use (``alembic -x url=...``): build an engine from the configured URL.
        from sqlalchemy import create_engine

        engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
        with engine.begin() as conn:
            context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True,
                              version_table=VERSION_TABLE)
            context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
