"""The one error hierarchy of remediator.

Every error a user can meet derives from `RemediatorError`; narrow subclasses carry the
data that explains them, and their messages say what to do next.
"""

from __future__ import annotations

from dataclasses import dataclass


class RemediatorError(Exception):
    """Base of every error remediator raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a user's file, located the way `promtool check` does."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class FileProblemsError(RemediatorError):
    """A file (config or rules) could not be accepted; `problems` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ConfigError(FileProblemsError):
    """The service configuration is invalid; the service must not start."""


class RuleLoadError(FileProblemsError):
    """One or more rule files are invalid; the previously loaded rules stay active."""


class InvalidTransitionError(RemediatorError):
    """An incident cannot move from its current state to the requested one."""

    def __init__(self, incident_id: int, current: str, target: str) -> None:
        self.incident_id = incident_id
        self.current = current
        self.target = target
        super().__init__(f"incident {incident_id} is {current!r} and cannot become {target!r}")


class IncidentNotFoundError(RemediatorError):
    """No incident has the requested id."""

    def __init__(self, incident_id: int) -> None:
        self.incident_id = incident_id
        super().__init__(f"incident {incident_id} does not exist")


class StorageUnavailableError(RemediatorError):
    """The database could not be reached or refused the write; the caller should retry."""
