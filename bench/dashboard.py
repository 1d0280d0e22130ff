"""Incident list, incident detail, quality report and dashboard pages with 100,000 incidents.

    python -m bench.dashboard [--incidents N] [--requests N] [--database sqlite|postgresql]
                              [--json FILE] [--keep]

Issue 6 ("Performance"): pages and the quality report stay fast with 100,000 incidents
stored; the list page and the quality report under 300 ms each.

1. A fresh database: a SQLite file in a temp dir, or (`--database postgresql`) the scratch
   database postgresql+asyncpg://postgres@127.0.0.1:5432/test, whose remediator tables are
   dropped first; then `remediator db upgrade` on it.
2. A 90-day history is inserted directly (SQLAlchemy Core executemany, 5,000 incidents per
   chunk, one transaction): 60% resolved by automation, 15% by a human, 15% at the alert,
   10% never resolved; P1-P4; the shipped rules, three retired ones and no rule; per
   incident its alert, its timeline, and for matched ones a remediation job and its action
   run, every column as the service would have written it (see `History`).
3. The real `remediator serve` on that database (shipped rules, `remediation: {workers: 0}`,
   one viewer API token), ready on /readyz.
4. Each request sequentially: 3 warm-ups, then --requests timed (send to last body byte),
   p50 / p95 / max, against 300 ms (p95) for the list and the quality report. The dashboard
   pages log in with `POST /login` (form field `token`) and send its session cookie back;
   a 404 there means the pages are not in this build: their rows are skipped.
5. The server's VmRSS / VmHWM after the run, and the database size.

Exit status 1 on a MISS, a non-200 answer or a wrong count. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode

import aiohttp
import orjson
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from bench.webhook import (
    MIB,
    RULES_DIR,
    UNMATCHED,
    BenchError,
    Server,
    _loadavg,
    _percentile,
    _proc_status,
    _progress,
    _session,
    _sqlite_sizes,
    run_stoppable,
    write_json,
)
from remediator.config import DEFAULT_SLA
from remediator.incidents.priority import Priority
from remediator.store.schema import (
    action_runs,
    incident_alerts,
    incidents,
    known_resolutions,
    metadata,
    remediation_jobs,
    timeline,
)

POSTGRES_URL: Final = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TOKEN: Final = "bench-dashboard-viewer-token"  # noqa: S105 (a throwaway local token)
TARGET_S: Final = 0.300
WARMUP: Final = 3
CHUNK: Final = 5_000
DAYS: Final = 90
# The newest incident is this old, so its remediation job has ended (a job still running
# would be swept as interrupted by the server, and a verification still pending escalated).
NEWEST_AGE: Final = timedelta(minutes=15)
VERIFY_WITHIN: Final = timedelta(minutes=5)  # remediation.verify_resolved_within's default
RECURRENCE_WINDOW: Final = timedelta(hours=24)  # incidents.recurrence_window's default
SEED: Final = 1
SERVICES: Final = 40
INSTANCES_PER_SERVICE: Final = 4
NAMESPACES: Final = ("shop", "platform", "data", "edge")
USERS: Final = ("alice", "bob", "carol", "dave", "erin", "frank")
PRIORITY_WEIGHTS: Final = {"P1": 0.10, "P2": 0.25, "P3": 0.40, "P4": 0.25}
PRIORITIES: Final = list(PRIORITY_WEIGHTS)
PRIORITY_SHARES: Final = list(PRIORITY_WEIGHTS.values())
SEVERITY: Final = {"P1": "critical", "P2": "error", "P3": "warning", "P4": "info"}
# A human's time to acknowledge a page, mean by priority (exponential).
ACK_MEAN: Final = {"P1": 240.0, "P2": 600.0, "P3": 1_800.0, "P4": 7_200.0}
# Rules that opened incidents in the period but are no longer in the rule files.
RETIRED_RULES: Final = (
    ("legacy-disk-cleanup", "NodeDiskRunningFull", "ansible"),
    ("redis-memory-restart", "RedisMemoryHigh", "ansible"),
    ("queue-backlog-scale", "QueueBacklogGrowing", "http"),
)
FIXES: Final = (
    "rolled back the last release",
    "restarted the upstream dependency",
    "freed disk space by hand: old backups",
    "raised the memory limit",
    "renewed the certificate",
    "failed over to the replica",
)
REQUEST_TIMEOUT_S: Final = 120.0
MIGRATE_TIMEOUT_S: Final = 300.0


# -- the history --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleSpec:
    name: str
    alertname: str
    action: str
    runbook: str | None
    weight: float


def load_rules() -> list[RuleSpec]:
    """The shipped rules (name, alertname, first action type) and the retired ones.

    Weights fall off as 1/rank: a few rules open most incidents, as in production.
    """
    found: list[tuple[str, str, str, str | None]] = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        for rule in (yaml.safe_load(path.read_text()) or {}).get("rules", []):
            names = [m for m in map(str, rule.get("match", [])) if m.startswith("alertname=")]
            alertname = re.findall(r'"([^"]+)"', names[0])[0] if names else rule["name"]
            action = str((rule.get("actions") or [{"type": "http"}])[0]["type"])
            found.append((rule["name"], alertname, action, rule.get("runbook")))
    found += [(name, alertname, action, None) for name, alertname, action in RETIRED_RULES]
    return [
        RuleSpec(name, alertname, action, runbook, 1 / (rank + 1))
        for rank, (name, alertname, action, runbook) in enumerate(found)
    ]


@dataclass(slots=True)
class _KeyState:
    last_id: int
    resolved_at: datetime | None
    recurrence_count: int


@dataclass(slots=True)
class Chunk:
    """Rows of CHUNK consecutive incidents, for each table."""

    incidents: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    resolutions: list[dict[str, Any]] = field(default_factory=list)

    def tables(self) -> list[tuple[Any, list[dict[str, Any]]]]:
        # Parents before children (foreign keys are on in SQLite).
        return [
            (incidents, self.incidents),
            (incident_alerts, self.alerts),
            (timeline, self.timeline),
            (remediation_jobs, self.jobs),
            (action_runs, self.runs),
            (known_resolutions, self.resolutions),
        ]


class History:
    """A deterministic incident history over DAYS days, ending NEWEST_AGE before `now`.

    Each incident is told as its events (opened, remediation, escalation, page,
    acknowledgement, resolution, SLA breaches); events after `now` have not happened yet,
    so a recent incident may still be open whatever its fate. The incident's columns
    (state, paged_at, escalated_at, resolution, acknowledged_at, *_breached_at, ...) are
    read off the events that did happen, as the service writes them when they happen.
    """

    def __init__(self, count: int, now: datetime, seed: int = SEED) -> None:
        self.count = count
        self.now = now
        self.end = now - NEWEST_AGE
        self.start = self.end - timedelta(days=DAYS)
        self.rng = random.Random(seed)
        self.rules = load_rules()
        self._rule_weights = [r.weight for r in self.rules]
        self._keys: dict[str, _KeyState] = {}
        self._timeline_id = 0
        self._job_id = 0
        self._run_id = 0
        self._resolution_id = 0
        self.outcomes: Counter[str] = Counter()
        self.states: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.detail_id = 0
        """A human-resolved incident with a rule, a job and an action run: the detail rows."""

    def chunks(self) -> Iterator[Chunk]:
        span = (self.end - self.start).total_seconds()
        offsets = sorted(self.rng.random() * span for _ in range(self.count))
        for first in range(0, self.count, CHUNK):
            chunk = Chunk()
            for index in range(first, min(first + CHUNK, self.count)):
                opened = self.start + timedelta(seconds=offsets[index])
                self._incident(chunk, index + 1, opened)
            for table, rows in chunk.tables():
                self.rows[table.name] += len(rows)
            yield chunk

    # one incident

    def _incident(self, chunk: Chunk, incident_id: int, opened: datetime) -> None:
        rng = self.rng
        roll = rng.random()
        outcome = (
            "automation" if roll < 0.60 else "human" if roll < 0.75 else "alert"
            if roll < 0.90 else "open"
        )  # fmt: skip
        self.outcomes[outcome] += 1
        priority = rng.choices(PRIORITIES, PRIORITY_SHARES)[0]
        unmatched_share = {"automation": 0.0, "open": 0.3}.get(outcome, 0.45)
        rule = None if rng.random() < unmatched_share else self._rule()
        if rule is None:
            alertname, _, _ = UNMATCHED[rng.randrange(len(UNMATCHED))]
        else:
            alertname = rule.alertname
        service = f"svc-{rng.randrange(SERVICES)}"
        namespace = NAMESPACES[int(service[4:]) % len(NAMESPACES)]
        instance = f"{service}-{rng.randrange(INSTANCES_PER_SERVICE)}:9100"
        labels = {
            "alertname": alertname,
            "instance": instance,
            "namespace": namespace,
            "service": service,
            "severity": SEVERITY[priority],
        }
        summary = f"{alertname} on {instance}"
        annotations = {"summary": summary}
        group = f'alertname="{alertname}",namespace="{namespace}",service="{service}"'
        series = f'{group},instance="{instance}"'
        fingerprint = hashlib.blake2b(series.encode(), digest_size=8).hexdigest()
        if rule is None:
            key = f"unmatched/fingerprint={fingerprint}"
        else:
            key = f'{rule.name}/{group},instance="{instance}"'
        events = _Events(opened, self.now)
        actor = ("rule", rule.name) if rule is not None else ("system", "remediator")
        why = (
            f"rule {rule.name} matched alert {alertname}"
            if rule is not None
            else f"no rule matched alert {alertname}; kept for a human"
        )
        events.add(opened, actor, "opened", f"opened at {priority}: {why}", to_state="open")

        # Automation, or the hand-over to humans.
        job: dict[str, Any] | None = None
        run: dict[str, Any] | None = None
        escalated_at: datetime | None = None
        verify_due_at: datetime | None = None
        if rule is None:
            escalated_at = opened
            events.add(
                opened,
                ("system", "remediator"),
                "escalation_started",
                f"no rule matched alert {alertname}: automation has nothing to try",
            )
        else:
            if outcome == "automation":
                job_state = "succeeded"
            else:
                job_state = rng.choices(("failed", "blocked", "succeeded"), (2, 1, 1))[0]
            created = opened + _s(rng.uniform(0.02, 0.5))
            events.add(
                created, ("rule", rule.name), "remediation_queued", f"{rule.action} action queued"
            )
            self._job_id += 1
            job = {
                "id": self._job_id,
                "incident_id": incident_id,
                "rule": rule.name,
                "fingerprint": fingerprint,
                "starts_at": opened,
                "state": job_state,
                "dry_run": False,
                "labels": labels,
                "annotations": annotations,
                "created_at": created,
                "started_at": None,
                "finished_at": None,
                "lease_owner": None,
                "lease_expires_at": None,
                "outcome": None,
                "approval_due_at": None,
                "approved_by": None,
                "approved_at": None,
            }
            if job_state == "blocked":
                blocked = created + _s(rng.uniform(0.01, 0.2))
                job.update(finished_at=blocked, outcome="blocked: rate_limit reached (3 per 1h)")
                escalated_at = blocked
                events.state(blocked, ("system", "remediator"), "escalated", "a guard held the fix")
            else:
                started = created + _s(rng.uniform(0.1, 2.0))
                finished = started + _s(rng.lognormvariate(3.0, 0.8))  # median 20 s
                events.state(started, ("rule", rule.name), "remediating", "remediation started")
                ok = job_state == "succeeded"
                job.update(
                    started_at=started,
                    finished_at=finished,
                    outcome=f"{rule.action} action {'succeeded' if ok else 'failed'}",
                )
                self._run_id += 1
                run = {
                    "id": self._run_id,
                    "job_id": self._job_id,
                    "incident_id": incident_id,
                    "action_index": 0,
                    "type": rule.action,
                    "attempt": 1,
                    "params": {"target": instance, "service": service, "namespace": namespace},
                    "started_at": started + _s(0.005),
                    "finished_at": finished,
                    "outcome": "succeeded" if ok else "failed",
                    "retryable": False,
                    "summary": f"{rule.action}: {'ok' if ok else 'exit status 2'}",
                    "output": _output(rule.action, instance, ok),
                    "output_truncated": False,
                }
                verify_due_at = finished + VERIFY_WITHIN
                if not ok:
                    escalated_at = finished
                    events.state(
                        finished, ("system", "remediator"), "escalated", "remediation failed"
                    )
                else:
                    events.state(
                        finished, ("system", "remediator"), "verifying", "remediation succeeded"
                    )
                    if outcome != "automation":
                        escalated_at = verify_due_at
                        events.state(
                            verify_due_at,
                            ("system", "remediator"),
                            "escalated",
                            "verification failed: the alert still fires",
                        )

        # Humans: paged, acknowledge, resolve; or the alert resolves.
        paged_at = None
        if escalated_at is not None:
            paged_at = escalated_at + _s(rng.uniform(0.2, 3.0))
            events.add(paged_at, ("system", "remediator"), "notification_sent", "paged on-call")
        user = rng.choice(USERS)
        acknowledged_at = None
        ack_share = {"human": 0.85, "alert": 0.4, "open": 0.5}.get(outcome, 0.0)
        if paged_at is not None and rng.random() < ack_share:
            acknowledged_at = paged_at + _s(rng.expovariate(1 / ACK_MEAN[priority]))
            events.state(acknowledged_at, ("user", user), "acknowledged", f"acknowledged by {user}")
        resolved_at = None
        resolution = None
        reason = None
        fix = None
        if outcome == "automation":
            assert verify_due_at is not None
            resolved_at = verify_due_at - _s(rng.uniform(10, VERIFY_WITHIN.total_seconds() - 10))
            resolution = "automation"
            reason = "auto-remediated: all 1 alert(s) resolved after remediation"
        elif outcome == "human":
            resolved_at = max(events.last, acknowledged_at or opened) + _s(
                rng.expovariate(1 / 3_000)
            )
            resolution = "human"
            fix = rng.choice(FIXES) if rng.random() < 0.7 else None
            reason = f"resolved by {user}" + (f": {fix}" if fix else "")
            if rng.random() < 0.5:
                note_at = resolved_at - (resolved_at - events.last) / 2
                events.add(note_at, ("user", user), "note", "looking into it")
        elif outcome == "alert":
            resolved_at = max(events.last, opened + _s(rng.expovariate(1 / 2_700))) + _s(1)
            resolution = "alert"
            reason = "source resolved: all 1 alert(s) resolved"
        if resolved_at is not None:
            if resolution != "human":
                events.add(resolved_at, ("system", "remediator"), "alert_resolved", "resolved")
            who = ("user", user) if resolution == "human" else ("system", "remediator")
            events.state(resolved_at, who, "resolved", reason or "")

        # SLA breaches, as the service's sweep records them: once each, while unresolved.
        sla = DEFAULT_SLA[Priority(priority)]
        ack_due, resolve_due = opened + sla.acknowledge, opened + sla.resolve
        happened = events.happened
        ack_done = min(t for t in (acknowledged_at, resolved_at, self.now) if t and happened(t))
        ack_breached_at = None
        if ack_done > ack_due:
            ack_breached_at = ack_due + _s(rng.uniform(0.0, 1.0))
            events.add(
                ack_breached_at,
                ("system", "remediator"),
                "sla_breached",
                f"acknowledgement SLA breached ({priority}: {sla.acknowledge})",
            )
        resolve_done = resolved_at if resolved_at and happened(resolved_at) else self.now
        resolve_breached_at = None
        if resolve_done > resolve_due:
            resolve_breached_at = resolve_due + _s(rng.uniform(0.0, 1.0))
            events.add(
                resolve_breached_at,
                ("system", "remediator"),
                "sla_breached",
                f"resolution SLA breached ({priority}: {sla.resolve})",
            )

        # Only what has happened by now.
        if resolved_at is not None and not happened(resolved_at):
            resolved_at = resolution = reason = fix = None
        # One unresolved incident per key: while the key's last incident was unresolved its
        # alerts would have joined it, so an overlapping one is another series (own key).
        previous = self._keys.get(key)
        last_resolved = previous.resolved_at if previous is not None else None
        if previous is not None and (last_resolved is None or last_resolved > opened):
            key, previous = f"{key}#{incident_id}", None
        previous_id = None
        recurrence_count = 0
        if (
            previous is not None
            and last_resolved is not None
            and opened - last_resolved <= RECURRENCE_WINDOW
        ):
            previous_id = previous.last_id
            recurrence_count = previous.recurrence_count + 1
            events.add(
                opened,
                ("system", "remediator"),
                "recurrence",
                f"recurs incident {previous_id} (occurrence {recurrence_count + 1} within "
                f"{RECURRENCE_WINDOW})",
                data={"previous_incident_id": previous_id},
            )
        self._keys[key] = _KeyState(incident_id, resolved_at, recurrence_count)
        kept = events.kept()
        state = next((e["to_state"] for e in reversed(kept) if e["to_state"]), "open")
        self.states[state] += 1
        for entry in kept:
            self._timeline_id += 1
            chunk.timeline.append({"id": self._timeline_id, "incident_id": incident_id, **entry})
        firing = 0 if resolution in ("automation", "alert") else 1
        chunk.incidents.append(
            {
                "id": incident_id,
                "key": key,
                "rule": rule.name if rule is not None else None,
                "state": state,
                "priority": priority,
                "base_priority": priority,
                "title": f"{alertname}: {service} ({namespace})",
                "labels": labels,
                "annotations": annotations,
                "runbook": rule.runbook if rule is not None else None,
                "alert_count": 1,
                "firing_count": firing,
                "opened_at": opened,
                "updated_at": kept[-1]["at"],
                "acknowledged_at": acknowledged_at if _before(acknowledged_at, self.now) else None,
                "acknowledged_by": user if _before(acknowledged_at, self.now) else None,
                "resolved_at": resolved_at,
                "resolved_reason": reason,
                "ack_due_at": ack_due,
                "resolve_due_at": resolve_due,
                "previous_incident_id": previous_id,
                "recurrence_count": recurrence_count,
                "verify_due_at": verify_due_at,
                "verify_query": None,
                "verify_check_at": None,
                "ack_breached_at": ack_breached_at if _before(ack_breached_at, self.now) else None,
                "resolve_breached_at": resolve_breached_at
                if _before(resolve_breached_at, self.now)
                else None,
                "paged_at": paged_at if _before(paged_at, self.now) else None,
                "escalated_at": escalated_at if _before(escalated_at, self.now) else None,
                "resolution": resolution,
                "resolve_seconds": _seconds(opened, resolved_at),
                "response_seconds": _seconds(
                    opened,
                    acknowledged_at
                    if _before(acknowledged_at, self.now)
                    else resolved_at
                    if resolution == "human"
                    else None,
                ),
            }
        )
        chunk.alerts.append(
            {
                "incident_id": incident_id,
                "fingerprint": fingerprint,
                "status": "firing" if firing else "resolved",
                "starts_at": opened,
                "ends_at": None if firing else resolved_at,
                "labels": labels,
                "annotations": annotations,
                "generator_url": "http://prometheus:9090/graph?g0.expr=up&g0.tab=1",
                "first_seen_at": opened,
                "last_seen_at": resolved_at if not firing and resolved_at else opened,
            }
        )
        if job is not None:
            chunk.jobs.append(job)
        if run is not None:
            chunk.runs.append(run)
        if fix is not None and resolved_at is not None:
            self._resolution_id += 1
            chunk.resolutions.append(
                {
                    "id": self._resolution_id,
                    "incident_id": incident_id,
                    "rule": rule.name if rule is not None else None,
                    "incident_key": key,
                    "note": fix,
                    "resolved_by": user,
                    "at": resolved_at,
                }
            )
            if run is not None:
                self.detail_id = incident_id

    def _rule(self) -> RuleSpec:
        return self.rng.choices(self.rules, self._rule_weights)[0]


class _Events:
    """An incident's timeline entries, in time order; `kept()` drops those after `now`."""

    def __init__(self, opened: datetime, now: datetime) -> None:
        self.entries: list[dict[str, Any]] = []
        self.state_now = "open"
        self.last = opened
        self.now = now

    def happened(self, at: datetime) -> bool:
        return at <= self.now

    def add(
        self,
        at: datetime,
        actor: tuple[str, str],
        kind: str,
        message: str,
        *,
        to_state: str | None = None,
        from_state: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.entries.append(
            {
                "at": at,
                "actor_type": actor[0],
                "actor": actor[1],
                "kind": kind,
                "from_state": from_state,
                "to_state": to_state,
                "message": message,
                "data": data,
            }
        )
        self.last = max(self.last, at)

    def state(self, at: datetime, actor: tuple[str, str], target: str, message: str) -> None:
        self.add(at, actor, "state_changed", message, from_state=self.state_now, to_state=target)
        self.state_now = target

    def kept(self) -> list[dict[str, Any]]:
        # Stable: entries at the same moment keep the order they were told in.
        return sorted((e for e in self.entries if e["at"] <= self.now), key=lambda e: e["at"])


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _seconds(opened: datetime, moment: datetime | None) -> float | None:
    """As the service stores response_seconds / resolve_seconds."""
    return None if moment is None else max((moment - opened).total_seconds(), 0.0)


def _before(at: datetime | None, now: datetime) -> bool:
    return at is not None and at <= now


def _output(action: str, instance: str, ok: bool) -> str:
    if action == "ansible":
        status = "ok=3    changed=1    unreachable=0    failed=0" if ok else "failed=1"
        return (
            f"PLAY [remediate] ***\n\nTASK [Gathering Facts] ***\nok: [{instance}]\n\n"
            f"TASK [remediate] ***\n{'changed' if ok else 'fatal'}: [{instance}]\n\n"
            f"PLAY RECAP ***\n{instance} : {status}\n"
        )
    return f"{action}: {'200 OK' if ok else '503 Service Unavailable'} for {instance}\n"


# -- the database -------------------------------------------------------------------------


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class ScratchDatabase:
    """The database of one run: a SQLite file in the work dir, or PostgreSQL's `test`."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.sqlite_path: Path | None = None
        if kind == "sqlite":
            self.sqlite_path = workdir / "bench.db"
            self.url = f"sqlite+aiosqlite:///{self.sqlite_path}"
        else:
            self.url = POSTGRES_URL

    @property
    def description(self) -> str:
        if self.sqlite_path is not None:
            return f"SQLite {self.sqlite_path} (WAL, synchronous=FULL)"
        return f"PostgreSQL {self.url} (scratch: remediator's tables dropped before and after)"

    async def empty(self) -> None:
        """PostgreSQL: drop remediator's tables, so the migration builds them afresh."""
        if self.sqlite_path is not None:
            return
        names = ", ".join(["alembic_version", *(t.name for t in metadata.sorted_tables)])
        engine = create_async_engine(self.url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text(f"DROP TABLE IF EXISTS {names} CASCADE"))
        finally:
            await engine.dispose()

    def _seed_sqlite(self, history: History) -> None:
        assert self.sqlite_path is not None
        engine = create_engine(f"sqlite:///{self.sqlite_path}", json_serializer=_json)
        try:
            with engine.connect() as conn:
                # The bulk load is not what is measured: no fsync for it.
                conn.exec_driver_sql("PRAGMA synchronous=OFF")
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()
                with conn.begin():
                    _insert(conn, history)
        finally:
            engine.dispose()

    async def seed(self, history: History) -> None:
        """Insert the history: executemany per table and chunk, all in one transaction."""
        if self.sqlite_path is not None:
            await asyncio.to_thread(self._seed_sqlite, history)
            return
        engine = create_async_engine(self.url, json_serializer=_json)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_insert, history)
                # Ids were given explicitly: move each sequence past them.
                for table in (
                    incidents,
                    timeline,
                    remediation_jobs,
                    action_runs,
                    known_resolutions,
                ):
                    name = table.name  # from the schema, not from input
                    statement = f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    statement += f"(SELECT max(id) FROM {name}))"  # noqa: S608
                    await conn.execute(text(statement))
            # What autovacuum does shortly after a bulk load anyway: statistics and the
            # visibility map, so the planner sees the table as it is in steady state.
            async with engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM ANALYZE"))
        finally:
            await engine.dispose()

    async def size(self) -> dict[str, int]:
        if self.sqlite_path is not None:
            return _sqlite_sizes(self.sqlite_path)
        engine = create_async_engine(self.url)
        try:
            async with engine.connect() as conn:
                db = await conn.execute(text("SELECT pg_database_size(current_database())"))
                total = int(db.scalar_one())
                tables = await conn.execute(
                    text(
                        "SELECT coalesce(sum(pg_total_relation_size(quote_ident(name))), 0) "
                        "FROM unnest(CAST(:names AS text[])) AS name"
                    ),
                    {"names": [t.name for t in metadata.sorted_tables]},
                )
                return {"db": total, "tables": int(tables.scalar_one())}
        finally:
            await engine.dispose()


def _insert(conn: Connection, history: History) -> None:
    for chunk in history.chunks():
        for table, rows in chunk.tables():
            if rows:
                conn.execute(table.insert(), rows)
        done = history.rows["incidents"]
        if done % 20_000 == 0 or done == history.count:
            _progress(f"  {done:,} incidents inserted")


def migrate(config: Path, log: Path) -> None:
    """`remediator db upgrade` with the server's config file, as an operator would."""
    script = Path(sys.executable).parent / "remediator"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "remediator.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMEDIATOR_")}
    with open(log, "ab") as out:
        done = subprocess.run(
            [*command, "db", "upgrade", "--config", str(config)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=MIGRATE_TIMEOUT_S,
            check=False,
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-20:]
        raise BenchError("remediator db upgrade failed:\n" + "\n".join(tail))


class DashboardServer(Server):
    """bench.webhook's server with the shipped rules, no workers and a viewer API token."""

    def __init__(self, workdir: Path, database_url: str) -> None:
        super().__init__(workdir, database_url, None)
        config = {
            "listen": f"127.0.0.1:{self.port}",
            "database_url": database_url,
            "rules": [f"{RULES_DIR}/"],
            "external_url": self.base,
            "log_level": "warning",
            # Intake only: nothing the shipped rules would do runs (see bench.webhook).
            "remediation": {"workers": 0, "data_dir": str(workdir / "runs")},
            "auth": {"tokens": [{"name": "bench-viewer", "token": TOKEN, "role": "viewer"}]},
        }
        self.config.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML


# -- the requests -------------------------------------------------------------------------


@dataclass(slots=True)
class Measured:
    """One thing measured: a path, how it authenticates, and whether it has a target."""

    what: str
    path: str
    page: bool = False
    target: bool = False
    check: str = ""
    """What to verify in the first answer: "list", "escalated-p1", "svc-3", "count"."""
    times: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    bytes: int = 0
    problems: list[str] = field(default_factory=list)
    skipped: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems and all(status == 200 for status in self.statuses)

    def stats(self) -> dict[str, float]:
        ordered = sorted(self.times)
        return {
            "n": len(ordered),
            "p50": _percentile(ordered, 0.50),
            "p95": _percentile(ordered, 0.95),
            "max": ordered[-1] if ordered else float("nan"),
        }

    @property
    def verdict(self) -> str:
        if self.skipped or not self.target:
            return ""
        return "PASS" if self.ok and self.stats()["p95"] < TARGET_S else "MISS"


def plan(history: History) -> list[Measured]:
    detail = history.detail_id or history.count
    match = quote('service="svc-3"', safe="")
    since = history.start.isoformat().replace("+00:00", "Z")
    everything = urlencode({"from": since})
    return [
        Measured("API incidents, first page (50)", "/api/v1/incidents", target=True, check="list"),
        Measured(
            "API incidents ?state=escalated&priority=P1",
            "/api/v1/incidents?state=escalated&priority=P1",
            target=True,
            check="escalated-p1",
        ),
        Measured(
            'API incidents ?match=service="svc-3"',
            f"/api/v1/incidents?match={match}",
            target=True,
            check="svc-3",
        ),
        Measured(f"API incident {detail}", f"/api/v1/incidents/{detail}"),
        Measured("API quality, last 30 d, JSON", "/api/v1/reports/quality", target=True),
        Measured("API quality, last 30 d, CSV", "/api/v1/reports/quality?format=csv", target=True),
        Measured(
            f"API quality, {DAYS} d (all), JSON",
            f"/api/v1/reports/quality?{everything}",
            target=True,
            check="count",
        ),
        Measured(
            f"API quality, {DAYS} d (all), CSV",
            f"/api/v1/reports/quality?{everything}&format=csv",
            target=True,
        ),
        Measured("page /incidents", "/incidents", page=True, target=True),
        Measured(f"page /incidents/{detail}", f"/incidents/{detail}", page=True),
        Measured("page /rules", "/rules", page=True),
        Measured("page /quality", "/quality", page=True, target=True),
    ]


async def login(session: aiohttp.ClientSession, base: str) -> str | None:
    """The session cookie (a Cookie header value) from POST /login; None if there is no
    /login (the pages are not in this build)."""
    async with session.post(
        base + "/login", data={"token": TOKEN}, allow_redirects=False
    ) as response:
        body = await response.read()
        cookies = response.cookies
        status = response.status
    if status == 404:
        return None
    if status not in (200, 302, 303) or not cookies:
        raise BenchError(
            f"POST /login answered {status} with cookies {list(cookies)}: {body[:300]!r}"
        )
    return "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())


async def measure(
    session: aiohttp.ClientSession,
    base: str,
    row: Measured,
    requests: int,
    headers: dict[str, str],
    history: History,
) -> None:
    for index in range(WARMUP + requests):
        started = time.perf_counter()
        async with session.get(base + row.path, headers=headers, allow_redirects=False) as answer:
            body = await answer.read()
            status = answer.status
        elapsed = time.perf_counter() - started
        if index < WARMUP:
            if index == 0:
                _check(row, status, body, history)
            if status != 200:
                row.statuses[status] += 1
            continue
        row.times.append(elapsed)
        row.statuses[status] += 1
        row.bytes = len(body)


def _check(row: Measured, status: int, body: bytes, history: History) -> None:
    """The first answer of each row says what it should: else the timing means nothing."""
    if status != 200:
        row.problems.append(f"answered {status}: {body[:300]!r}")
        return
    if not row.check:
        return
    doc = orjson.loads(body)
    if row.check == "count":
        if doc["incidents"] != history.count:
            row.problems.append(f"report counts {doc['incidents']} incidents, not {history.count}")
        return
    found = doc["incidents"]
    if row.check == "list" and len(found) != 50:
        row.problems.append(f"{len(found)} incidents on the first page, not 50")
    if row.check == "escalated-p1":
        wrong = [i["id"] for i in found if (i["state"], i["priority"]) != ("escalated", "P1")]
        if not found or wrong:
            row.problems.append(f"{len(found)} incidents, wrong ones: {wrong[:5]}")
    if row.check == "svc-3":
        wrong = [i["id"] for i in found if i["labels"].get("service") != "svc-3"]
        if not found or wrong:
            row.problems.append(f"{len(found)} incidents, wrong ones: {wrong[:5]}")


# -- the run ------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    command: str
    database: str = ""
    loadavg_before: str = ""
    loadavg_after: str = ""
    seed_s: float = 0.0
    migrate_s: float = 0.0
    startup_s: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    measured: list[Measured] = field(default_factory=list)
    memory: dict[str, int] = field(default_factory=dict)
    size: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    server_exit: int | None = None


async def bench(outcome: Outcome, args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="remediator-bench-dashboard-"))
    database = ScratchDatabase(args.database, workdir)
    outcome.database = database.description
    server: DashboardServer | None = None
    emptied = False
    try:
        server = DashboardServer(workdir, database.url)
        await database.empty()
        emptied = True
        started = time.monotonic()
        _progress(f"remediator db upgrade on {database.url}")
        await asyncio.to_thread(migrate, server.config, workdir / "migrate.log")
        outcome.migrate_s = time.monotonic() - started

        history = History(args.incidents, datetime.now(UTC))
        _progress(f"seeding {args.incidents:,} incidents over {DAYS} days, {CHUNK:,} per chunk")
        started = time.monotonic()
        await database.seed(history)
        outcome.seed_s = time.monotonic() - started
        outcome.rows = dict(history.rows)
        outcome.outcomes = dict(history.outcomes)
        outcome.states = dict(history.states)
        _progress(f"seeded in {outcome.seed_s:.1f} s: {dict(history.rows)}")

        _progress(f"starting: {shlex.join(server.argv)}")
        server.start()
        async with _session(4) as ops:
            outcome.startup_s = await server.wait_ready(ops)
        _progress(f"ready in {outcome.startup_s:.1f} s on {server.base} (pid {server.pid})")
        outcome.memory["rss_ready"] = _proc_status(server.pid).get("VmRSS", 0)

        rows = plan(history)
        outcome.measured = rows
        api = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
        # The session cookie is sent as a header: aiohttp's jar keeps no cookie of an IP
        # address host, nor a Secure one over http.
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(
            timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
        ) as session:
            cookie = await login(session, server.base)
            if cookie is None:
                note = "POST /login answered 404: the dashboard pages are not in this build"
                outcome.notes.append(note + "; their rows are skipped")
            page = {"Cookie": cookie or "", "Accept": "text/html"}
            for row in rows:
                if row.page and cookie is None:
                    row.skipped = "no /login (404)"
                    continue
                _progress(f"  {row.what}")
                await measure(
                    session, server.base, row, args.requests, page if row.page else api, history
                )
        status = _proc_status(server.pid)
        outcome.memory["rss"] = status.get("VmRSS", 0)
        outcome.memory["hwm"] = status.get("VmHWM", 0)
        outcome.size = await database.size()
    finally:
        if server is not None:
            outcome.server_exit = server.stop()
            if outcome.server_exit not in (0, None):
                outcome.notes.append(f"server exited with {outcome.server_exit}")
                outcome.notes.append(server.log_tail())
        if args.keep:
            _progress(f"kept {workdir}" + ("" if database.sqlite_path else f" and {database.url}"))
        else:
            if emptied:
                await database.empty()
            shutil.rmtree(workdir, ignore_errors=True)


# -- the report ---------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:,.1f}"


def summarize(outcome: Outcome, args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    lines = [
        "",
        "=" * 104,
        f"dashboard bench: {args.incidents:,} incidents over {DAYS} days",
        f"command  : {outcome.command}",
        f"machine  : nproc {len(os.sched_getaffinity(0))}, {platform.platform()}, "
        f"{platform.python_implementation()} {platform.python_version()}",
        f"load avg : {outcome.loadavg_before} before, {outcome.loadavg_after} after",
        f"database : {outcome.database}",
        f"migrate  : {outcome.migrate_s:.1f} s; seeded in {outcome.seed_s:.1f} s: "
        + ", ".join(f"{name} {n:,}" for name, n in outcome.rows.items()),
        "history  : "
        + ", ".join(f"{name} {n:,}" for name, n in sorted(outcome.outcomes.items()))
        + "; states now: "
        + ", ".join(f"{name} {n:,}" for name, n in sorted(outcome.states.items())),
        f"server   : /readyz after {outcome.startup_s:.1f} s; {args.requests} requests per row "
        f"after {WARMUP} warm-ups, one at a time",
        "-" * 104,
        f"  {'what':<44}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'bytes':>11}"
        f"{'target':>10}  verdict",
    ]
    data: dict[str, Any] = {
        "command": outcome.command,
        "incidents": args.incidents,
        "requests": args.requests,
        "database": outcome.database,
        "machine": {
            "nproc": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "loadavg": [outcome.loadavg_before, outcome.loadavg_after],
        },
        "migrate_s": outcome.migrate_s,
        "seed_s": outcome.seed_s,
        "rows": outcome.rows,
        "outcomes": outcome.outcomes,
        "states": outcome.states,
        "startup_s": outcome.startup_s,
        "target_p95_ms": TARGET_S * 1000,
        "results": [],
        "notes": outcome.notes,
    }
    failed = False
    for row in outcome.measured:
        s = row.stats()
        target = f"< {TARGET_S * 1000:.0f}" if row.target else ""
        verdict = row.verdict
        if row.skipped:
            lines.append(f"  {row.what:<44}{'skipped: ' + row.skipped:>38}")
        else:
            lines.append(
                f"  {row.what:<44}{_ms(s['p50']):>9}{_ms(s['p95']):>9}{_ms(s['max']):>9}"
                f"{row.bytes:>11,}{target:>10}  {verdict}"
            )
        bad = {status: n for status, n in row.statuses.items() if status != 200}
        if bad:
            lines.append(f"      !!! statuses {dict(row.statuses)}")
        for problem in row.problems:
            lines.append(f"      !!! {problem}")
        failed |= verdict == "MISS" or not row.ok
        data["results"].append(
            {
                "what": row.what,
                "path": row.path,
                "skipped": row.skipped or None,
                "target_ms": TARGET_S * 1000 if row.target else None,
                "verdict": verdict or None,
                "statuses": {str(k): v for k, v in row.statuses.items()},
                "bytes": row.bytes,
                "problems": row.problems,
                "ms": {k: v * 1000 for k, v in s.items() if k != "n"},
                "samples_ms": [t * 1000 for t in row.times],
            }
        )
    memory, size = outcome.memory, outcome.size
    lines.append("")
    if memory:
        lines.append(
            f"server memory: VmRSS {memory.get('rss', 0) / MIB:.1f} MiB after the run "
            f"({memory.get('rss_ready', 0) / MIB:.1f} MiB when ready), "
            f"VmHWM {memory.get('hwm', 0) / MIB:.1f} MiB"
        )
    if size:
        text_size = f"{size['db'] / MIB:,.1f} MiB"
        if "db_wal" in size:
            text_size += f" + WAL {size['db_wal'] / MIB:,.1f} MiB"
        if "tables" in size:
            text_size += f" (remediator's tables and indexes {size['tables'] / MIB:,.1f} MiB)"
        lines.append(f"database size: {text_size}")
    for note in outcome.notes:
        lines.append(f"note: {note}")
    if failed:
        lines.append("!!! A MISS, A NON-200 ANSWER OR A WRONG ANSWER: see above")
    lines.append("=" * 104)
    data.update(memory=memory, size=size, failed=failed)
    return "\n".join(lines), data


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dashboard",
        description="Incident list, quality report and dashboard pages with 100,000 incidents.",
    )
    add = parser.add_argument
    add("--incidents", type=int, default=100_000, help="incidents seeded (default 100000)")
    add("--requests", type=int, default=30, help="timed requests per row (default 30)")
    add(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help=f"sqlite: a fresh file in a temp dir (default); postgresql: {POSTGRES_URL}, a "
        "scratch database whose remediator tables are dropped before and after",
    )
    add("--json", metavar="FILE", default=None, help="also write the results as JSON ('-': stdout)")
    add(
        "--keep",
        action="store_true",
        help="keep the temp dir (config, server log, SQLite file) and the PostgreSQL tables",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(arguments)
    if args.incidents < 1 or args.requests < 1:
        parser.error("--incidents and --requests must be >= 1")
    command = shlex.join([sys.executable, "-m", "bench.dashboard", *arguments])
    outcome = Outcome(command=command, loadavg_before=_loadavg())

    failed = run_stoppable(lambda: bench(outcome, args), "dashboard bench")
    if failed is not None:
        return failed
    outcome.loadavg_after = _loadavg()
    table, data = summarize(outcome, args)
    print(table, flush=True)
    write_json(args.json, data)
    return 1 if data["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
