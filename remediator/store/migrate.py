"""Schema migrations: `remediator db upgrade`, and the upgrade `serve` makes at start."""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from remediator.store.database import Database


def alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", "remediator.store:migrations")
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(db: Database) -> None:
    """Bring the database to the newest schema; safe to run on every start."""

    def _upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    await db.write(_upgrade)


async def current_revision(db: Database) -> str | None:
    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    return await db.read(_current)
