"""Typed application state: every shared object of the app, behind one `web.AppKey`."""

from __future__ import annotations

from aiohttp import web

from remediator.config import Config
from remediator.escalation.runner import EscalationRunner
from remediator.intake.committer import GroupCommitter
from remediator.metrics import Metrics
from remediator.plugins import Channel
from remediator.remediation.runner import RemediationRunner
from remediator.rules.active import ActiveRules
from remediator.rules.broadcast import RulesBroadcast
from remediator.store.database import Database

CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", Metrics)
DATABASE = web.AppKey("database", Database)
RULES = web.AppKey("rules", ActiveRules)
RULES_BROADCAST = web.AppKey("rules_broadcast", RulesBroadcast)
COMMITTER = web.AppKey("committer", GroupCommitter)
RUNNER = web.AppKey("remediation_runner", RemediationRunner)
CHANNELS = web.AppKey("channels", dict[str, Channel])
ESCALATION = web.AppKey("escalation_runner", EscalationRunner)

# Per-request state.
PRINCIPAL = web.RequestKey("principal", str)
"""Who made the request: the API token's name, or "anonymous" when auth is off."""
