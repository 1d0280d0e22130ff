"""Reading an action's rendered parameters; names that reach API paths are validated here."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from pydantic import TypeAdapter
from remediator_integrations.kubernetes.client import DRY_RUN_ALL
from remediator_integrations.kubernetes.names import check_label, check_subdomain

from remediator.plugins import ActionRequest, Duration

__all__ = ["Params", "deadline_for", "dry_run_param", "verb"]

_DURATION: Final = TypeAdapter(Duration)
_DEFAULT_TIMEOUT: Final = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Params:
    """Rendered action parameters (plain strings where the rule had templates)."""

    raw: Mapping[str, Any]

    def text(self, key: str) -> str:
        """A string parameter."""
        return str(self.raw[key])

    def namespace(self) -> str:
        """The namespace, checked as a DNS-1123 label."""
        return check_label("namespace", self.text("namespace"))

    def name(self, what: str) -> str:
        """The object name, checked as a DNS-1123 subdomain; `what` names it in errors."""
        return check_subdomain(f"{what} name", self.text("name"))

    def node(self) -> str:
        """The node name, checked as a DNS-1123 subdomain."""
        return check_subdomain("node name", self.text("node"))

    def optional_int(self, key: str) -> int | None:
        """An optional integer parameter."""
        value = self.raw.get(key)
        return None if value is None else int(value)

    def duration(self, key: str) -> timedelta | None:
        """An optional duration parameter (a timedelta, or a string such as 5m)."""
        value = self.raw.get(key)
        return None if value is None else _DURATION.validate_python(value)

    def plain(self, key: str) -> Any:
        """A nested parameter as JSON-ready data (the core hands out read-only copies)."""
        return _plain(self.raw.get(key))


def deadline_for(params: Params, key: str) -> tuple[float, timedelta]:
    """(monotonic deadline, the wait): `key`'s duration, else 90% of the action's timeout,
    so that the action fails with its own explanation before the core cancels it."""
    wait = params.duration(key)
    if wait is None:
        wait = (params.duration("timeout") or _DEFAULT_TIMEOUT) * 0.9
    return time.monotonic() + wait.total_seconds(), wait


def dry_run_param(request: ActionRequest) -> str | None:
    """The `dryRun` query parameter for mutating requests."""
    return DRY_RUN_ALL if request.dry_run else None


def verb(request: ActionRequest, present: str, past: str) -> str:
    """The summary verb: `past`, or "dry run: would <present>" under dry run."""
    return f"dry run: would {present}" if request.dry_run else past


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
