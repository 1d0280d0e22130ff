"""Prometheus: the `verify.promql` check (the PromQL verifier plugin).

See README.md in this folder for the rule and settings reference.
"""

from __future__ import annotations

from remediator.plugins import VerifierPlugin

from .model import PrometheusSettings
from .verifier import PromQLVerifier, create

__all__ = ["PLUGIN", "PromQLVerifier", "PrometheusSettings"]

PLUGIN = VerifierPlugin(
    type="promql",
    settings_model=PrometheusSettings,
    create=create,
    description="Verify a remediation by querying Prometheus until an expression is empty.",
)
