"""The `awx` action: launch an AWX / Automation Controller job template and follow the job.

See README.md in this folder for the rule and settings reference.
"""

from __future__ import annotations

from remediator.plugins import ExecutorPlugin

from .executor import AwxExecutor, AwxFailed, create
from .model import AwxAction, AwxSettings

__all__ = ["PLUGIN", "AwxAction", "AwxExecutor", "AwxFailed", "AwxSettings"]

PLUGIN = ExecutorPlugin(
    type="awx",
    action_model=AwxAction,
    settings_model=AwxSettings,
    create=create,
    description="Launch an AWX / Automation Controller job template and follow the job to its "
    "end; it is cancelled on timeout.",
)
