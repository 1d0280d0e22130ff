"""PromQL verification: the rendered query and the next check time of a verifying incident;
queued jobs found by fingerprint

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verify_query', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('verify_check_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_incidents_verify_check_at', ['verify_check_at'], unique=False)
    with op.batch_alter_table('remediation_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_remediation_jobs_fingerprint_state', ['fingerprint', 'state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('remediation_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_remediation_jobs_fingerprint_state')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_incidents_verify_check_at')
        batch_op.drop_column('verify_check_at')
        batch_op.drop_column('verify_query')
