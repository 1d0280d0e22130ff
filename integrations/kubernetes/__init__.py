"""Kubernetes actions (`type: kubernetes`): restart, scale, delete pods, cordon, drain, run Jobs,
patch workloads, through the official client. See README.md; RBAC in rbac.yaml."""

from __future__ import annotations

from remediator_integrations.kubernetes.executor import KubernetesExecutor, create
from remediator_integrations.kubernetes.model import KubernetesAction, KubernetesSettings

from remediator.plugins import ExecutorPlugin

__all__ = ["PLUGIN", "KubernetesAction", "KubernetesExecutor", "KubernetesSettings"]

PLUGIN = ExecutorPlugin(
    type="kubernetes",
    action_model=KubernetesAction,
    settings_model=KubernetesSettings,
    create=create,
    description=(
        "Kubernetes: rollout_restart, scale, delete_pod, cordon, uncordon, drain, run_job "
        "and patch, with server-side dry run"
    ),
)
