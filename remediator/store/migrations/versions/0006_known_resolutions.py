"""known resolutions: what a human said fixed an incident, kept with its rule and key

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 16:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('known_resolutions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('incident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rule', sa.String(length=255), nullable=True),
    sa.Column('incident_key', sa.String(length=512), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('resolved_by', sa.String(length=255), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_known_resolutions_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_known_resolutions'))
    )
    with op.batch_alter_table('known_resolutions', schema=None) as batch_op:
        batch_op.create_index('ix_known_resolutions_key_at', ['incident_key', 'at'], unique=False)
        batch_op.create_index('ix_known_resolutions_rule_at', ['rule', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('known_resolutions', schema=None) as batch_op:
        batch_op.drop_index('ix_known_resolutions_rule_at')
        batch_op.drop_index('ix_known_resolutions_key_at')
    op.drop_table('known_resolutions')
