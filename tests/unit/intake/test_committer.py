"""Group commit: concurrent requests share transactions; one bad request fails alone;
deliveries already committed are answered without another transaction."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import StatementError

from remediator.config import Config
from remediator.incidents.ingest import IncidentIntake, IngestResult
from remediator.intake.committer import GroupCommitter, IntakeClosedError
from remediator.intake.model import AlertEvent, WebhookBody, events_from
from remediator.rules import load_rule_set
from remediator.store.database import Database
from remediator.store.schema import alert_events
from tests.conftest import load_fixture


def body(n: int) -> list[AlertEvent]:
    data = copy.deepcopy(load_fixture("diskfill-firing.json"))
    data["alerts"][0]["fingerprint"] = f"{n:016x}"
    return events_from(WebhookBody.model_validate(data))


def real_intake(database: Database, tmp_path: Path) -> IncidentIntake:
    rules = tmp_path / "rules.yml"
    rules.write_text("rules:\n  - name: disk\n    match: ['alertname=DiskWillFillIn4Hours']\n")
    rule_set = load_rule_set([str(rules)], tmp_path)
    config = Config.model_validate({"database_url": database.url.render_as_string(False)})
    return IncidentIntake(database, lambda: rule_set, config)


def committer_for(
    database: Database, tmp_path: Path, commits: list[IngestResult], remembered: int = 100
) -> tuple[GroupCommitter, list[Counter[str]]]:
    known: list[Counter[str]] = []
    committer = GroupCommitter(
        real_intake(database, tmp_path), commits.append, known.append, remembered=remembered
    )
    return committer, known


async def count_stored(database: Database) -> int:
    count = select(func.count()).select_from(alert_events)
    return int(await database.read(lambda conn: conn.execute(count).scalar_one()))


async def test_concurrent_submissions_share_commits(database: Database, tmp_path: Path) -> None:
    commits: list[IngestResult] = []
    committer, _ = committer_for(database, tmp_path, commits)
    committer.start()
    try:
        stored = await asyncio.gather(*(committer.submit(body(n)) for n in range(40)))
    finally:
        await committer.stop()
    assert stored == [1] * 40
    assert len(commits) < 40  # the 40 requests did not each pay for a transaction
    assert sum(sum(c.stored) for c in commits) == 40
    assert await count_stored(database) == 40


async def test_a_committed_delivery_again_needs_no_transaction(
    database: Database, tmp_path: Path
) -> None:
    commits: list[IngestResult] = []
    committer, known = committer_for(database, tmp_path, commits)
    committer.start()
    try:
        assert await committer.submit(body(1)) == 1
        assert await committer.submit(body(1) + body(1)) == 0  # an HA pair, twice
        mixed = await committer.submit(body(1) + body(2))
    finally:
        await committer.stop()
    assert mixed == 1
    assert known == [Counter(firing=2), Counter(firing=1)]
    # Only new deliveries reached a transaction: body(1) once, then body(2) alone.
    assert [sum(c.received.values()) for c in commits] == [1, 1]
    assert await count_stored(database) == 2


async def test_without_memory_the_database_deduplicates(database: Database, tmp_path: Path) -> None:
    commits: list[IngestResult] = []
    committer, known = committer_for(database, tmp_path, commits, remembered=0)
    committer.start()
    try:
        assert await committer.submit(body(1)) == 1
        assert await committer.submit(body(1)) == 0
    finally:
        await committer.stop()
    assert known == []
    assert [c.duplicates for c in commits] == [0, 1]
    assert await count_stored(database) == 1


def refused_by_the_store(n: int) -> list[AlertEvent]:
    """A submission the real database layer rejects: a timestamp without a time zone."""
    (event,) = body(n)
    return [dataclasses.replace(event, starts_at=event.starts_at.replace(tzinfo=None))]


async def test_a_failing_submission_fails_alone(database: Database, tmp_path: Path) -> None:
    commits: list[IngestResult] = []
    committer, _ = committer_for(database, tmp_path, commits)
    committer.start()
    submissions = [body(1), refused_by_the_store(2), body(3), body(4)]
    try:
        async with asyncio.timeout(10):  # a request left unanswered must fail, not hang
            results = await asyncio.gather(
                *(committer.submit(s) for s in submissions), return_exceptions=True
            )
            # What failed was not stored, so it is not remembered as stored either.
            with pytest.raises(StatementError):
                await committer.submit(submissions[1])
    finally:
        await committer.stop()
    assert results[0] == results[2] == results[3] == 1
    assert isinstance(results[1], StatementError)
    assert "naive datetime" in str(results[1])
    # All four were queued before the writer ran, so they shared one attempt that failed;
    # each was then committed on its own and only the bad one failed.
    assert [c.stored for c in commits] == [[1], [1], [1]]
    assert await count_stored(database) == 3


async def test_submit_after_stop_is_refused(database: Database, tmp_path: Path) -> None:
    committer, _ = committer_for(database, tmp_path, [])
    committer.start()
    await committer.stop()
    with pytest.raises(IntakeClosedError):
        await committer.submit(body(1))
