"""`GET /api/v1/rules`: the rules in force, and why the last reload failed if it did."""

from __future__ import annotations

from aiohttp import web

from remediator import appkeys
from remediator.api.auth import requires
from remediator.api.errors import json_body
from remediator.api.models import RuleList, RuleSummary
from remediator.config import Role


@requires(Role.viewer)
async def list_rules(request: web.Request) -> web.Response:
    active = request.app[appkeys.RULES]
    rule_set = active.current
    body = RuleList(
        version=rule_set.version,
        rules=[
            RuleSummary.model_validate(
                {
                    "name": rule.name,
                    "match": [str(m) for m in rule.matchers],
                    "on": rule.on,
                    "group_by": list(rule.group_by) if rule.group_by is not None else None,
                    "priority": rule.priority.value if rule.priority else None,
                    "actions": [action.type for action in rule.actions],
                    "runbook": rule.runbook,
                    "continue": rule.continue_,
                    "source": rule.source,
                }
            )
            for rule in rule_set.rules
        ],
        files=list(rule_set.files),
        last_reload_ok=not active.last_problems,
        problems=[str(p) for p in active.last_problems],
    )
    return json_body(body.model_dump(mode="json", by_alias=True))
