"""Timestamps and transactions behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import StatementError

from remediator.store.database import Database
from remediator.store.schema import incidents, timeline


def entry(at: datetime) -> dict[str, object]:
    return {
        "incident_id": 1,
        "at": at,
        "actor_type": "system",
        "actor": "t",
        "kind": "k",
        "message": "m",
    }


def add_entry(at: datetime) -> Any:
    def transaction(conn: Connection) -> None:
        conn.execute(timeline.insert(), entry(at))

    return transaction


def all_entries(conn: Connection) -> list[Any]:
    return list(conn.execute(select(timeline)))


async def seed_incident(db: Database) -> None:
    now = datetime.now(UTC)
    row = {
        "key": "k",
        "state": "open",
        "priority": "P4",
        "base_priority": "P4",
        "title": "t",
        "labels": {},
        "annotations": {},
        "opened_at": now,
        "updated_at": now,
        "ack_due_at": now,
        "resolve_due_at": now,
    }
    await db.write(lambda conn: conn.execute(incidents.insert(), row))


async def test_times_come_back_aware_utc(database: Database) -> None:
    await seed_incident(database)
    cest = timezone(timedelta(hours=2))
    await database.write(add_entry(datetime(2026, 11, 21, 14, 0, tzinfo=cest)))
    (stored,) = await database.read(all_entries)
    assert stored.at == datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert stored.at.utcoffset() == timedelta(0)


async def test_naive_times_are_refused(database: Database) -> None:
    await seed_incident(database)
    with pytest.raises(StatementError, match="naive datetime"):
        await database.write(add_entry(datetime(2026, 11, 21, 12, 0)))


async def test_a_failed_write_leaves_nothing_behind(database: Database) -> None:
    await seed_incident(database)

    def write_then_fail(conn: Connection) -> None:
        conn.execute(timeline.insert(), entry(datetime.now(UTC)))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await database.write(write_then_fail)
    assert await database.read(all_entries) == []


async def test_concurrent_writes_all_commit(database: Database) -> None:
    await seed_incident(database)
    await asyncio.gather(*(database.write(add_entry(datetime.now(UTC))) for _ in range(20)))
    assert len(await database.read(all_entries)) == 20
