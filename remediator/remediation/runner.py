"""The job runner: claim queued jobs, run their actions in order, verify, or escalate.

One supervisor task per process claims jobs (a lease each, renewed while they run) up to
`remediation.workers` at a time and runs each in its own task. Every attempt of every action
is an `action_runs` row and a timeline entry. When the last job of an incident ends:

- an action failed (after its retries) → the incident is `escalated`, with what was tried;
- otherwise → `verifying` until `verify_due_at`; if all its alerts resolve by then (the intake
  sees that), or the rule's `verify.promql` query returns no series (checked every
  `interval`), it ends `resolved` as auto-remediated, else the sweep escalates it.

The same supervisor claims due PromQL checks (moving each one's next check time is its lease)
and runs them in tasks of their own, so a slow Prometheus never holds up jobs. It also sweeps
lapsed leases (a crashed or stopped worker): those jobs become `interrupted` and their
incident is escalated at once, saying so. A half-run action is never run again by another
replica: a playbook cut off mid-way may not be safe to repeat, and only a human can tell.
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
from typing import Any, TypeVar

from sqlalchemy.engine import Connection
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from remediator.config import Config
from remediator.durations import format_duration
from remediator.escalation import chain as escalation_chain
from remediator.escalation.policy import choose_policy
from remediator.guards.decide import Verdict
from remediator.guards.gate import GuardGate, Verdicts
from remediator.incidents.states import IncidentState, check_transition
from remediator.incidents.timeline import Actor, TimelineEntry
from remediator.metrics import Metrics
from remediator.plugins import (
    ActionFailed,
    ActionRequest,
    CheckFailed,
    CheckResult,
    Executor,
    Verifier,
)
from remediator.remediation.verification import PROMQL
from remediator.rules import CompiledAction, CompiledRule, CompiledVerify, RuleSet, TemplateError
from remediator.rules.templating import render_context, render_params
from remediator.store import guards as guard_store
from remediator.store import incidents as incident_store
from remediator.store import jobs as job_store
from remediator.store.database import Database
from remediator.store.outage import OutageLog

log = logging.getLogger(__name__)
_T = TypeVar("_T")

_S = IncidentState
# Verification (and escalation after it) only make sense for an incident still in our hands.
_AUTOMATED = {_S.open.value, _S.remediating.value, _S.verifying.value}
# At most this many verification checks run at once per process; the rest wait a sweep.
MAX_CONCURRENT_CHECKS = 32


def utcnow() -> datetime:
    return datetime.now(UTC)


class RemediationRunner:
    """Runs remediation jobs from the database; start with `start`, end with `stop`."""

    def __init__(
        self,
        db: Database,
        rules: Callable[[], RuleSet],
        config: Config,
        executors: Mapping[str, Executor],
        metrics: Metrics,
        clock: Callable[[], datetime] = utcnow,
        verifiers: Mapping[str, Verifier] | None = None,
        on_escalated: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._rules = rules
        self._config = config.remediation
        self._escalation = config.escalation
        self._executors = executors
        self._metrics = metrics
        self._clock = clock
        self._owner = f"remediator-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._running_rules: dict[int, str] = {}  # job id → its rule, for max_running_per_rule
        self._verifiers = dict(verifiers or {})
        self._checks: set[asyncio.Task[None]] = set()
        self._on_escalated = on_escalated
        self._escalated = 0  # counts escalations; a change after a commit wakes paging
        self._supervisor: asyncio.Task[None] | None = None
        self._gate = GuardGate(config, rules, metrics)

    @property
    def gate(self) -> GuardGate:
        """The guards every claimed job passes (the API reads their settings from it)."""
        return self._gate

    def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name="remediation-supervisor")

    def wake(self) -> None:
        """New jobs were queued: look now rather than at the next poll."""
        if self._config.workers > 0:  # an intake-only replica never claims
            self._wake.set()

    async def stop(self) -> None:
        """Stop claiming; cancel running jobs (their runs are recorded as interrupted)."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        tasks = [*self._running.values(), *self._checks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the supervisor ----------------------------------------------------------------

    async def _supervise(self) -> None:
        # Sweeps (leases, due verifications, PromQL checks) run on the clock; a wake-up
        # (jobs committed, a worker slot free) only claims. Waking the sweep on every
        # intake commit would add write transactions that SQLite serializes with intake.
        period = min(self._config.poll_interval, self._config.lease / 3).total_seconds()
        outage = OutageLog("remediation supervisor", log, period)
        next_sweep = 0.0
        while True:
            try:
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + period
                    await self._sweep_and_renew()
                await self._claim_and_start()
                outage.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database may be briefly unreachable; try again
                next_sweep = time.monotonic() + outage.failed(error)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_sweep - time.monotonic())):
                    await self._wake.wait()
            self._wake.clear()

    async def _sweep_and_renew(self) -> None:
        self._start_checks(await self._write(self._sweep))
        if self._running:
            await self._write(self._renew)

    async def _write(self, transaction: Callable[[Connection], _T]) -> _T:
        """A write transaction; once it commits an escalation, paging is woken for it."""
        before = self._escalated
        result = await self._db.write(transaction)
        if self._escalated != before and self._on_escalated is not None:
            self._on_escalated()
        return result

    async def _claim_and_start(self) -> None:
        free = self._config.workers - len(self._running)
        if free <= 0:
            return
        now = self._clock()
        lease_until = now + self._config.lease

        def claim(conn: Connection) -> list[Any]:
            claimed = job_store.claim(conn, self._owner, free, now, lease_until, self._room)
            if claimed:
                guard_store.lock(conn)  # replicas decide one at a time over the same counts
            return [job for job in claimed if self._admit(conn, job, now)]

        for job in await self._write(claim):
            task = asyncio.create_task(self._run_job(job), name=f"remediation-job-{job.id}")
            self._running[job.id] = task
            self._running_rules[job.id] = job.rule
            task.add_done_callback(functools.partial(self._job_done, job.id))

    def _room(self, rule: str) -> int:
        """How many more jobs of `rule` this replica may run now (max_running_per_rule)."""
        cap = self._config.max_running_per_rule or max(1, self._config.workers // 2)
        return cap - sum(1 for running_rule in self._running_rules.values() if running_rule == rule)

    def _admit(self, conn: Connection, job: Any, now: datetime) -> bool:
        """Ask the guards about a claimed job: True = run it; else it is blocked or waits."""
        incident = incident_store.get_incident(conn, job.incident_id, lock=True)
        if incident is None:
            return False  # deleted with its incident meanwhile
        verdicts = self._gate.decide(conn, job, incident.priority, now)
        incident_store.append_timeline(conn, [verdicts.entry])
        if verdicts.verdict is Verdict.allowed:
            return True
        if verdicts.verdict is Verdict.pending:
            self._await_approval(conn, incident, verdicts, now)
            return False
        job_store.finish(conn, job.id, job_store.BLOCKED, verdicts.reason, now)
        self._metrics.remediation_jobs.labels(job_store.BLOCKED).inc()
        self._wake.set()  # its worker slot is free again
        self._hand_over(conn, incident, f"automation blocked: {verdicts.reason}", now)
        return False

    def _hand_over(self, conn: Connection, incident: Any, reason: str, now: datetime) -> None:
        """A job that will not run: escalate, unless the incident is decided by another job
        or by a verification already under way (its outcome covers every alert)."""
        if incident.state != _S.open.value:
            return
        active = job_store.states_of_incident(conn, incident.id)
        if any(state in job_store.ACTIVE_STATES for state in active):
            return
        self._escalate(conn, incident, reason, now)

    def _await_approval(
        self, conn: Connection, incident: Any, verdicts: Verdicts, now: datetime
    ) -> None:
        rule = _rule_named(self._rules(), verdicts.job.rule)
        approval = self._gate.guards_of(rule).approval if rule else None
        timeout = approval.timeout if approval else timedelta(hours=1)
        job_store.await_approval(conn, verdicts.job.id, now + timeout)
        self._wake.set()
        self._escalated += 1  # the approval request is paged like an escalation
        policy = self._policy_for(incident, rule)
        reason = (
            f"approval needed: job {verdicts.job.id} of rule {verdicts.job.rule} waits up to "
            f"{format_duration(timeout)} for an operator to approve or reject it"
        )
        escalation_chain.start(conn, incident.id, policy, reason, now)

    async def approve(self, job_id: int, by: str, note: str | None = None) -> Any:
        """An operator approves a waiting job: it is queued again and runs once the other
        guards still allow it. Raises LookupError / ValueError when it cannot be approved."""

        def write(conn: Connection) -> Any:
            job = self._waiting_job(conn, job_id)
            now = self._clock()
            job_store.approve(conn, job_id, by, now)
            entry = TimelineEntry(
                job.incident_id,
                now,
                Actor.user(by),
                "approval_given",
                f"{by} approved job {job_id}"
                + (f": {note}" if note else "")
                + "; it runs once the other guards still allow it",
                data={"job_id": job_id},
            )
            incident_store.append_timeline(conn, [entry])
            escalation_chain.stop(
                conn, job.incident_id, "acknowledge", f"remediation approved by {by}", now
            )
            self._escalated += 1  # channels hear that the request was answered
            return job_store.get_job(conn, job_id)

        job = await self._write(write)
        self.wake()
        return job

    async def reject(self, job_id: int, by: str, note: str | None) -> Any:
        """An operator rejects a waiting job: it ends and the incident escalates."""

        def write(conn: Connection) -> Any:
            job = self._waiting_job(conn, job_id)
            now = self._clock()
            why = f"approval rejected by {by}" + (f": {note}" if note else "")
            job_store.end_waiting(conn, job_id, job_store.REJECTED, why, now)
            self._metrics.remediation_jobs.labels(job_store.REJECTED).inc()
            entry = TimelineEntry(
                job.incident_id,
                now,
                Actor.user(by),
                "approval_rejected",
                why,
                data={"job_id": job_id},
            )
            incident_store.append_timeline(conn, [entry])
            incident = incident_store.get_incident(conn, job.incident_id, lock=True)
            if incident is not None:
                self._hand_over(conn, incident, f"remediation not run: {why}", now)
            return job_store.get_job(conn, job_id)

        return await self._write(write)

    @staticmethod
    def _waiting_job(conn: Connection, job_id: int) -> Any:
        job = job_store.get_job(conn, job_id, lock=True)
        if job is None:
            raise LookupError(f"job {job_id} does not exist")
        if job.state != job_store.AWAITING_APPROVAL:
            raise ValueError(f"job {job_id} is {job.state}, not awaiting approval")
        return job

    def _approvals_expired(self, conn: Connection, now: datetime) -> None:
        for job in job_store.approvals_due(conn, now):
            why = "no operator approved or rejected it in time"
            if not job_store.end_waiting(conn, job.id, job_store.REJECTED, why, now):
                continue
            self._metrics.remediation_jobs.labels(job_store.REJECTED).inc()
            entry = TimelineEntry(
                job.incident_id,
                now,
                Actor.system(),
                "approval_expired",
                f"job {job.id} was not run: {why}",
                data={"job_id": job.id},
            )
            incident_store.append_timeline(conn, [entry])
            incident = incident_store.get_incident(conn, job.incident_id, lock=True)
            if incident is not None:
                self._hand_over(
                    conn, incident, f"remediation not run: approval timed out: {why}", now
                )

    def _job_done(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self._running.pop(job_id, None)
        self._running_rules.pop(job_id, None)
        self._wake.set()  # a worker slot is free

    def _renew(self, conn: Connection) -> None:
        job_store.renew(conn, list(self._running), self._owner, self._clock() + self._config.lease)

    def _sweep(self, conn: Connection) -> list[Any]:
        """Interrupted jobs escalate their incidents; verifications past due escalate.

        Returns the PromQL checks now due, claimed for this process.
        """
        now = self._clock()
        lapsed = job_store.lapsed(conn, now)
        job_store.mark_interrupted(conn, [job.id for job in lapsed], now)
        guard_store.end(conn, [job.id for job in lapsed], now)
        self._approvals_expired(conn, now)
        for job in lapsed:
            self._metrics.remediation_jobs.labels(job_store.INTERRUPTED).inc()
            why = (
                "interrupted: the replica running it stopped (its lease lapsed); a half-run "
                "action is not run again"
            )
            self._after_job(conn, job.incident_id, job.id, why, now)
        for incident in incident_store.verifications_due(conn, now):
            self._escalate(conn, incident, _not_verified(incident), now)
        free = MAX_CONCURRENT_CHECKS - len(self._checks)
        if PROMQL not in self._verifiers or free <= 0:
            return []
        return incident_store.claim_promql_checks(conn, now, free, self._next_check)

    def _next_check(self, row: Any) -> datetime:
        verify = _verify_of(self._rules(), row.rule)
        interval = verify.interval if verify is not None else timedelta(seconds=30)
        return self._clock() + interval

    # -- PromQL checks -------------------------------------------------------------------

    def _start_checks(self, checks: list[Any]) -> None:
        for row in checks:
            task = asyncio.create_task(self._check(row), name=f"verify-incident-{row.id}")
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

    async def _check(self, row: Any) -> None:
        verifier = self._verifiers[PROMQL]
        try:
            outcome: CheckResult | CheckFailed = await verifier.check(row.verify_query)
        except CheckFailed as exc:
            outcome = exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken plugin must not take the runner down
            log.exception("verification check of incident %s failed unexpectedly", row.id)
            outcome = CheckFailed(f"verifier error: {type(exc).__name__}: {exc}")
        try:
            await self._write(lambda conn: self._checked(conn, row, outcome))
        except Exception:  # the database: the check runs again at its next time
            log.exception("could not record the verification check of incident %s", row.id)

    def _checked(self, conn: Connection, row: Any, outcome: CheckResult | CheckFailed) -> None:
        incident = incident_store.get_incident(conn, row.id, lock=True)
        if incident is None or incident.state != _S.verifying.value:
            return  # resolved by its alerts, or acknowledged, meanwhile
        if incident.verify_query != row.verify_query:
            return  # a later remediation started another verification
        now = self._clock()
        query = row.verify_query
        if isinstance(outcome, CheckResult) and outcome.healthy:
            self._metrics.verification_checks.labels("healthy").inc()
            reason = f"auto-remediated: verified by PromQL: {query} {outcome.summary}"
            self._transition(conn, incident, _S.resolved, reason, resolved=True)
        elif isinstance(outcome, CheckFailed) and outcome.permanent:
            self._metrics.verification_checks.labels("error").inc()
            reason = f"not verified: the PromQL check cannot run: {outcome.summary}"
            self._escalate(conn, incident, reason, now)
        else:
            ran = isinstance(outcome, CheckResult)
            self._metrics.verification_checks.labels("unhealthy" if ran else "error").inc()
            what = outcome.summary if ran else f"failed: {outcome.summary}; will try again"
            entry = TimelineEntry(
                incident.id, now, Actor.system(), "verification_check", f"PromQL {query}: {what}"
            )
            incident_store.append_timeline(conn, [entry])

    # -- one job -----------------------------------------------------------------------

    async def _run_job(self, job: Any) -> None:
        rule = _rule_named(self._rules(), job.rule)
        failure: str | None = None
        try:
            await self._write(lambda conn: self._started(conn, job, rule))
            if rule is None:
                failure = f"rule {job.rule} is no longer loaded; nothing was run"
            else:
                failure = await self._run_actions(job, rule)
        except asyncio.CancelledError:
            # Shutting down: leave the job running with its lease; the next sweep (here or on
            # another replica) marks it interrupted once the lease lapses.
            raise
        except Exception as exc:  # a bug or the database: record it, never lose the job
            log.exception("remediation job %s failed unexpectedly", job.id)
            failure = f"internal error: {type(exc).__name__}: {exc}"
        await self._write(lambda conn: self._finished(conn, job, failure))

    async def _run_actions(self, job: Any, rule: CompiledRule) -> str | None:
        """Run the rule's actions in order; the first failure stops them. None = all ok."""
        context = render_context(
            job.labels,
            job.annotations,
            {"fingerprint": job.fingerprint, "status": "firing", "starts_at": str(job.starts_at)},
            {"id": job.incident_id, "rule": rule.name},
        )
        for index, action in enumerate(rule.actions):
            if index > 0 and (stop := await self._paused()) is not None:
                return f"stopped before action {index + 1} ({action.type}): {stop}"
            try:
                params = render_params(action.params, context)
            except TemplateError as exc:
                await self._record_template_error(job, index, action, exc)
                return f"action {index + 1} ({action.type}): {exc}"
            error = await self._run_action(job, index, action, params)
            if error is not None:
                return f"action {index + 1} ({action.type}) failed: {error}"
        return None

    async def _paused(self) -> str | None:
        """Why no further action may start: the kill switch, if it went on meanwhile."""
        now = self._clock()
        pause = await self._db.read(lambda conn: guard_store.active_pause(conn, now))
        return None if pause is None else f"automation was paused by {pause.by}: {pause.reason}"

    async def _run_action(
        self, job: Any, index: int, action: CompiledAction, params: dict[str, Any]
    ) -> str | None:
        executor = self._executors.get(action.type)
        if executor is None:
            return f"no executor for action type {action.type!r} is installed"
        retries = int(params.get("retries", 0))
        timeout = params.get("timeout") or timedelta(minutes=5)
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, ActionFailed) and exc.retryable),
            stop=stop_after_attempt(retries + 1),
            wait=wait_random_exponential(multiplier=1, max=60),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    request = ActionRequest(
                        job_id=job.id,
                        incident_id=job.incident_id,
                        rule=job.rule,
                        action_index=index,
                        attempt=attempt.retry_state.attempt_number,
                        params=params,
                        labels=job.labels,
                        annotations=job.annotations,
                        dry_run=bool(job.dry_run),
                    )
                    await self._attempt(executor, request, _seconds(timeout))
        except ActionFailed as exc:
            return exc.summary
        return None

    async def _attempt(self, executor: Executor, request: ActionRequest, limit_s: float) -> None:
        started = self._clock()
        try:
            async with asyncio.timeout(limit_s):
                result = await executor.run(request)
        except TimeoutError:
            failure = ActionFailed(f"timed out after {limit_s:g}s and was cancelled")
            await self._record(request, started, "timeout", failure.summary, "", False)
            raise failure from None
        except ActionFailed as exc:
            await self._record(request, started, "failed", exc.summary, exc.output, exc.retryable)
            raise
        except Exception as exc:  # a broken plugin must not take the runner down
            failure = ActionFailed(f"executor error: {type(exc).__name__}: {exc}")
            await self._record(request, started, "failed", failure.summary, "", False)
            raise failure from exc
        outcome = "dry_run" if request.dry_run else "succeeded"
        await self._record(request, started, outcome, result.summary, result.output, False)

    async def _record(
        self,
        request: ActionRequest,
        started: datetime,
        outcome: str,
        summary: str,
        output: str,
        retryable: bool,
    ) -> None:
        limit = self._config.output_max_bytes
        encoded = output.encode()
        truncated = len(encoded) > limit
        kind = str(request.params.get("type"))
        self._metrics.action_runs.labels(kind, outcome).inc()
        row = {
            "job_id": request.job_id,
            "incident_id": request.incident_id,
            "action_index": request.action_index,
            "type": kind,
            "attempt": request.attempt,
            "params": _jsonable(request.params),
            "started_at": started,
            "finished_at": self._clock(),
            "outcome": outcome,
            "retryable": retryable,
            "summary": summary,
            "output": encoded[:limit].decode(errors="ignore") if truncated else output,
            "output_truncated": truncated,
        }
        retry_note = " (will retry)" if retryable else ""
        entry = TimelineEntry(
            request.incident_id,
            row["finished_at"],
            Actor.rule(request.rule),
            f"action_{outcome}",
            f"{kind} action {request.action_index + 1}, attempt {request.attempt}: "
            f"{outcome}: {summary}{retry_note}",
            data={"job_id": request.job_id},
        )

        def write(conn: Connection) -> None:
            job_store.record_run(conn, row)
            incident_store.append_timeline(conn, [entry])

        await self._write(write)

    async def _record_template_error(
        self, job: Any, index: int, action: CompiledAction, exc: TemplateError
    ) -> None:
        request = ActionRequest(
            job.id, job.incident_id, job.rule, index, 1, {"type": action.type}, {}, {}, False
        )
        await self._record(request, self._clock(), "failed", f"template error: {exc}", "", False)

    # -- incident transitions -------------------------------------------------------------

    def _started(self, conn: Connection, job: Any, rule: CompiledRule | None) -> None:
        incident = incident_store.get_incident(conn, job.incident_id, lock=True)
        if incident is None or incident.state not in (_S.open.value, _S.verifying.value):
            return
        what = ", ".join(a.type for a in rule.actions) if rule else "nothing"
        mode = " [dry run]" if job.dry_run else ""
        self._transition(conn, incident, _S.remediating, f"job {job.id} runs {what}{mode}")

    def _finished(self, conn: Connection, job: Any, failure: str | None) -> None:
        now = self._clock()
        state = job_store.FAILED if failure else job_store.SUCCEEDED
        if not job_store.finish(conn, job.id, state, failure or "all actions succeeded", now):
            return  # marked interrupted meanwhile; the sweep handled the incident
        guard_store.end(conn, [job.id], now)  # its targets are free, cooldowns start
        self._metrics.remediation_jobs.labels(state).inc()
        self._after_job(conn, job.incident_id, job.id, failure, now)

    def _after_job(
        self,
        conn: Connection,
        incident_id: int,
        job_id: int,
        failure: str | None,
        now: datetime,
    ) -> None:
        incident = incident_store.get_incident(conn, incident_id, lock=True)
        if incident is None or incident.state not in _AUTOMATED:
            return
        if failure is not None:
            self._escalate(conn, incident, f"remediation failed: job {job_id}: {failure}", now)
            return
        if any(
            state in job_store.ACTIVE_STATES
            for state in job_store.states_of_incident(conn, incident_id)
        ):
            return  # the incident's other jobs decide when they end
        if incident.firing_count == 0:
            self._transition(
                conn,
                incident,
                _S.resolved,
                "auto-remediated: every alert resolved during remediation",
                resolved=True,
            )
            return
        self._start_verifying(conn, incident, now)

    def _start_verifying(self, conn: Connection, incident: Any, now: datetime) -> None:
        verify = _verify_of(self._rules(), incident.rule)
        window = verify.window if verify is not None else None
        if window is None:
            window = self._config.verify_resolved_within
        intro = f"remediation done; verifying within {format_duration(window)}: "
        if verify is None or verify.promql is None:
            reason = intro + "all alerts must resolve"
            self._transition(conn, incident, _S.verifying, reason, verify_due_at=now + window)
            return
        if PROMQL not in self._verifiers:
            reason = intro + (
                "all alerts must resolve (the rule's PromQL check is skipped: "
                "verifiers.promql is not configured)"
            )
            self._transition(conn, incident, _S.verifying, reason, verify_due_at=now + window)
            return
        context = render_context(
            incident.labels,
            incident.annotations,
            {},
            {"id": incident.id, "key": incident.key, "rule": incident.rule},
        )
        try:
            query = verify.promql.render(context)
        except TemplateError as exc:
            self._escalate(conn, incident, f"not verified: verify.promql: {exc}", now)
            return
        reason = intro + (
            f"PromQL {query} must return no series (checked every "
            f"{format_duration(verify.interval)}), or all alerts resolve"
        )
        self._transition(
            conn,
            incident,
            _S.verifying,
            reason,
            verify_due_at=now + window,
            verify_query=query,
            verify_check_at=now + verify.interval,
        )

    def _escalate(self, conn: Connection, incident: Any, reason: str, now: datetime) -> None:
        self._escalated += 1
        self._metrics.incidents_escalated.inc()
        self._transition(conn, incident, _S.escalated, reason)
        incident_store.mark_first(conn, incident.id, "escalated_at", now)
        # Remediations that ran for it failed or did not verify: the rule's breaker counts.
        incident_store.append_timeline(conn, self._gate.settle(conn, incident.id, False, now))
        policy = self._policy_for(incident, _rule_named(self._rules(), incident.rule))
        escalation_chain.start(conn, incident.id, policy, reason, now)

    def _policy_for(self, incident: Any, rule: CompiledRule | None) -> str | None:
        return choose_policy(
            self._escalation,
            rule.escalate_policy if rule else None,
            incident.priority,
            matched=incident.rule is not None,
        )

    def _transition(
        self,
        conn: Connection,
        incident: Any,
        target: IncidentState,
        reason: str,
        *,
        resolved: bool = False,
        verify_due_at: datetime | None = None,
        verify_query: str | None = None,
        verify_check_at: datetime | None = None,
    ) -> None:
        check_transition(incident.id, incident.state, target)
        now = self._clock()
        values: dict[str, Any] = {
            "state": target.value,
            "updated_at": now,
            "verify_due_at": verify_due_at,
            "verify_query": verify_query,
            "verify_check_at": verify_check_at,
        }
        if resolved:
            values |= {
                "resolved_at": now,
                "resolved_reason": reason,
                "resolution": "automation",
                "resolve_seconds": incident_store.seconds_since(incident.opened_at, now),
            }
            self._gate.settle(conn, incident.id, True, now)  # verified: breakers reset
        incident_store.update_incident(conn, incident.id, values)
        entry = TimelineEntry(
            incident.id,
            now,
            Actor.system(),
            "state_changed",
            reason,
            from_state=incident.state,
            to_state=target.value,
        )
        incident_store.append_timeline(conn, [entry])


def _rule_named(rules: RuleSet, name: str | None) -> CompiledRule | None:
    return next((rule for rule in rules.rules if rule.name == name), None)


def _verify_of(rules: RuleSet, name: str | None) -> CompiledVerify | None:
    rule = _rule_named(rules, name)
    return rule.verify if rule is not None else None


def _not_verified(incident: Any) -> str:
    alerts = f"{incident.firing_count} of {incident.alert_count} alert(s) still firing"
    if incident.verify_query:
        return (
            f"not verified: PromQL {incident.verify_query} never returned an empty result and "
            f"{alerts} when the verification window ended (each check is on the timeline)"
        )
    return f"not verified: {alerts} when the verification window ended"


def _seconds(value: Any) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    return value
