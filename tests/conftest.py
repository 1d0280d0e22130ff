"""Fixtures shared by the whole suite.

Every test that takes `db_url` runs twice: on SQLite and on PostgreSQL. PostgreSQL gets
a private database per test session. With CI=true a PostgreSQL that cannot be reached
fails the run instead of skipping it.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from remediator.store import migrate
from remediator.store.database import Database
from remediator.store.schema import metadata

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures" / "alertmanager-0.25"
PG_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


def load_fixture(name: str) -> dict[str, Any]:
    """A webhook body captured from a real Alertmanager 0.25, unchanged."""
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def missing(what: str) -> None:
    """Skip locally, fail in CI: a missing dependency must never pass silently there."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: required, not skippable)")
    pytest.skip(what)


async def _admin(statement: str) -> None:
    """Run one statement on the PostgreSQL server itself (CREATE/DROP DATABASE)."""
    engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """A fresh, migrated PostgreSQL database for this session, or None if unreachable."""
    name = f"remediator_test_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, SQLAlchemyError):
        yield None  # each test that needs it then skips, or fails when CI=true
        return
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_migrate(url))
    yield url
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            names = ", ".join(t.name for t in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None
) -> AsyncIterator[str]:
    """An empty, migrated database: a new SQLite file, or the session's PostgreSQL emptied."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'remediator.db'}"
        await _migrate(url)
        yield url
        return
    if postgres_url is None:
        missing(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    assert postgres_url is not None
    await _truncate(postgres_url)
    yield postgres_url


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url)
    yield db
    await db.dispose()


@pytest.fixture
def write_rules(tmp_path: Path) -> Callable[[str], Path]:
    """Write a rule file into the test's directory and return its path."""

    def write(content: str, name: str = "rules.yml") -> Path:
        path = tmp_path / name
        path.write_text(content)
        return path

    return write
