"""quality report: when an incident first paged a human and was escalated, who resolved it;
indexes for the dashboard

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolution', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('response_seconds', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('resolve_seconds', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('opened_day', sa.String(length=10), nullable=True))
    with op.batch_alter_table('remediation_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_remediation_jobs_rule_id', ['rule', 'id'], unique=False)
        batch_op.create_index('ix_remediation_jobs_quality', ['rule', 'state', 'dry_run', 'created_at'], unique=False)
    # Incidents from before this revision: the same facts, read back from their history.
    op.execute(
        "UPDATE incidents SET paged_at = (SELECT min(e.started_at) FROM escalations e"
        " WHERE e.incident_id = incidents.id)"
    )
    op.execute(
        "UPDATE incidents SET escalated_at = (SELECT min(t.at) FROM timeline t"
        " WHERE t.incident_id = incidents.id AND t.kind = 'state_changed'"
        " AND t.to_state = 'escalated')"
    )
    op.execute(
        "UPDATE incidents SET escalated_at = paged_at"
        " WHERE escalated_at IS NULL AND rule IS NULL AND paged_at IS NOT NULL"
    )
    op.execute(
        "UPDATE incidents SET resolution = CASE"
        " WHEN EXISTS (SELECT 1 FROM timeline t WHERE t.incident_id = incidents.id"
        "   AND t.to_state = 'resolved' AND t.actor_type = 'user') THEN 'human'"
        " WHEN EXISTS (SELECT 1 FROM timeline t WHERE t.incident_id = incidents.id"
        "   AND t.to_state = 'resolved' AND t.from_state = 'verifying') THEN 'automation'"
        " ELSE 'alert' END"
        " WHERE resolved_at IS NOT NULL"
    )
    seconds = (
        "extract(epoch from ({end} - opened_at))"
        if op.get_bind().dialect.name == "postgresql"
        else "(julianday({end}) - julianday(opened_at)) * 86400.0"
    )
    op.execute(f"UPDATE incidents SET resolve_seconds = {seconds.format(end='resolved_at')}")
    response = (
        "CASE WHEN acknowledged_at IS NOT NULL THEN acknowledged_at"
        " WHEN resolution = 'human' THEN resolved_at END"
    )
    op.execute(f"UPDATE incidents SET response_seconds = {seconds.format(end=response)}")
    day = (
        "to_char(opened_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        if op.get_bind().dialect.name == "postgresql"
        else "substr(opened_at, 1, 10)"
    )
    op.execute(f"UPDATE incidents SET opened_day = {day}")
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.alter_column('opened_day', existing_type=sa.String(length=10), nullable=False)
        batch_op.create_index('ix_incidents_quality', ['opened_day', 'priority', 'rule', 'opened_at', 'resolution', 'resolve_seconds', 'response_seconds', 'paged_at', 'escalated_at', 'ack_breached_at', 'resolve_breached_at', 'previous_incident_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('remediation_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_remediation_jobs_quality')
        batch_op.drop_index('ix_remediation_jobs_rule_id')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_incidents_quality')
        batch_op.drop_column('opened_day')
        batch_op.drop_column('resolve_seconds')
        batch_op.drop_column('response_seconds')
        batch_op.drop_column('resolution')
        batch_op.drop_column('escalated_at')
        batch_op.drop_column('paged_at')
