"""Group commit: concurrent requests share transactions; one bad request fails alone."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select

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


async def test_concurrent_submissions_share_commits(database: Database, tmp_path: Path) -> None:
    commits: list[IngestResult] = []
    committer = GroupCommitter(real_intake(database, tmp_path), commits.append)
    committer.start()
    try:
        stored = await asyncio.gather(*(committer.submit(body(n)) for n in range(40)))
        again = await committer.submit(body(0))
    finally:
        await committer.stop()
    assert stored == [1] * 40
    assert again == 0  # a redelivery is not new
    assert len(commits) < 40  # the 40 requests did not each pay for a transaction
    assert sum(sum(c.stored) for c in commits) == 40
    count = select(func.count()).select_from(alert_events)
    assert await database.read(lambda conn: conn.execute(count).scalar()) == 40


class FailsOn:
    """An intake that refuses any transaction holding one marked submission."""

    def __init__(self, poison: Sequence[AlertEvent]) -> None:
        self.poison = poison
        self.transactions: list[int] = []

    async def ingest_many(self, submissions: Sequence[Sequence[AlertEvent]]) -> IngestResult:
        await asyncio.sleep(0.01)  # long enough for the others to queue behind
        self.transactions.append(len(submissions))
        if any(s is self.poison for s in submissions):
            raise ValueError("refused")
        return IngestResult(stored=[len(s) for s in submissions])


async def test_a_failing_submission_fails_alone() -> None:
    poison = body(99)
    fake = FailsOn(poison)
    committer = GroupCommitter(fake, lambda result: None)  # type: ignore[arg-type]
    committer.start()
    try:
        first = asyncio.create_task(committer.submit(body(0)))
        await asyncio.sleep(0)  # the writer takes the first one alone
        rest = [asyncio.create_task(committer.submit(b)) for b in (body(1), poison, body(2))]
        results = await asyncio.gather(first, *rest, return_exceptions=True)
    finally:
        await committer.stop()
    assert results[0] == 1
    assert results[1] == 1
    assert isinstance(results[2], ValueError)
    assert results[3] == 1
    assert fake.transactions == [1, 3, 1, 1, 1]  # the shared try, then one by one


async def test_submit_after_stop_is_refused(database: Database, tmp_path: Path) -> None:
    committer = GroupCommitter(real_intake(database, tmp_path), lambda result: None)
    committer.start()
    await committer.stop()
    with pytest.raises(IntakeClosedError):
        await committer.submit(body(1))
