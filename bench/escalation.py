"""Time from "verification failed" to the first page on each channel, and paging exactly
once per step across a `kill -9`.

    python -m bench.escalation [--incidents N] [--restart-incidents N] [--json FILE] [--keep]

1. latency: a real `remediator serve` (fresh SQLite in a temp dir) with one rule whose
   `http` action succeeds against a local endpoint and whose `verify: {resolved_within: 0s}`
   fails at once, so every alert's incident goes `escalated` right after its action. One
   policy step pages six channels, each pointed at a loopback receiver in this process
   (webhook with its HMAC signature checked, PagerDuty Events v2, Slack, Teams, Opsgenie,
   and SMTP through aiosmtpd). Per channel: the incident's `escalated` timeline entry to the
   receiver's arrival (same clock, time.time()), with `remediation.poll_interval` at its
   default 1s and again at 100ms.
2. forced restart: 1,000 alerts no rule matches page through `escalation.unmatched_policy`
   (webhook; wait 2s; webhook + PagerDuty; wait 2s; webhook). The service is killed with
   SIGKILL while pages flow, started again on the same database, and left to finish every
   chain. Every notification row must be `sent` and must have arrived exactly once; extra
   arrivals are re-deliveries of what was in flight at the kill (at-least-once) or, if not,
   duplicates. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import json
import os
import random
import re
import shlex
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from remediator_integrations.webhook import verify_signature

from bench.webhook import (
    HEADERS,
    WEBHOOK,
    BenchError,
    Server,
    _free_port,
    _loadavg,
    _percentile,
    _progress,
    _session,
    write_json,
)
from remediator.escalation.runner import LEASE

CHANNELS: Final = ("webhook", "pagerduty", "slack", "teams", "opsgenie", "email")
SECRET: Final = "bench-webhook-secret"  # noqa: S105 (a test receiver's key)
LATENCY_ALERT: Final = "EscalationLatencyBench"
RESTART_ALERT: Final = "EscalationRestartBench"
# In every page's title; letters and digits only, so no channel's escaping touches it.
TOKEN: Final = "EscBenchR"  # noqa: S105 (not a secret)
TOKEN_RE: Final = re.compile(rf"{TOKEN}(\d+)")
LATENCY_POLLS: Final = ("1s", "100ms")
ARRIVAL_TIMEOUT_S: Final = 30.0
KILL_TIMEOUT_S: Final = 60.0
RESTART_POLL: Final = "100ms"
RESTART_BATCH: Final = 100
RESTART_WAIT: Final = "2s"
# After the restart, what was in flight at the kill waits for its sender's lease to lapse.
DONE_TIMEOUT_S: Final = LEASE.total_seconds() + 60.0
SETTLE_S: Final = 1.0
API_CONCURRENCY: Final = 8


# -- the receivers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arrival:
    """One page as a receiver got it: complete, and (webhook) with a valid signature."""

    channel: str
    at: float
    """time.time() when the request body (or the mail's DATA) was in."""
    event: str
    incident: int | None
    """The incident id, for channels that carry it in a field (webhook, PagerDuty, e-mail)."""
    token: int | None
    """The bench's run number, from the title (every channel shows the title)."""
    delivery: str = ""
    """X-Remediator-Delivery (webhook only)."""


def _token(text: str) -> int | None:
    found = TOKEN_RE.search(text)
    return int(found.group(1)) if found else None


def _dedup_id(key: Any) -> int | None:
    text = str(key or "")
    return int(text.removeprefix("remediator-")) if text.startswith("remediator-") else None


class MailHandler:
    """aiosmtpd handler: every message is a page (runs in aiosmtpd's thread)."""

    def __init__(self, record: Callable[[Arrival], None]) -> None:
        self._record = record

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        at = time.time()
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        message = email.message_from_bytes(raw)
        incident = str(message.get("X-Remediator-Incident", ""))
        self._record(
            Arrival(
                "email",
                at,
                str(message.get("X-Remediator-Event", "")),
                int(incident) if incident.isdigit() else None,
                _token(str(message.get("Subject", ""))),
            )
        )
        return "250 Message accepted for delivery"


class Receivers:
    """Loopback stand-ins for every channel type, and the endpoint the rule's action calls.

    Each answers as the real service does (see each channel's README); `delay` holds every
    HTTP answer back that long after the body is in, so that pages are in flight for a while.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.arrivals: list[Arrival] = []
        self.rejected: list[str] = []
        self.actions = 0
        self.port = _free_port()
        self.smtp_port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._runner: web.AppRunner | None = None
        self._smtp: Controller | None = None

    def record(self, arrival: Arrival) -> None:
        self.arrivals.append(arrival)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/action", self._action)
        app.router.add_post("/webhook", self._webhook)
        app.router.add_post("/v2/enqueue", self._pagerduty)
        app.router.add_post("/slack", self._slack)
        app.router.add_post("/teams", self._teams)
        app.router.add_post("/v2/alerts{tail:.*}", self._opsgenie)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._smtp = Controller(MailHandler(self.record), hostname="127.0.0.1", port=self.smtp_port)
        await asyncio.to_thread(self._smtp.start)

    async def stop(self) -> None:
        if self._smtp is not None:
            await asyncio.to_thread(self._smtp.stop)
        if self._runner is not None:
            await self._runner.cleanup()

    def channels(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """`channels:` config for the named channel types, each pointed at this receiver."""
        every: dict[str, dict[str, Any]] = {
            "webhook": {"type": "webhook", "url": f"{self.base}/webhook", "secret": SECRET},
            "pagerduty": {
                "type": "pagerduty",
                "routing_key": "bench-routing-key",
                "url": f"{self.base}/v2/enqueue",
            },
            "slack": {"type": "slack", "webhook_url": f"{self.base}/slack"},
            "teams": {"type": "teams", "webhook_url": f"{self.base}/teams"},
            "opsgenie": {"type": "opsgenie", "api_key": "bench-api-key", "url": self.base},
            "email": {
                "type": "email",
                "host": "127.0.0.1",
                "port": self.smtp_port,
                "starttls": False,
                "from": "remediator@bench.invalid",
                "to": ["oncall@bench.invalid"],
            },
        }
        return {name: every[name] for name in names}

    async def _answer(self, response: web.Response) -> web.Response:
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        return response

    async def _action(self, request: web.Request) -> web.Response:
        await request.read()
        self.actions += 1
        return web.json_response({"ok": True})

    async def _webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        at = time.time()
        headers = request.headers
        timestamp = headers.get("X-Remediator-Timestamp", "")
        signature = headers.get("X-Remediator-Signature", "")
        if not verify_signature(SECRET, timestamp, body, signature):
            self.rejected.append(f"webhook: bad signature: {body[:120]!r}")
            return web.Response(status=401)
        doc = orjson.loads(body)
        incident = doc["incident"]
        delivery = headers.get("X-Remediator-Delivery", "")
        arrival = Arrival(
            "webhook", at, doc["event"], incident["id"], _token(incident["title"]), delivery
        )
        self.record(arrival)
        return await self._answer(web.Response(status=204))

    async def _pagerduty(self, request: web.Request) -> web.Response:
        body = await request.read()
        at = time.time()
        doc = orjson.loads(body)
        key = doc.get("dedup_key")
        summary = str(doc.get("payload", {}).get("summary", ""))
        self.record(Arrival("pagerduty", at, doc["event_action"], _dedup_id(key), _token(summary)))
        answer = {"status": "success", "message": "Event processed", "dedup_key": key}
        return await self._answer(web.json_response(answer, status=202))

    async def _slack(self, request: web.Request) -> web.Response:
        text = (await request.read()).decode()
        self.record(Arrival("slack", time.time(), "", None, _token(text)))
        return await self._answer(web.Response(text="ok"))

    async def _teams(self, request: web.Request) -> web.Response:
        text = (await request.read()).decode()
        self.record(Arrival("teams", time.time(), "", None, _token(text)))
        run_id = {"x-ms-workflow-run-id": uuid.uuid4().hex}
        return await self._answer(web.Response(status=202, headers=run_id))

    async def _opsgenie(self, request: web.Request) -> web.Response:
        body = await request.read()
        at = time.time()
        doc = orjson.loads(body) if body else {}
        event = request.match_info["tail"].rpartition("/")[2] or "trigger"
        incident = _dedup_id(doc.get("alias"))
        self.record(Arrival("opsgenie", at, event, incident, _token(str(doc.get("message", "")))))
        answer = {
            "result": "Request will be processed",
            "took": 0.01,
            "requestId": str(uuid.uuid4()),
        }
        return await self._answer(web.json_response(answer, status=202))


# -- the service --------------------------------------------------------------------------


class EscalationServer(Server):
    """bench.webhook's server with this bench's rules, channels and policies."""

    def __init__(self, root: Path, config: dict[str, Any], rules: str) -> None:
        self.database = root / "bench.db"
        super().__init__(root, f"sqlite+aiosqlite:///{self.database}", None)
        (root / "rules").mkdir()
        (root / "rules" / "bench.yml").write_text(rules)
        config = {
            "listen": f"127.0.0.1:{self.port}",
            "database_url": f"sqlite+aiosqlite:///{self.database}",
            "rules": [f"{root / 'rules'}/"],
            "external_url": self.base,
            "log_level": "warning",
            **config,
        }
        config["remediation"] = {"data_dir": str(root / "runs"), **config.get("remediation", {})}
        self.config.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML

    def kill(self) -> None:
        """SIGKILL: no shutdown, no lease handed back, nothing flushed but what was committed."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise BenchError(f"the server exited\n{self.log_tail()}")


def alerts_body(alertname: str, runs: Sequence[int]) -> bytes:
    """One Alertmanager v4 notification of new firing alerts, one per run number."""
    now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": alertname, "run": f"{run:04d}", "severity": "warning"},
            "annotations": {"summary": f"{TOKEN}{run:04d}"},
            "startsAt": now,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": uuid.uuid4().hex[:16],
        }
        for run in runs
    ]
    return orjson.dumps(
        {
            "receiver": "remediator",
            "status": "firing",
            "alerts": alerts,
            "groupLabels": {"alertname": alertname},
            "commonLabels": {"alertname": alertname, "severity": "warning"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{alertname}"}}',
            "truncatedAlerts": 0,
        }
    )


async def post_alerts(
    session: aiohttp.ClientSession, server: Server, alertname: str, runs: Sequence[int]
) -> None:
    async with session.post(
        server.base + WEBHOOK, data=alerts_body(alertname, runs), headers=HEADERS
    ) as response:
        reply = await response.read()
    if response.status != 200 or orjson.loads(reply).get("stored") != len(runs):
        raise BenchError(f"webhook answered {response.status}: {reply[:300]!r}")


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        body = await response.read()
        if response.status != 200:
            raise BenchError(f"GET {url} answered {response.status}: {body[:300]!r}")
    return orjson.loads(body)


async def incident_details(session: aiohttp.ClientSession, server: Server) -> list[Any]:
    """Every incident, in detail (`GET /api/v1/incidents/{id}`), a few requests at a time."""
    ids: list[int] = []
    first = f"{server.base}/api/v1/incidents?limit=500"
    url: str | None = first
    while url is not None:
        page = await get_json(session, url)
        ids += [incident["id"] for incident in page["incidents"]]
        cursor = page["next_cursor"]
        url = None if cursor is None else f"{first}&cursor={cursor}"
    limit = asyncio.Semaphore(API_CONCURRENCY)

    async def one(incident_id: int) -> Any:
        async with limit:
            return await get_json(session, f"{server.base}/api/v1/incidents/{incident_id}")

    return list(await asyncio.gather(*(one(i) for i in sorted(ids))))


def epoch(text: str) -> float:
    """An API timestamp as seconds since the epoch (a naive one is UTC)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def entry_at(incident: Any, to_state: str) -> float | None:
    """When the incident's timeline first entered `to_state`."""
    for entry in incident["timeline"]:
        if entry["kind"] == "state_changed" and entry["to_state"] == to_state:
            return epoch(entry["at"])
    return None


async def until(
    check: Callable[[], Awaitable[bool] | bool],
    what: str,
    within: float,
    server: EscalationServer | None = None,
    interval: float = 0.05,
) -> None:
    """Wait for `check`; BenchError after `within` s or when the server dies."""
    deadline = time.monotonic() + within
    while True:
        done = check()
        if not isinstance(done, bool):
            done = await done
        if done:
            return
        if server is not None:
            server.alive()
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


# -- part 1: latency ----------------------------------------------------------------------


def latency_rules(receivers: Receivers) -> str:
    return f"""\
rules:
  - name: escalation-latency
    match: ['alertname="{LATENCY_ALERT}"']
    incident: {{title: "{{{{ annotations.summary }}}}"}}
    actions:
      - type: http
        method: POST
        url: "{receivers.base}/action"
        expect_status: [200]
        timeout: 10s
    verify: {{resolved_within: 0s}}
    escalate: {{policy: everyone}}
"""


@dataclass(slots=True)
class LatencyResult:
    """One latency run: per channel, seconds from `escalated` to the page's arrival."""

    poll: str
    incidents: int
    pages: dict[str, list[float]] = field(default_factory=dict)
    deadline_to_escalated: list[float] = field(default_factory=list)
    action_to_page: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0


async def latency_run(root: Path, poll: str, incidents: int, seed: int) -> LatencyResult:
    """Start a server with `poll_interval: poll`, escalate `incidents` incidents, measure."""
    result = LatencyResult(poll, incidents)
    receivers = Receivers()
    await receivers.start()
    config = {
        "remediation": {"poll_interval": poll},
        "channels": receivers.channels(CHANNELS),
        "escalation": {"policies": {"everyone": {"steps": [{"notify": list(CHANNELS)}]}}},
    }
    server = EscalationServer(root, config, latency_rules(receivers))
    started = time.monotonic()
    try:
        server.start()
        async with _session(API_CONCURRENCY + 2) as session:
            await server.wait_ready(session)
            await _escalate_spaced(session, server, incidents, random.Random(seed))
            expected = incidents * len(CHANNELS)

            def all_in() -> bool:
                return len({(a.channel, a.token) for a in receivers.arrivals}) >= expected

            await until(all_in, f"{expected} pages", ARRIVAL_TIMEOUT_S, server)
            details = await incident_details(session, server)
        _latencies(result, details, receivers)
    finally:
        server.stop()
        await receivers.stop()
    result.wall_s = time.monotonic() - started
    return result


async def _escalate_spaced(
    session: aiohttp.ClientSession, server: Server, incidents: int, rng: random.Random
) -> None:
    """One new alert (one incident) at a time, 0.2-0.5 s apart: a random phase against the
    runners' poll clocks, and never more than a few pages in flight."""
    for run in range(incidents):
        await post_alerts(session, server, LATENCY_ALERT, [run])
        await asyncio.sleep(rng.uniform(0.2, 0.5))


def _latencies(result: LatencyResult, details: list[Any], receivers: Receivers) -> None:
    first: dict[tuple[str, int], float] = {}
    for arrival in receivers.arrivals:
        if arrival.token is not None and arrival.event in ("trigger", "", "alerts"):
            key = (arrival.channel, arrival.token)
            first[key] = min(first.get(key, arrival.at), arrival.at)
    copies = Counter((a.channel, a.token) for a in receivers.arrivals)
    result.problems += [f"{c} got {n} pages for run {t}" for (c, t), n in copies.items() if n > 1]
    result.problems += receivers.rejected
    if len(details) != result.incidents:
        result.problems.append(f"{len(details)} incidents, expected {result.incidents}")
    for incident in details:
        run = int(incident["labels"]["run"])
        escalated, deadline = entry_at(incident, "escalated"), entry_at(incident, "verifying")
        if escalated is None or deadline is None:
            result.problems.append(f"incident {incident['id']} ({incident['state']}) not escalated")
            continue
        result.deadline_to_escalated.append(escalated - deadline)
        arrivals = [first.get((channel, run)) for channel in CHANNELS]
        for channel, at in zip(CHANNELS, arrivals, strict=True):
            if at is None:
                result.problems.append(f"incident {incident['id']}: no page on {channel}")
            else:
                result.pages.setdefault(channel, []).append(at - escalated)
        result.action_to_page.append(min(filter(None, arrivals), default=deadline) - deadline)
        states = [n["state"] for e in incident["escalations"] for n in e["notifications"]]
        if states != ["sent"] * len(CHANNELS):
            result.problems.append(f"incident {incident['id']}: notifications {states}")


# -- part 2: forced restart ---------------------------------------------------------------

RESTART_STEPS: Final = [
    {"notify": ["hook"]},
    {"wait": RESTART_WAIT},
    {"notify": ["hook", "pd"]},
    {"wait": RESTART_WAIT},
    {"notify": ["hook"]},
]
# (channel, step) of every page one incident gets: the policy's notify steps.
EXPECTED_PAGES: Final = [("hook", 0), ("hook", 2), ("pd", 2), ("hook", 4)]


@dataclass(slots=True)
class RestartResult:
    """What the receivers and the API show after a kill -9 in the middle of the pages."""

    incidents: int
    receiver_delay_s: float
    arrivals_at_kill: int = 0
    sending_at_kill: int = 0
    pending_at_kill: int = 0
    sent_at_kill: int = 0
    restart_to_ready_s: float = 0.0
    restart_to_done_s: float = 0.0
    expected: int = 0
    rows: int = 0
    rows_sent: int = 0
    delivered: int = 0
    lost: int = 0
    redelivered: int = 0
    redelivered_by_channel: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    distinct_delivery_ids: int = 0
    distinct_pd_keys: int = 0
    pages_per_s_before_kill: float = 0.0
    raw_arrivals: dict[str, int] = field(default_factory=dict)
    chains_done: int = 0
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def restart_config(receivers: Receivers) -> dict[str, Any]:
    channels = receivers.channels(["webhook", "pagerduty"])
    return {
        "remediation": {"poll_interval": RESTART_POLL},
        "channels": {"hook": channels["webhook"], "pd": channels["pagerduty"]},
        "escalation": {
            "unmatched_policy": "restart",
            "policies": {"restart": {"steps": RESTART_STEPS}},
        },
    }


class Snapshot:
    """Counts read from the server's SQLite file (read-only, while it runs or after)."""

    def __init__(self, database: Path) -> None:
        self._uri = f"file:{database}?mode=ro"

    def counts(self) -> dict[str, int]:
        with contextlib.closing(sqlite3.connect(self._uri, uri=True, timeout=5)) as conn:
            rows = conn.execute("SELECT state, count(*) FROM notifications GROUP BY state")
            out = {f"notifications_{state}": n for state, n in rows}
            rows = conn.execute("SELECT state, count(*) FROM escalations GROUP BY state")
            out |= {f"chains_{state}": n for state, n in rows}
        return out


async def restart_run(root: Path, incidents: int, kill_after: int, delay: float) -> RestartResult:
    """Escalate `incidents` incidents, kill -9 after `kill_after` pages, restart, count."""
    result = RestartResult(incidents, delay, expected=incidents * len(EXPECTED_PAGES))
    receivers = Receivers(delay)
    await receivers.start()
    server = EscalationServer(root, restart_config(receivers), "rules: []\n")
    snapshot = Snapshot(server.database)
    started = time.monotonic()
    try:
        server.start()
        async with _session(API_CONCURRENCY + 2) as session:
            await server.wait_ready(session)
            killed_at = await _flood_and_kill(session, server, receivers, result, kill_after)
            await _restart(session, server, snapshot, result)
            await asyncio.sleep(SETTLE_S)  # later polls: nothing more may come
            details = await incident_details(session, server)
        _count(result, details, receivers, killed_at)
    finally:
        server.stop()
        await receivers.stop()
    result.wall_s = time.monotonic() - started
    return result


async def _flood_and_kill(
    session: aiohttp.ClientSession,
    server: EscalationServer,
    receivers: Receivers,
    result: RestartResult,
    kill_after: int,
) -> float:
    """Alerts in batches; SIGKILL once `kill_after` pages arrived. Returns the kill time."""
    for start in range(0, result.incidents, RESTART_BATCH):
        runs = range(start, min(start + RESTART_BATCH, result.incidents))
        await post_alerts(session, server, RESTART_ALERT, list(runs))
        await asyncio.sleep(0.1)
    _progress(f"restart: {result.incidents} alerts in; SIGKILL after {kill_after} pages")

    def enough() -> bool:
        return len(receivers.arrivals) >= kill_after

    await until(enough, f"{kill_after} pages before the kill", KILL_TIMEOUT_S, server, 0.002)
    server.kill()
    killed_at = time.time()
    result.arrivals_at_kill = len(receivers.arrivals)
    flowing = killed_at - receivers.arrivals[0].at
    result.pages_per_s_before_kill = result.arrivals_at_kill / flowing if flowing > 0 else 0.0
    counts = Snapshot(server.database).counts()
    result.sending_at_kill = counts.get("notifications_sending", 0)
    result.pending_at_kill = counts.get("notifications_pending", 0)
    result.sent_at_kill = counts.get("notifications_sent", 0)
    _progress(f"restart: killed; {result.arrivals_at_kill} pages had arrived; database: {counts}")
    return killed_at


async def _restart(
    session: aiohttp.ClientSession,
    server: EscalationServer,
    snapshot: Snapshot,
    result: RestartResult,
) -> None:
    """Start the service again on the same database; wait until every chain is done."""
    server.log = server.log.with_name("server-restarted.log")
    restarted = time.monotonic()
    server.start()
    result.restart_to_ready_s = await server.wait_ready(session)
    last_report = time.monotonic()

    def done() -> bool:
        nonlocal last_report
        counts = snapshot.counts()
        if time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            _progress(f"restart: waiting for every chain; database: {counts}")
        busy = counts.get("notifications_pending", 0) + counts.get("notifications_sending", 0)
        return counts.get("chains_done", 0) >= result.incidents and busy == 0

    _progress(
        f"restart: up again in {result.restart_to_ready_s:.1f} s; pages in flight at the kill "
        f"are sent again when their lease ({LEASE.total_seconds():.0f} s) lapses"
    )
    await until(done, "every chain to end", DONE_TIMEOUT_S, server, 0.5)
    result.restart_to_done_s = time.monotonic() - restarted


def _count(
    result: RestartResult, details: list[Any], receivers: Receivers, killed_at: float
) -> None:
    """Match every arrival to a notification row; what is left over is explained or not."""
    result.problems += receivers.rejected
    if len(details) != result.incidents:
        result.problems.append(f"{len(details)} incidents, expected {result.incidents}")
    by_incident: dict[int, list[Arrival]] = defaultdict(list)
    for arrival in receivers.arrivals:
        if arrival.incident is None:
            result.problems.append(f"a {arrival.channel} page without an incident id")
        else:
            by_incident[arrival.incident].append(arrival)
    result.raw_arrivals = dict(Counter(a.channel for a in receivers.arrivals))
    result.distinct_delivery_ids = len({a.delivery for a in receivers.arrivals if a.delivery})
    result.distinct_pd_keys = len(
        {(a.incident, a.event) for a in receivers.arrivals if a.channel == "pagerduty"}
    )
    redelivered: Counter[str] = Counter()
    for incident in details:
        _count_incident(
            result, incident, by_incident.pop(incident["id"], []), killed_at, redelivered
        )
    for incident_id, stray in by_incident.items():
        result.duplicates += len(stray)
        result.problems.append(f"{len(stray)} pages for incident {incident_id}, unknown to the API")
    result.redelivered_by_channel = dict(redelivered)
    result.redelivered = sum(redelivered.values())


def _count_incident(
    result: RestartResult,
    incident: Any,
    arrivals: list[Arrival],
    killed_at: float,
    redelivered: Counter[str],
) -> None:
    chains = incident["escalations"]
    result.chains_done += sum(chain["state"] == "done" for chain in chains)
    rows = [n for chain in chains for n in chain["notifications"]]
    result.rows += len(rows)
    result.rows_sent += sum(n["state"] == "sent" for n in rows)
    found = Counter((n["channel"], n["step"]) for n in rows if n["event"] == "trigger")
    for page in EXPECTED_PAGES:
        if found[page] != 1:
            result.lost += found[page] == 0
            result.problems.append(f"incident {incident['id']}: {found[page]} rows for {page}")
    left = sorted(arrivals, key=lambda a: a.at)
    for row in rows:
        match = _recorded_arrival(row, left)
        if match is None:
            result.lost += 1
            result.problems.append(f"incident {incident['id']}: no arrival for row {row['id']}")
            continue
        left.remove(match)
        result.delivered += 1
    for extra in left:
        # A re-delivery: sent before the kill, not recorded, sent again by the new process.
        again = [
            r
            for r in rows
            if _CHANNEL[r["channel"]] == extra.channel
            and epoch(r["created_at"]) <= extra.at
            and r["finished_at"] is not None
            and epoch(r["finished_at"]) > killed_at
        ]
        if extra.at <= killed_at and again:
            redelivered[extra.channel] += 1
        else:
            result.duplicates += 1
            result.problems.append(f"incident {incident['id']}: unexplained {extra}")


_CHANNEL: Final = {"hook": "webhook", "pd": "pagerduty"}


def _recorded_arrival(row: Any, arrivals: list[Arrival]) -> Arrival | None:
    """The arrival of the attempt the row records: the last with its delivery id (webhook),
    else (PagerDuty) the last arrival between the row's creation and its end."""
    if row["state"] != "sent":
        return None
    channel = _CHANNEL[row["channel"]]
    if channel == "webhook":
        # The id is the same for every attempt: an earlier arrival with it was one in flight.
        same = [a for a in arrivals if a.delivery == row["reference"]]
        return same[-1] if same else None
    start, end = epoch(row["created_at"]), epoch(row["finished_at"])
    inside = [a for a in arrivals if a.channel == channel and start <= a.at <= end]
    return inside[-1] if inside else None


# -- the report ---------------------------------------------------------------------------


def _stats(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "median": _percentile(ordered, 0.5),
        "p90": _percentile(ordered, 0.9),
        "max": ordered[-1] if ordered else float("nan"),
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


@dataclass(slots=True)
class Outcome:
    """Everything one invocation measured."""

    command: str
    loadavg_before: str
    loadavg_after: str = ""
    latency: list[LatencyResult] = field(default_factory=list)
    restart: RestartResult | None = None


def summarize(outcome: Outcome) -> tuple[str, dict[str, Any]]:
    lines = ["=" * 104, "escalation bench: 'verification failed' -> first page, and kill -9"]
    lines.append(
        f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; load average "
        f"{outcome.loadavg_before} before, {outcome.loadavg_after} after"
    )
    lines.append(f"command: {outcome.command}")
    data: dict[str, Any] = {"command": outcome.command, "latency": [], "failed": False}
    data["loadavg"] = [outcome.loadavg_before, outcome.loadavg_after]
    for run in outcome.latency:
        lines += _latency_lines(run, data)
    if outcome.restart is not None:
        lines += _restart_lines(outcome.restart, data)
    lines.append("=" * 104)
    return "\n".join(lines), data


def _latency_lines(run: LatencyResult, data: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"latency, poll_interval {run.poll}: {run.incidents} incidents, one page each on "
        f"{len(CHANNELS)} channels ({run.wall_s:.0f} s)",
        f"  {'escalated -> arrival':<34}{'median':>10}{'p90':>10}{'max':>10}{'n':>6}",
    ]
    rows = {channel: _stats(run.pages.get(channel, [])) for channel in CHANNELS}
    rows["(verify deadline -> escalated)"] = _stats(run.deadline_to_escalated)
    rows["(verify deadline -> first page)"] = _stats(run.action_to_page)
    for name, s in rows.items():
        lines.append(
            f"  {name:<34}{_ms(s['median']):>10}{_ms(s['p90']):>10}{_ms(s['max']):>10}{s['n']:>6}"
        )
    for problem in run.problems[:20]:
        lines.append(f"  !!! {problem}")
    data["latency"].append({"poll": run.poll, "stats_s": rows, "problems": run.problems})
    data["failed"] |= bool(run.problems)
    return lines


def _restart_lines(r: RestartResult, data: dict[str, Any]) -> list[str]:
    ok = not r.problems and r.lost == 0 and r.duplicates == 0 and r.delivered == r.expected
    webhook_rows = 3 * r.incidents
    by_id = r.distinct_delivery_ids - webhook_rows
    lines = [
        "",
        f"forced restart: {r.incidents} incidents x {len(EXPECTED_PAGES)} pages "
        f"(webhook; wait {RESTART_WAIT}; webhook + pagerduty; wait {RESTART_WAIT}; webhook), "
        f"poll_interval {RESTART_POLL}, receivers answer after {_ms(r.receiver_delay_s)} "
        f"({r.wall_s:.0f} s)",
        f"  kill -9 after {r.arrivals_at_kill} pages had arrived; in the database then: "
        f"{r.sent_at_kill} sent, {r.sending_at_kill} sending, {r.pending_at_kill} pending",
        f"  restarted: ready in {r.restart_to_ready_s:.1f} s, every chain done "
        f"{r.restart_to_done_s:.0f} s after the restart (in-flight pages wait for their "
        f"{LEASE.total_seconds():.0f} s lease)",
        f"  notification rows {r.rows} (expected {r.expected}), sent {r.rows_sent}; "
        f"chains done {r.chains_done}/{r.incidents}",
        f"  arrived exactly once per row: {r.delivered}/{r.expected}; "
        f"lost {r.lost}, duplicate pages {r.duplicates}, raw re-deliveries {r.redelivered} "
        f"{r.redelivered_by_channel or ''}  {'PASS' if ok else 'FAIL'}",
        f"  raw arrivals {r.raw_arrivals}, {r.pages_per_s_before_kill:.0f} pages/s before the kill",
        f"  receivers' own dedup: PagerDuty by (dedup_key, event) leaves "
        f"{r.distinct_pd_keys - r.incidents} duplicate pages; webhook by X-Remediator-Delivery "
        f"leaves {by_id} ({r.distinct_delivery_ids} distinct ids for {webhook_rows} rows)  "
        f"{'PASS' if by_id == 0 else 'MISS'}",
    ]
    for problem in r.problems[:20]:
        lines.append(f"  !!! {problem}")
    data["restart"] = {k: getattr(r, k) for k in r.__slots__}
    data["restart"]["webhook_duplicates_by_delivery_id"] = by_id
    data["failed"] |= not ok
    return lines


# -- the command --------------------------------------------------------------------------


async def measure(outcome: Outcome, args: argparse.Namespace) -> None:
    """Latency at each poll interval, then the forced restart; each in its own temp dir."""
    polls = LATENCY_POLLS if not args.default_poll_only else LATENCY_POLLS[:1]
    for index, poll in enumerate(polls if args.incidents > 0 else ()):
        _progress(f"escalation latency: {args.incidents} incidents, poll_interval {poll}")
        with _workdir(args.keep, f"latency-{poll}") as root:
            outcome.latency.append(await latency_run(root, poll, args.incidents, args.seed + index))
    if args.restart_incidents > 0:
        kill_after = args.kill_after or args.restart_incidents * len(EXPECTED_PAGES) * 2 // 5
        _progress(f"forced restart: {args.restart_incidents} incidents")
        with _workdir(args.keep, "restart") as root:
            outcome.restart = await restart_run(
                root, args.restart_incidents, kill_after, args.receiver_delay / 1000
            )


@contextlib.contextmanager
def _workdir(keep: bool, name: str) -> Any:
    root = Path(tempfile.mkdtemp(prefix=f"remediator-escalation-{name}-"))
    try:
        yield root
    finally:
        if keep:
            _progress(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.escalation",
        description="Time from a failed verification to each channel's page; exactly-once "
        "paging across kill -9.",
    )
    add = parser.add_argument
    add("--incidents", type=int, default=50, help="incidents per latency run (default 50; 0 skips)")
    add("--default-poll-only", action="store_true", help="skip the 100ms latency run")
    add(
        "--restart-incidents",
        type=int,
        default=1000,
        help="incidents of the forced restart (default 1000; 0 skips)",
    )
    add("--kill-after", type=int, default=0, help="pages before the kill (default 40%% of all)")
    add("--receiver-delay", type=float, default=50.0, help="ms the restart's receivers take")
    add("--seed", type=int, default=1, help="spacing seed (default 1)")
    add("--json", metavar="FILE", default=None, help="also write the results as JSON ('-': stdout)")
    add("--keep", action="store_true", help="keep the temp dirs (config, server logs, SQLite)")
    return parser


def run(args: argparse.Namespace, command: str) -> tuple[int, Outcome]:
    """Measure with Ctrl-C and SIGTERM handled; (exit status, outcome). 0 when it ran."""
    outcome = Outcome(command=command, loadavg_before=_loadavg())

    async def guarded() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await measure(outcome, args)

    try:
        asyncio.run(guarded())
    except KeyboardInterrupt:
        print("\ninterrupted: the server was stopped and the temp files removed", file=sys.stderr)
        return 130, outcome
    except asyncio.CancelledError:
        print("\nterminated: the server was stopped and the temp files removed", file=sys.stderr)
        return 143, outcome
    except BenchError as exc:
        print(f"escalation bench: {exc}", file=sys.stderr)
        return 1, outcome
    outcome.loadavg_after = _loadavg()
    return 0, outcome


def report(argv: Sequence[str], command: str) -> tuple[int, str, dict[str, Any]]:
    """Measure and summarize: (exit status, table, data); also what bench.webhook calls."""
    status, outcome = run(_parser().parse_args(list(argv)), command)
    if status != 0:
        return status, "escalation bench: did not complete (see above)", {"failed": True}
    table, data = summarize(outcome)
    return 0, table, data


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(arguments)
    if args.incidents < 0 or args.restart_incidents < 0 or args.receiver_delay < 0:
        _parser().error("--incidents, --restart-incidents and --receiver-delay must be >= 0")
    command = shlex.join([sys.executable, "-m", "bench.escalation", *arguments])
    status, table, data = report(arguments, command)
    if status != 0:
        return status
    print(table, flush=True)
    write_json(args.json, data)
    return 1 if data["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
