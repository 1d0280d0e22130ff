"""The database handle: one async engine, and write transactions that are safe to retry.

SQLite is the embedded default and has a single writer, so writes in this process queue
on an asyncio lock and open with `BEGIN IMMEDIATE` (no busy-polling, no upgrade
deadlocks). PostgreSQL writers run concurrently; conflicts surface as unique-constraint
or serialization errors, and `write()` callers retry the whole transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # FULL: a commit is on disk before Alertmanager hears 2xx, even across power loss.
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)


class Database:
    """Owns the engine; hands out read connections and serialized write transactions."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        # Labels and annotations are JSON columns written for every alert: use orjson.
        json_codec: dict[str, Any] = {
            "json_serializer": _json_dumps,
            "json_deserializer": orjson.loads,
        }
        if self.is_sqlite:
            _ensure_parent_dir(self.url.database)
            self.engine: AsyncEngine = create_async_engine(self.url, **json_codec)
            _install_sqlite_hooks(self.engine)
        else:
            self.engine = create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                **json_codec,
            )
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits on success and rolls back on any exception."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.connect() as conn:
            await conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for queries; it never holds the write lock."""
        async with self.engine.connect() as conn:
            yield conn

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _ensure_parent_dir(database: str | None) -> None:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN IMMEDIATE is ours to issue.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Reads take a deferred BEGIN; write() asks for IMMEDIATE so the write lock is
        # taken up front instead of failing later on a read-to-write upgrade.
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))
