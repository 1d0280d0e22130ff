"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from remediator.store import migrate
from remediator.store.database import Database
from remediator.store.schema import metadata


async def test_migrated_schema_matches_the_declared_one(database: Database) -> None:
    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    assert await database.read(diff) == []


async def test_upgrade_is_idempotent_and_reports_head(database: Database) -> None:
    await migrate.upgrade(database)
    assert await migrate.current_revision(database) == migrate.head_revision()
