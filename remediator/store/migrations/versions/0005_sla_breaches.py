"""SLA breaches: when each incident's acknowledgement and resolution SLA was breached

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 16:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ack_breached_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolve_breached_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_incidents_ack_sla', ['ack_breached_at', 'acknowledged_at', 'ack_due_at'], unique=False)
        batch_op.create_index('ix_incidents_resolve_sla', ['resolve_breached_at', 'resolved_at', 'resolve_due_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_incidents_resolve_sla')
        batch_op.drop_index('ix_incidents_ack_sla')
        batch_op.drop_column('resolve_breached_at')
        batch_op.drop_column('ack_breached_at')
