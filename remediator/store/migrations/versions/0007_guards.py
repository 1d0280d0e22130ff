"""guards: remediations and their targets, circuit breakers, pauses, approval columns

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 19:07:26.379025
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('guard_breakers',
    sa.Column('rule', sa.String(length=255), nullable=False),
    sa.Column('position', sa.String(length=16), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('open_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('trial_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('rule', name=op.f('pk_guard_breakers'))
    )
    op.create_table('guard_pauses',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('paused_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paused_by', sa.String(length=255), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resumed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resumed_by', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guard_pauses'))
    )
    with op.batch_alter_table('guard_pauses', schema=None) as batch_op:
        batch_op.create_index('ix_guard_pauses_resumed_at', ['resumed_at'], unique=False)

    op.create_table('guard_remediations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('incident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rule', sa.String(length=255), nullable=False),
    sa.Column('rate_key', sa.String(length=512), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_guard_remediations_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['job_id'], ['remediation_jobs.id'], name=op.f('fk_guard_remediations_job_id_remediation_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guard_remediations')),
    sa.UniqueConstraint('job_id', name='uq_guard_remediations_job_id')
    )
    with op.batch_alter_table('guard_remediations', schema=None) as batch_op:
        batch_op.create_index('ix_guard_remediations_incident_id', ['incident_id'], unique=False)
        batch_op.create_index('ix_guard_remediations_rule_rate_key_started_at', ['rule', 'rate_key', 'started_at'], unique=False)

    op.create_table('guard_targets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('remediation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rule', sa.String(length=255), nullable=False),
    sa.Column('target', sa.String(length=512), nullable=False),
    sa.Column('group_key', sa.String(length=512), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['remediation_id'], ['guard_remediations.id'], name=op.f('fk_guard_targets_remediation_id_guard_remediations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guard_targets'))
    )
    with op.batch_alter_table('guard_targets', schema=None) as batch_op:
        batch_op.create_index('ix_guard_targets_remediation_id', ['remediation_id'], unique=False)
        batch_op.create_index('ix_guard_targets_rule_group_key_started_at', ['rule', 'group_key', 'started_at'], unique=False)
        batch_op.create_index('ix_guard_targets_target_ended_at', ['target', 'ended_at'], unique=False)

    with op.batch_alter_table('remediation_jobs', schema=None) as batch_op:
        # "awaiting_approval" does not fit the old 16 characters (PostgreSQL enforces them).
        batch_op.alter_column('state', existing_type=sa.String(length=16), type_=sa.String(length=32), existing_nullable=False)
        batch_op.add_column(sa.Column('approval_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('approved_by', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('remediation_jobs', schema=None) as batch_op:
        batch_op.alter_column('state', existing_type=sa.String(length=32), type_=sa.String(length=16), existing_nullable=False)
        batch_op.drop_column('approved_at')
        batch_op.drop_column('approved_by')
        batch_op.drop_column('approval_due_at')

    with op.batch_alter_table('guard_targets', schema=None) as batch_op:
        batch_op.drop_index('ix_guard_targets_target_ended_at')
        batch_op.drop_index('ix_guard_targets_rule_group_key_started_at')
        batch_op.drop_index('ix_guard_targets_remediation_id')

    op.drop_table('guard_targets')
    with op.batch_alter_table('guard_remediations', schema=None) as batch_op:
        batch_op.drop_index('ix_guard_remediations_rule_rate_key_started_at')
        batch_op.drop_index('ix_guard_remediations_incident_id')

    op.drop_table('guard_remediations')
    with op.batch_alter_table('guard_pauses', schema=None) as batch_op:
        batch_op.drop_index('ix_guard_pauses_resumed_at')

    op.drop_table('guard_pauses')
    op.drop_table('guard_breakers')
