"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import column, table, text
from sqlalchemy.engine import Connection

from remediator.store import migrate
from remediator.store.database import Database
from remediator.store.schema import escalations, incidents, metadata, timeline


async def test_migrated_schema_matches_the_declared_one(database: Database) -> None:
    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    assert await database.read(diff) == []


async def test_upgrade_is_idempotent_and_reports_head(database: Database) -> None:
    await migrate.upgrade(database)
    assert await migrate.current_revision(database) == migrate.head_revision()


async def test_0008_reads_the_quality_facts_of_older_incidents_from_their_history(
    database: Database,
) -> None:
    """Incidents stored before revision 0008 get paged_at, escalated_at and resolution from
    their escalations and timelines, so the quality report covers them too."""
    await _run(database, lambda config: command.downgrade(config, "0007"))
    try:
        await database.write(_old_history)
    finally:
        await migrate.upgrade(database)
    rows = await database.read(
        lambda conn: conn.execute(
            text("SELECT id, resolution, paged_at IS NOT NULL, escalated_at IS NOT NULL,"
                 " resolve_seconds, response_seconds FROM incidents ORDER BY id")
        ).all()
    )  # fmt: skip
    assert [tuple(row[:4]) for row in rows] == [
        (1, "automation", False, False),
        (2, "human", True, True),
        (3, "alert", True, True),  # no rule matched: paged at once, the alert went away
        (4, None, False, False),
    ]
    # Durations from the stored times: resolved 1, 2, 3 minutes after opening; only 2 was
    # resolved by a human (its first response); 4 is still open.
    days = await database.read(
        lambda conn: conn.execute(text("SELECT DISTINCT opened_day FROM incidents")).all()
    )
    assert [tuple(day) for day in days] == [("2026-11-01",)]
    durations = [(row[4], row[5]) for row in rows]
    assert durations == [
        (pytest.approx(60), None),
        (pytest.approx(120), pytest.approx(120)),
        (pytest.approx(180), None),
        (None, None),
    ]


async def _run(database: Database, step: Callable[[Config], None]) -> None:
    def run(connection: Connection) -> None:
        config = migrate.alembic_config()
        config.attributes["connection"] = connection
        step(config)

    await database.write(run)


_NOW = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


# The incidents table as revision 0007 had it: the columns before 0008, no defaults.
_ADDED_BY_0008 = {
    "paged_at", "escalated_at", "resolution", "response_seconds", "resolve_seconds", "opened_day",
}  # fmt: skip
_INCIDENTS_0007 = table(
    "incidents", *(column(c.name, c.type) for c in incidents.c if c.name not in _ADDED_BY_0008)
)


def _old_history(conn: Connection) -> None:
    """Rows as revision 0007 stored them (only its columns)."""
    for ident, rule in ((1, "disk"), (2, "disk"), (3, None), (4, "disk")):
        conn.execute(
            _INCIDENTS_0007.insert().values(
                id=ident, key=f"k{ident}", rule=rule, state="resolved", priority="P2",
                base_priority="P2", title="t", labels={}, annotations={}, opened_at=_NOW,
                alert_count=1, firing_count=0, recurrence_count=0,
                updated_at=_NOW,
                resolved_at=None if ident == 4 else _NOW + timedelta(minutes=ident),
                ack_due_at=_NOW,
                resolve_due_at=_NOW,
            )
        )  # fmt: skip
    steps = [
        (1, "system", "verifying", "resolved"),
        (2, "system", "remediating", "escalated"),
        (2, "user", "escalated", "resolved"),
        (3, "system", "open", "resolved"),
    ]
    for incident, actor_type, before, after in steps:
        conn.execute(
            timeline.insert().values(
                incident_id=incident, at=_NOW, actor_type=actor_type, actor="x",
                kind="state_changed", from_state=before, to_state=after, message="m",
            )
        )  # fmt: skip
    for incident in (2, 3):
        conn.execute(
            escalations.insert().values(
                incident_id=incident, policy="p", state="done", step=0, cycle=0, reason="r",
                started_at=_NOW,
            )
        )  # fmt: skip
