"""The `http` action: call an internal HTTP endpoint, e.g. a deployer's restart API.

See README.md in this folder for the rule and settings reference.
"""

from __future__ import annotations

from remediator.plugins import ExecutorPlugin

from .executor import HttpExecutor, create
from .model import HttpAction, HttpSettings

__all__ = ["PLUGIN", "HttpAction", "HttpExecutor", "HttpSettings"]

PLUGIN = ExecutorPlugin(
    type="http",
    action_model=HttpAction,
    settings_model=HttpSettings,
    create=create,
    description="Call an internal HTTP endpoint; 5xx, 429 and connection errors are retried.",
)
