"""compute state: the change counter and the outbox's next id, shared by the workers of one database

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table('compute_state',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('generation', sa.BigInteger(), nullable=False),
    sa.Column('outbox_next', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    top = op.get_bind().scalar(sa.text('SELECT max(id) FROM notification_outbox'))
    op.bulk_insert(table, [{'id': 1, 'generation': 0, 'outbox_next': (top or 0) + 1}])


def downgrade() -> None:
    op.drop_table('compute_state')
