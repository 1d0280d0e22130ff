"""The rule set in force, and reloading it without ever running with a broken one."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from remediator.errors import Problem, RuleLoadError
from remediator.metrics import Metrics
from remediator.rules.compiled import RuleSet
from remediator.rules.loader import load_rule_set

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    ok: bool
    rules: int
    problems: tuple[Problem, ...] = ()
    version: str = ""  # of the rules in force after the reload


class ActiveRules:
    """Holds the current RuleSet; a reload that fails leaves it untouched."""

    def __init__(self, patterns: list[str], base_dir: Path, metrics: Metrics) -> None:
        self._patterns = patterns
        self._base_dir = base_dir
        self._metrics = metrics
        self._current = RuleSet.empty()
        self.last_problems: tuple[Problem, ...] = ()
        # SIGHUP and POST /-/reload may overlap; each runs in a worker thread.
        self._reloading = threading.Lock()

    @property
    def current(self) -> RuleSet:
        return self._current

    def reload(self) -> ReloadOutcome:
        """Load the rule files again; on any problem keep the old rules and report why."""
        with self._reloading:
            return self._reload()

    def _reload(self) -> ReloadOutcome:
        try:
            rule_set = load_rule_set(self._patterns, self._base_dir)
        except RuleLoadError as exc:
            self.last_problems = tuple(exc.problems)
            self._metrics.rules_last_reload_success.set(0)
            for problem in exc.problems:
                log.error(
                    "rule reload failed, keeping %d old rules: %s",
                    len(self._current.rules),
                    problem,
                )
            return ReloadOutcome(
                False, len(self._current.rules), self.last_problems, self._current.version
            )
        self._current = rule_set
        self.last_problems = ()
        self._metrics.rules_last_reload_success.set(1)
        self._metrics.rules_last_reload_timestamp.set(time.time())
        self._metrics.rules_loaded.set(len(rule_set.rules))
        self._metrics.rules_version.info({"version": rule_set.version})
        log.info(
            "loaded %d rules from %d files (version %s)",
            len(rule_set.rules),
            len(rule_set.files),
            rule_set.version,
        )
        return ReloadOutcome(True, len(rule_set.rules), version=rule_set.version)
