"""Group commit: many webhook requests, one transaction.

Every commit costs a disk flush (SQLite's WAL with synchronous=FULL, PostgreSQL's WAL) and a
fixed number of statements, and SQLite has a single writer. So instead of one transaction
per request, one writer task takes every request waiting at that moment and commits them
together; each request is answered only after that commit, so "stored before 2xx" holds.
Under light load a batch is a single request and nothing waits; under heavy load the cost
of a commit is shared by everyone who arrived while the previous one ran.

Deliveries this process has already committed are answered without joining a commit at
all (see `remediator.intake.recent`): re-deliveries are most of Alertmanager's traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from remediator.incidents.ingest import IncidentIntake, IngestResult
from remediator.intake.model import AlertEvent
from remediator.intake.recent import RecentDeliveries

log = logging.getLogger(__name__)

DEFAULT_MAX_ALERTS_PER_COMMIT = 1000
DEFAULT_REMEMBERED_DELIVERIES = 20_000


class IntakeClosedError(RuntimeError):
    """The service is shutting down and takes no new alerts; the sender should retry."""


@dataclass(slots=True)
class _Pending:
    events: Sequence[AlertEvent]
    done: asyncio.Future[int]


class GroupCommitter:
    """Queues submissions and commits them in batches from one writer task."""

    def __init__(
        self,
        intake: IncidentIntake,
        on_commit: Callable[[IngestResult], None],
        on_known: Callable[[Counter[str]], None],
        max_alerts: int = DEFAULT_MAX_ALERTS_PER_COMMIT,
        remembered: int = DEFAULT_REMEMBERED_DELIVERIES,
    ) -> None:
        self._intake = intake
        self._on_commit = on_commit
        self._on_known = on_known
        self._max_alerts = max_alerts
        self._recent = RecentDeliveries(remembered)
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, events: Sequence[AlertEvent]) -> int:
        """Commit these events (with whoever else is waiting); return how many were new.

        Events this process already committed are not committed again: they count as
        duplicates at once. Raises what the database raised if the commit failed, so the
        caller can answer 5xx.
        """
        if self._writer is None or self._writer.done():
            raise IntakeClosedError("the intake writer is not running")
        unknown, known = self._recent.split(events)
        if known:
            self._on_known(known)
        if not unknown:
            return 0
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(unknown, done))
        return await done

    def start(self) -> None:
        self._writer = asyncio.create_task(self._run(), name="remediator-intake-writer")

    async def stop(self) -> None:
        """Commit what is already queued, then end the writer task."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        await self._queue.join()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            alerts = len(batch[0].events)
            while alerts < self._max_alerts and not self._queue.empty():
                batch.append(self._queue.get_nowait())
                alerts += len(batch[-1].events)
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            result = await self._intake.ingest_many([pending.events for pending in batch])
        except Exception as exc:  # every failure goes back to the request that caused it
            if len(batch) > 1:
                # One bad submission must not fail the others: commit each on its own.
                for pending in batch:
                    await self._commit([pending])
                return
            if not batch[0].done.done():
                batch[0].done.set_exception(exc)
            return
        self._on_commit(result)
        for pending in batch:
            self._recent.remember(pending.events)
        for pending, stored in zip(batch, result.stored, strict=True):
            if not pending.done.done():  # the requester may have gone away; the data is in
                pending.done.set_result(stored)
