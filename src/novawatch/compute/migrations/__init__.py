"""Alembic migrations of the compute database, run programmatically (``upgrade head``) on startup."""
