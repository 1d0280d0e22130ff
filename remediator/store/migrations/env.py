"""Alembic environment: runs migrations on the connection remediator hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from remediator.store.schema import metadata

# Any constant works; it only has to be the same for every replica.
_MIGRATION_LOCK_ID = 0x72656D6564


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Replicas starting together must not apply the same migration twice.
        connection.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})"))
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    # remediator.store.migrate always hands over a connection inside a transaction.
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations with `remediator db upgrade`, not the alembic CLI")
    _run(connection)


_main()
