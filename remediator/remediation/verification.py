"""Verification checks after remediation (`verify.promql`), through verifier plugins.

A verifier is created only for the kinds the config sets up (`verifiers.promql.url`): a
PromQL check needs a Prometheus to ask, and there is no sensible default one.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from remediator.config import Config
from remediator.errors import Problem
from remediator.plugins import PluginError, Verifier, verifier_plugins
from remediator.remediation.executors import config_problem, describe_settings_error, rule_problem
from remediator.rules import RuleSet

PROMQL = "promql"


def create_verifiers(config: Config) -> dict[str, Verifier]:
    """One verifier per configured `verifiers.<kind>` section."""
    plugins = verifier_plugins()
    verifiers: dict[str, Verifier] = {}
    for kind, raw in config.verifiers.items():
        plugin = plugins.get(kind)
        if plugin is None:
            installed = ", ".join(sorted(plugins)) or "none"
            raise PluginError(f"verifiers.{kind}: no such verifier; installed: {installed}")
        try:
            settings = plugin.settings_model.model_validate(dict(raw or {}))
        except ValidationError as exc:
            raise PluginError(f"verifiers.{kind}: {describe_settings_error(exc)}") from None
        verifiers[kind] = plugin.create(settings)
    return verifiers


async def verification_problems(config: Config, rules: RuleSet) -> list[Problem]:
    """Invalid `verifiers` settings, and rules whose `verify.promql` could never run."""
    try:
        verifiers = create_verifiers(config)
    except PluginError as exc:
        return [config_problem(config, exc)]
    await close_verifiers(verifiers)
    if PROMQL in verifiers:
        return []
    return [
        rule_problem(
            rule,
            "verify.promql needs a Prometheus to query; set verifiers.promql.url in the "
            "service config",
        )
        for rule in rules.rules
        if rule.verify is not None and rule.verify.promql is not None
    ]


async def close_verifiers(verifiers: Mapping[str, Verifier]) -> None:
    for verifier in verifiers.values():
        await verifier.close()
