"""The executors this service runs: the core's `log` and every installed executor plugin."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from remediator.config import Config
from remediator.errors import Problem
from remediator.plugins import (
    ActionRequest,
    ActionResult,
    Executor,
    ExecutorContext,
    PluginError,
    executor_plugins,
    validate_settings,
)
from remediator.rules import CompiledRule, RuleSet

log = logging.getLogger(__name__)
_LEVELS = logging.getLevelNamesMapping()


def write_log_action(rule: str, incident_id: int, level: str, message: str) -> None:
    """The `log` action's effect, at intake (log-only rules) or in a job: one log line."""
    log.log(_LEVELS[level.upper()], "rule %s incident %s: %s", rule, incident_id, message)


class LogExecutor:
    """The core's `log` action inside a remediation job."""

    async def run(self, request: ActionRequest) -> ActionResult:
        message = str(request.params.get("message", ""))
        level = str(request.params.get("level", "info"))
        write_log_action(request.rule, request.incident_id, level, message)
        return ActionResult(summary=message)

    def check(self, params: Mapping[str, Any]) -> list[str]:
        return []

    async def close(self) -> None:
        return None


def create_executors(config: Config) -> dict[str, Executor]:
    """One executor per action type, with the settings from `executors.<type>`."""
    plugins = executor_plugins()
    unknown = sorted(set(config.executors) - set(plugins))
    if unknown:
        raise PluginError(
            f"executors.{unknown[0]}: no such action type; installed: {', '.join(sorted(plugins))}"
        )
    data_dir = config.resolve_path(config.remediation.data_dir)
    executors: dict[str, Executor] = {"log": LogExecutor()}
    for kind, plugin in plugins.items():
        try:
            settings = validate_settings(plugin, config.executors.get(kind))
        except ValidationError as exc:
            raise PluginError(f"executors.{kind}: {describe_settings_error(exc)}") from None
        context = ExecutorContext(
            playbooks_dir=config.resolve_path(config.playbooks_dir),
            data_dir=Path(data_dir),
            settings=settings,
        )
        executors[kind] = plugin.create(context)
    return executors


async def action_problems(config: Config, rules: RuleSet) -> list[Problem]:
    """What each rule's actions would fail on before running (e.g. a missing playbook)."""
    try:
        executors = create_executors(config)
    except PluginError as exc:
        return [config_problem(config, exc)]
    problems = []
    try:
        for rule in rules.rules:
            for index, action in enumerate(rule.actions):
                executor = executors.get(action.type)
                for message in executor.check(action.params) if executor else []:
                    where = f"actions[{index}] ({action.type})"
                    problems.append(rule_problem(rule, f"{where}: {message}"))
    finally:
        for executor in executors.values():
            await executor.close()
    return problems


def config_problem(config: Config, error: Exception) -> Problem:
    """A problem of the service config's plugin settings, as `remediator check` prints it."""
    return Problem(str(config.base_dir / "<config>"), 0, str(error))


def rule_problem(rule: CompiledRule, message: str) -> Problem:
    """A problem of one rule, at its file and line: `file:line: rule NAME: message`."""
    file, _, line = rule.source.rpartition(":")
    return Problem(file, int(line or 0), f"rule {rule.name}: {message}")


def describe_settings_error(exc: ValidationError) -> str:
    """A plugin settings error in one line: the field path and what is wrong with it."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])
