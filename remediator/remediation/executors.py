"""The executors this service runs: the core's `log` and every installed executor plugin."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from remediator.config import Config
from remediator.plugins import (
    ActionRequest,
    ActionResult,
    Executor,
    ExecutorContext,
    PluginError,
    executor_plugins,
    validate_settings,
)

log = logging.getLogger(__name__)
_LEVELS = logging.getLevelNamesMapping()


class LogExecutor:
    """The core's `log` action inside a remediation job: one line in the service log."""

    async def run(self, request: ActionRequest) -> ActionResult:
        message = str(request.params.get("message", ""))
        level = _LEVELS[str(request.params.get("level", "info")).upper()]
        log.log(level, "rule %s incident %s: %s", request.rule, request.incident_id, message)
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
            raise PluginError(f"executors.{kind}: {_first_error(exc)}") from None
        context = ExecutorContext(
            playbooks_dir=config.resolve_path(config.playbooks_dir),
            data_dir=Path(data_dir),
            settings=settings,
        )
        executors[kind] = plugin.create(context)
    return executors


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])
