"""`create_app(config)`: routes, middlewares and every long-lived resource.

Each resource is a `cleanup_ctx` that starts it and, on shutdown, closes what it started.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from remediator import appkeys
from remediator.api import channels, guards, incidents, links, ops, reports, rules
from remediator.api.auth import Authenticator, auth_middleware
from remediator.api.errors import error_middleware
from remediator.api.openapi import openapi_json
from remediator.config import Config
from remediator.errors import RuleLoadError
from remediator.escalation.channels import close_channels, create_channels
from remediator.escalation.runner import EscalationRunner
from remediator.incidents.ingest import IncidentIntake, IngestResult
from remediator.intake.committer import GroupCommitter
from remediator.intake.handler import alertmanager_webhook
from remediator.metrics import Metrics
from remediator.remediation.executors import create_executors
from remediator.remediation.runner import RemediationRunner
from remediator.remediation.verification import close_verifiers, create_verifiers
from remediator.rules.active import ActiveRules
from remediator.rules.broadcast import RulesBroadcast
from remediator.store import migrate
from remediator.store.database import Database
from remediator.web.routes import add_dashboard

log = logging.getLogger(__name__)

# aiohttp's own limit applies before any handler; leave room above the configured one so
# the intake handler can answer 413 with a JSON body that names the setting.
_BODY_LIMIT_HEADROOM = 1024


def create_app(
    config: Config,
    *,
    metrics: Metrics | None = None,
    handle_sighup: bool = False,
    migrate_on_start: bool = True,
) -> web.Application:
    """Build the service. Rules and the database are opened when the app starts."""
    authenticator = Authenticator(config)
    app = web.Application(
        client_max_size=config.intake.max_body_bytes + _BODY_LIMIT_HEADROOM,
        middlewares=[error_middleware, auth_middleware(authenticator)],
    )
    app[appkeys.CONFIG] = config
    app[appkeys.METRICS] = metrics or Metrics()
    app[appkeys.RULES] = ActiveRules(config.rules, config.base_dir, app[appkeys.METRICS])
    app.cleanup_ctx.append(_database(migrate_on_start))
    app.cleanup_ctx.append(_rules(handle_sighup))
    app.cleanup_ctx.append(_escalation)
    app.cleanup_ctx.append(_remediation)
    app.cleanup_ctx.append(_intake_writer)
    _routes(app)
    add_dashboard(app, authenticator)
    return app


def _routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/webhooks/alertmanager", alertmanager_webhook)
    app.router.add_get("/api/v1/incidents", incidents.list_incidents)
    app.router.add_get(r"/api/v1/incidents/{id:\d+}", incidents.get_incident)
    app.router.add_post(r"/api/v1/incidents/{id:\d+}/ack", incidents.acknowledge)
    app.router.add_post(r"/api/v1/incidents/{id:\d+}/resolve", incidents.resolve)
    app.router.add_post(r"/api/v1/incidents/{id:\d+}/notes", incidents.add_note)
    app.router.add_get(r"/api/v1/incidents/{id:\d+}/ack-link", links.ack_link_page)
    app.router.add_post(r"/api/v1/incidents/{id:\d+}/ack-link", links.ack_link)
    app.router.add_post("/api/v1/channels/{name}/events", channels.channel_events)
    app.router.add_get("/api/v1/guards", guards.get_guards)
    app.router.add_post("/api/v1/guards/pause", guards.pause)
    app.router.add_post("/api/v1/guards/resume", guards.resume)
    app.router.add_post("/api/v1/guards/breakers/{rule}/close", guards.close_breaker)
    app.router.add_post(r"/api/v1/jobs/{id:\d+}/approve", guards.approve)
    app.router.add_post(r"/api/v1/jobs/{id:\d+}/reject", guards.reject)
    app.router.add_get(r"/api/v1/jobs/{id:\d+}/approval-link", links.approval_link_page)
    app.router.add_post(r"/api/v1/jobs/{id:\d+}/approval-link", links.approval_link)
    app.router.add_get("/api/v1/rules", rules.list_rules)
    app.router.add_get("/api/v1/reports/quality", reports.quality)
    app.router.add_get("/api/v1/openapi.json", openapi_json)
    app.router.add_post("/-/reload", ops.reload)
    app.router.add_get("/healthz", ops.healthz)
    app.router.add_get("/readyz", ops.readyz)
    app.router.add_get("/metrics", ops.metrics)


def _database(
    migrate_on_start: bool,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        config = app[appkeys.CONFIG]
        db = Database(config.database_url)
        if migrate_on_start:
            await migrate.upgrade(db)
        db.start()
        app[appkeys.DATABASE] = db
        yield
        await db.dispose()

    return ctx


async def _intake_writer(app: web.Application) -> AsyncIterator[None]:
    """The group-commit writer; on shutdown it commits what is queued before it stops."""
    intake = IncidentIntake(
        app[appkeys.DATABASE], lambda: app[appkeys.RULES].current, app[appkeys.CONFIG]
    )
    metrics = app[appkeys.METRICS]
    runner = app[appkeys.RUNNER]

    def on_commit(result: IngestResult) -> None:
        metrics.record_ingest(result)
        if result.jobs_queued:
            runner.wake()
        if result.escalation_changes:
            app[appkeys.ESCALATION].wake()

    committer = GroupCommitter(
        intake,
        on_commit=on_commit,
        on_known=metrics.record_known_duplicates,
        remembered=app[appkeys.CONFIG].intake.remembered_deliveries,
    )
    app[appkeys.COMMITTER] = committer
    committer.start()
    yield
    await committer.stop()


async def _escalation(app: web.Application) -> AsyncIterator[None]:
    """Channels and the escalation runner; on shutdown sends in flight are cancelled (their
    leases lapse and another replica, or the next start, sends them), then channels closed."""
    config = app[appkeys.CONFIG]
    channels = create_channels(config)
    app[appkeys.CHANNELS] = channels
    runner = EscalationRunner(app[appkeys.DATABASE], config, channels, app[appkeys.METRICS])
    app[appkeys.ESCALATION] = runner
    runner.start()
    yield
    await runner.stop()
    await close_channels(channels)


async def _remediation(app: web.Application) -> AsyncIterator[None]:
    """Executors, verifiers and the job runner; on shutdown running jobs and checks are
    cancelled, then executors and verifiers closed."""
    config = app[appkeys.CONFIG]
    executors = create_executors(config)
    verifiers = create_verifiers(config)
    runner = RemediationRunner(
        app[appkeys.DATABASE],
        lambda: app[appkeys.RULES].current,
        config,
        executors,
        app[appkeys.METRICS],
        verifiers=verifiers,
        on_escalated=app[appkeys.ESCALATION].wake,
    )
    app[appkeys.RUNNER] = runner
    runner.start()
    yield
    await runner.stop()
    for executor in executors.values():
        await executor.close()
    await close_verifiers(verifiers)


def _rules(handle_sighup: bool) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        active = app[appkeys.RULES]
        outcome = active.reload()
        if not outcome.ok:
            # Like Prometheus: refuse to start on bad rules rather than run without them.
            raise RuleLoadError(list(outcome.problems))
        broadcast = RulesBroadcast(app[appkeys.DATABASE], app[appkeys.CONFIG].database_url, active)
        app[appkeys.RULES_BROADCAST] = broadcast
        broadcast.start()
        loop = asyncio.get_running_loop()
        reloads: set[asyncio.Task[object]] = set()

        def on_sighup() -> None:
            # As Prometheus does; the file reading runs in a worker thread, not on the loop.
            task = loop.create_task(broadcast.reload())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        if handle_sighup:
            loop.add_signal_handler(signal.SIGHUP, on_sighup)
        yield
        if handle_sighup:
            loop.remove_signal_handler(signal.SIGHUP)
        await broadcast.stop()

    return ctx
