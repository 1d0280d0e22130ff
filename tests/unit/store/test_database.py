"""Timestamps and transactions behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from remediator.store.database import Database
from remediator.store.schema import timeline


def entry(at: datetime) -> dict[str, object]:
    return {
        "incident_id": 1,
        "at": at,
        "actor_type": "system",
        "actor": "t",
        "kind": "k",
        "message": "m",
    }


async def seed_incident(db: Database) -> None:
    from remediator.store.schema import incidents

    now = datetime.now(UTC)
    async with db.write() as conn:
        await conn.execute(
            incidents.insert(),
            {
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
            },
        )


async def test_times_come_back_aware_utc(database: Database) -> None:
    await seed_incident(database)
    cest = timezone(timedelta(hours=2))
    async with database.write() as conn:
        await conn.execute(timeline.insert(), entry(datetime(2026, 11, 21, 14, 0, tzinfo=cest)))
    async with database.read() as conn:
        (at,) = (await conn.execute(select(timeline.c.at))).one()
    assert at == datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert at.utcoffset() == timedelta(0)


async def test_naive_times_are_refused(database: Database) -> None:
    await seed_incident(database)
    with pytest.raises(StatementError, match="naive datetime"):
        async with database.write() as conn:
            await conn.execute(timeline.insert(), entry(datetime(2026, 11, 21, 12, 0)))


async def test_a_failed_write_leaves_nothing_behind(database: Database) -> None:
    await seed_incident(database)

    async def write_then_fail() -> None:
        async with database.write() as conn:
            await conn.execute(timeline.insert(), entry(datetime.now(UTC)))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await write_then_fail()
    async with database.read() as conn:
        assert (await conn.execute(select(timeline))).all() == []


async def test_concurrent_writes_all_commit(database: Database) -> None:
    await seed_incident(database)

    async def write(n: int) -> None:
        async with database.write() as conn:
            await conn.execute(timeline.insert(), entry(datetime.now(UTC)))
            await asyncio.sleep(0)  # yield mid-transaction to interleave writers

    await asyncio.gather(*(write(n) for n in range(20)))
    async with database.read() as conn:
        assert len((await conn.execute(select(timeline))).all()) == 20
