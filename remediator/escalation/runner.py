"""The escalation runner: advances due chains and delivers notifications, with retries.

One supervisor task per process, on a clock (`remediation.poll_interval`):

- records SLA breaches (an unresolved incident past its acknowledgement or resolution due
  time), once each, and moves its chain on (see `chain.breach`);
- claims chains whose next step is due (moving their due time is the lease) and advances
  them in the same transaction (see `chain.advance`);
- claims due notifications with a lease and sends each in a task of its own, so a slow or
  failing channel never holds up another. Every attempt is a timeline entry. A retryable
  failure (network, 5xx, 429) is tried again after an exponential backoff with jitter, or
  the receiver's Retry-After if longer, up to `escalation.max_delivery_attempts`; anything
  else fails the notification at once. A sender that dies leaves a lease that lapses, and
  the notification is sent again: channels with deduplication (PagerDuty's dedup_key,
  Opsgenie's alias) make that harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy.engine import Connection
from tenacity import RetryCallState, wait_random_exponential

from remediator.config import Config
from remediator.escalation import chain as chains
from remediator.escalation.message import build_notification
from remediator.incidents.timeline import Actor, TimelineEntry
from remediator.metrics import Metrics
from remediator.plugins import Channel, DeliveryFailed, DeliveryResult
from remediator.store import escalations as store
from remediator.store import incidents as incident_store
from remediator.store.database import Database
from remediator.store.outage import OutageLog

log = logging.getLogger(__name__)

# A claimed chain or notification is held this long (renewed every third of it while a
# send is in flight); a sender that dies loses it after.
LEASE: Final = timedelta(seconds=30)
MAX_CONCURRENT_SENDS: Final = 32
_BACKOFF: Final = wait_random_exponential(multiplier=2, max=300)


def utcnow() -> datetime:
    return datetime.now(UTC)


class EscalationRunner:
    """Runs escalation chains from the database; `start`, then `stop`."""

    def __init__(
        self,
        db: Database,
        config: Config,
        channels: Mapping[str, Channel],
        metrics: Metrics,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._config = config
        self._channels = channels
        self._metrics = metrics
        self._clock = clock
        self._owner = f"escalation-{uuid.uuid4().hex[:12]}"
        self._sending: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name="escalation-supervisor")

    def wake(self) -> None:
        """A chain started or stopped (committed): page now rather than at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        tasks = list(self._sending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _supervise(self) -> None:
        # On the clock: record SLA breaches and renew the leases of sends in flight (so a
        # crash delays its pages by one lease, not longer). Every poll and whenever woken
        # (a chain changed, a send finished): advance due chains, claim due notifications.
        period = self._config.remediation.poll_interval.total_seconds()
        outage = OutageLog("escalation supervisor", log, period)
        next_sweep = next_renewal = 0.0
        while True:
            wait = period
            try:
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + period
                    if await self._db.read(self._breach_due):
                        await self._db.write(self._record_breaches)
                if now >= next_renewal and self._sending:
                    next_renewal = now + LEASE.total_seconds() / 3
                    await self._db.write(self._renew)
                # Reads first: an idle runner never takes the write lock intake needs.
                if await self._db.read(self._work_due):
                    await self._db.write(self._advance_due)
                    self._start_sends(await self._db.write(self._claim))
                outage.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database may be briefly unreachable; try again
                wait = outage.failed(error)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()

    def _breach_due(self, conn: Connection) -> bool:
        return incident_store.sla_breach_due(conn, self._clock())

    def _work_due(self, conn: Connection) -> bool:
        return store.work_due(conn, self._clock())

    def _renew(self, conn: Connection) -> None:
        if self._sending:
            lease_until = self._clock() + LEASE
            store.renew_notifications(conn, list(self._sending), self._owner, lease_until)

    def _record_breaches(self, conn: Connection) -> None:
        now = self._clock()
        for incident, kind in incident_store.claim_sla_breaches(conn, now, 100):
            self._metrics.sla_breaches.labels(incident.priority, kind).inc()
            chains.breach(conn, incident, kind, self._config.escalation, now)

    def _advance_due(self, conn: Connection) -> None:
        now = self._clock()
        for chain in store.claim_due(conn, now, 100, now + LEASE):
            chains.advance(conn, chain, self._config.escalation, now)

    def _claim(self, conn: Connection) -> list[Any]:
        free = MAX_CONCURRENT_SENDS - len(self._sending)
        if free <= 0:
            return []
        now = self._clock()
        rows = store.claim_notifications(conn, self._owner, now, free, now + LEASE)
        return [(row, build_notification(conn, row, self._config, now)) for row in rows]

    def _start_sends(self, claimed: list[Any]) -> None:
        for row, notification in claimed:
            task = asyncio.create_task(self._send(row, notification), name=f"notify-{row.id}")
            self._sending[row.id] = task
            task.add_done_callback(functools.partial(self._sent, row.id))

    def _sent(self, notification_id: int, _task: asyncio.Task[None]) -> None:
        self._sending.pop(notification_id, None)
        self._wake.set()  # a slot is free, and an acknowledge may wait for this page

    async def _send(self, row: Any, notification: Any) -> None:
        channel = self._channels.get(row.channel)
        outcome: DeliveryResult | DeliveryFailed
        if channel is None:
            outcome = DeliveryFailed(f"channel {row.channel} is not configured any more")
        else:
            try:
                outcome = await channel.send(notification)
            except DeliveryFailed as exc:
                outcome = exc
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broken plugin must not take the runner down
                log.exception("channel %s failed unexpectedly", row.channel)
                outcome = DeliveryFailed(f"channel error: {type(exc).__name__}: {exc}")
        try:
            await self._db.write(lambda conn: self._record(conn, row, outcome))
        except Exception:  # the lease lapses and the notification is sent again
            log.exception("could not record notification %s", row.id)

    def _record(self, conn: Connection, row: Any, outcome: DeliveryResult | DeliveryFailed) -> None:
        now = self._clock()
        attempt = row.attempts + 1
        what = f"{row.event} to {row.channel}, attempt {attempt}"
        if isinstance(outcome, DeliveryResult):
            values: dict[str, Any] = {"state": store.SENT, "summary": outcome.summary}
            values |= {"reference": outcome.reference, "finished_at": now}
            kind, message, label = "notification_sent", f"{what}: sent: {outcome.summary}", "sent"
        elif row.event == "trigger" and not store.is_active(conn, row.escalation_id):
            # The chain stopped while this page was on its way: do not try it again.
            values = {"state": store.CANCELLED, "finished_at": now}
            values |= {"summary": f"{outcome.summary}; not retried: escalation stopped"}
            kind, label = "notification_failed", "failed"
            message = f"{what}: failed: {outcome.summary} (not retried: escalation stopped)"
        elif outcome.retryable and attempt < self._config.escalation.max_delivery_attempts:
            delay = _retry_delay(attempt, outcome.retry_after)
            values = {"state": store.PENDING, "summary": outcome.summary}
            values |= {"next_at": now + timedelta(seconds=delay)}
            kind, label = "notification_failed", "retried"
            message = f"{what}: failed: {outcome.summary} (will retry in {delay:.0f}s)"
        else:
            values = {"state": store.FAILED, "summary": outcome.summary, "finished_at": now}
            kind, label = "notification_failed", "failed"
            message = f"{what}: failed: {outcome.summary}"
        values |= {"attempts": attempt, "lease_owner": None, "lease_expires_at": None}
        store.update_notification(conn, row.id, values)
        self._metrics.notifications.labels(row.channel, row.event, label).inc()
        entry = TimelineEntry(row.incident_id, now, Actor.system(), kind, message)
        incident_store.append_timeline(conn, [entry])


def _retry_delay(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter (tenacity's), or the receiver's Retry-After if longer."""
    state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    state.attempt_number = attempt
    # A receiver's Retry-After is honoured up to an hour: a page is no use days late.
    return max(float(_BACKOFF(state)), min(retry_after or 0.0, 3600.0))
