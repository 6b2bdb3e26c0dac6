"""Alembic revisions of the compute schema (a package so that wheels ship them)."""
