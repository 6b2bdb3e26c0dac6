"""compute changes: the rows each committed action wrote, so that workers catch up without a full reload

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('compute_changes',
    sa.Column('generation', sa.BigInteger(), nullable=False),
    sa.Column('tbl', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('instance_uuid', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('generation', 'tbl', 'key')
    )
    # Changes before this migration were never recorded: a worker behind it reloads in full.
    with op.batch_alter_table('compute_state') as batch:
        batch.add_column(sa.Column('changes_from', sa.BigInteger(), server_default='0', nullable=False))
    op.execute("UPDATE compute_state SET changes_from = generation + 1")


def downgrade() -> None:
    with op.batch_alter_table('compute_state') as batch:
        batch.drop_column('changes_from')
    op.drop_table('compute_changes')
