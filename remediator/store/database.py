"""The database handle: runs whole transactions, written once as plain synchronous code.

Store functions and transaction bodies are ordinary SQLAlchemy Core on a `Connection`,
identical for SQLite and PostgreSQL. `Database` decides where they run:

- SQLite: the sqlite3 driver blocks, and it is cheapest to cross into a thread once per
  transaction rather than once per statement. Every write transaction runs in one
  dedicated writer thread (SQLite has a single writer anyway), opened with
  `BEGIN IMMEDIATE` so it never fails on a read-to-write upgrade. Reads run in a small
  thread pool; WAL lets them proceed while a write is in progress.
- PostgreSQL: asyncpg on the event loop, through `AsyncConnection.run_sync`. Concurrent
  writers are safe: conflicts surface as unique-constraint or serialization errors, and
  callers retry the whole transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

T = TypeVar("T")
log = logging.getLogger(__name__)

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # FULL: a commit is on disk before Alertmanager hears 2xx, even across power loss.
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)
_SQLITE_READERS = 4
_CHECKPOINT_INTERVAL_SECONDS = 0.25


class Database:
    """Owns the engine and runs read and write transactions in the right place."""

    def __init__(self, url: str | URL, *, pool_size: int = 5) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        # Labels and annotations are JSON columns written for every alert: use orjson.
        json_codec: dict[str, Any] = {
            "json_serializer": _json_dumps,
            "json_deserializer": orjson.loads,
        }
        self._sync: Engine | None = None
        self._async: AsyncEngine | None = None
        self._maintenance: asyncio.Task[None] | None = None
        if self.is_sqlite:
            _ensure_parent_dir(self.url.database)
            self._sync = create_engine(
                self.url.set(drivername="sqlite"),  # the stdlib driver, used from threads
                pool_size=_SQLITE_READERS + 1,
                # Each connection is used by one thread at a time, but not always the same one.
                connect_args={"check_same_thread": False},
                **json_codec,
            )
            _install_sqlite_hooks(self._sync)
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="remediator-db-write")
            self._readers = ThreadPoolExecutor(
                _SQLITE_READERS, thread_name_prefix="remediator-db-read"
            )
        else:
            self._async = create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                **json_codec,
            )

    async def write(self, transaction: Callable[[Connection], T]) -> T:
        """Run `transaction` in one database transaction: commit on return, roll back on raise."""
        if self._sync is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._writer, self._sqlite_write, transaction)
        assert self._async is not None
        async with self._async.begin() as conn:
            return await conn.run_sync(transaction)

    async def read(self, query: Callable[[Connection], T]) -> T:
        """Run read-only `query`; it never waits for the writer."""
        if self._sync is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._readers, self._sqlite_read, query)
        assert self._async is not None
        async with self._async.connect() as conn:
            return await conn.run_sync(query)

    def start(self) -> None:
        """Start background upkeep (SQLite: WAL checkpoints off the writer's commit path)."""
        if self._sync is not None and self._maintenance is None:
            self._maintenance = asyncio.create_task(
                self._checkpoint_loop(), name="remediator-sqlite-checkpoint"
            )

    async def ping(self) -> None:
        await self.read(lambda conn: conn.execute(text("SELECT 1")).scalar())

    async def dispose(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        if self._sync is not None:
            self._writer.shutdown(wait=True)
            self._readers.shutdown(wait=True)
            self._sync.dispose()
        if self._async is not None:
            await self._async.dispose()

    def _sqlite_write(self, transaction: Callable[[Connection], T]) -> T:
        assert self._sync is not None
        with self._sync.connect() as conn:
            conn = conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            with conn.begin():
                return transaction(conn)

    async def _checkpoint_loop(self) -> None:
        # SQLite's own checkpoint (every 1,000 WAL pages) runs inside a commit, so that
        # commit also copies every frame to the database file and fsyncs it. Copying most
        # frames here first, beside the writer, leaves that checkpoint little to do; it
        # still runs, which is what lets the WAL reset. (A background checkpoint alone
        # never completes under steady writes, and the WAL would grow without bound.)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_CHECKPOINT_INTERVAL_SECONDS)
            try:
                await loop.run_in_executor(self._readers, self._checkpoint)
            except sqlite3.Error as exc:
                log.warning("SQLite WAL checkpoint failed, will retry: %s", exc)

    def _checkpoint(self) -> None:
        assert self._sync is not None
        raw = self._sync.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
        finally:
            raw.close()

    def _sqlite_read(self, query: Callable[[Connection], T]) -> T:
        assert self._sync is not None
        with self._sync.connect() as conn, conn.begin():
            return query(conn)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _ensure_parent_dir(database: str | None) -> None:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN IMMEDIATE is ours to issue.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Reads take a deferred BEGIN; writes ask for IMMEDIATE so the write lock is
        # taken up front instead of failing later on a read-to-write upgrade.
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))
