"""The Rules page: every loaded rule with its matchers, actions and guards, its breaker, its
last runs and success rate; a rejected reload is shown first, in plain words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy.engine import Connection

from remediator import appkeys
from remediator.config import Role
from remediator.guards.status import guard_status
from remediator.reports.stats import rate
from remediator.store import jobs as job_store
from remediator.web.access import USER, page
from remediator.web.render import render

LAST_RUNS = 5
SUCCESS_WINDOW = timedelta(days=30)


@page(Role.viewer)
async def rules_page(request: web.Request) -> web.Response:
    app = request.app
    active = app[appkeys.RULES]
    rule_set = active.current
    gate = app[appkeys.RUNNER].gate
    guards_config = app[appkeys.CONFIG].guards
    now = datetime.now(UTC)

    def read(conn: Connection) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[Any]]]:
        status = guard_status(conn, guards_config, rule_set, gate.guards_of, now)
        outcomes = job_store.outcomes_since(conn, now - SUCCESS_WINDOW)
        runs = {r.name: job_store.latest_of_rule(conn, r.name, LAST_RUNS) for r in rule_set.rules}
        return status, outcomes, runs

    status, outcomes, runs = await app[appkeys.DATABASE].read(read)
    by_rule = {entry["rule"]: entry for entry in status["rules"]}
    rules = [
        {
            "rule": rule,
            "guards": by_rule.get(rule.name, {}),
            "runs": runs[rule.name],
            "success": _success(outcomes.get(rule.name, {})),
        }
        for rule in rule_set.rules
    ]
    return render(
        request,
        "rules.html",
        user=request[USER],
        rules=rules,
        files=rule_set.files,
        problems=[str(p) for p in active.last_problems],
        paused=status["paused"],
        window_days=SUCCESS_WINDOW.days,
    )


def _success(states: dict[str, int]) -> dict[str, Any]:
    succeeded, failed = states.get("succeeded", 0), states.get("failed", 0)
    held = states.get("blocked", 0) + states.get("rejected", 0)
    return {
        "succeeded": succeeded,
        "failed": failed,
        "held_back": held,
        "rate": rate(succeeded, succeeded + failed),
    }
