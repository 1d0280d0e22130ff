"""The `kubernetes` action as rule files write it, and the `executors.kubernetes` settings.

One model with an `action` field keeps the YAML flat (`type: kubernetes`, `action: cordon`,
`node: ...`); `_check_fields` enforces which fields each action needs and allows.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from remediator.plugins import ActionSpec, Duration, TemplateStr

__all__ = [
    "ACTION_FIELDS",
    "ActionName",
    "KubernetesAction",
    "KubernetesSettings",
    "WorkloadKind",
]

ActionName = Literal[
    "rollout_restart", "scale", "delete_pod", "cordon", "uncordon", "drain", "run_job", "patch"
]
WorkloadKind = Literal["deployment", "statefulset", "daemonset"]

# Per action: (required fields, optional fields). Every other action-specific field is refused,
# so a typo such as `replicas` on rollout_restart is an error instead of being ignored.
ACTION_FIELDS: Final[dict[str, tuple[frozenset[str], frozenset[str]]]] = {
    "rollout_restart": (frozenset({"kind", "namespace", "name"}), frozenset()),
    "scale": (frozenset({"kind", "namespace", "name", "replicas"}), frozenset()),
    "delete_pod": (frozenset({"namespace", "name"}), frozenset({"grace_period_seconds"})),
    "cordon": (frozenset({"node"}), frozenset()),
    "uncordon": (frozenset({"node"}), frozenset()),
    "drain": (frozenset({"node"}), frozenset({"drain_timeout", "grace_period_seconds"})),
    "run_job": (frozenset({"namespace", "job_template"}), frozenset({"env", "job_timeout"})),
    "patch": (frozenset({"kind", "namespace", "name", "patch"}), frozenset()),
}
_SPECIFIC: Final = frozenset().union(*(req | opt for req, opt in ACTION_FIELDS.values()))
_SCALABLE: Final = ("deployment", "statefulset")


class KubernetesAction(ActionSpec):
    """Act on a Kubernetes cluster: restart, scale, delete a pod, cordon/drain a node,
    run a Job or patch a workload. `action` selects what; see the plugin README."""

    type: Literal["kubernetes"]
    action: ActionName
    """What to do: rollout_restart, scale, delete_pod, cordon, uncordon, drain, run_job, patch."""
    kind: WorkloadKind | None = None
    """The workload kind for rollout_restart, scale (not daemonset) and patch."""
    namespace: TemplateStr | None = None
    """The namespace, e.g. "{{ labels.namespace }}"."""
    name: TemplateStr | None = None
    """The workload's or pod's name, e.g. "{{ labels.deployment }}"."""
    node: TemplateStr | None = None
    """The node for cordon, uncordon and drain, e.g. "{{ labels.node }}"."""
    replicas: int | None = Field(None, ge=0)
    """scale: the desired number of replicas."""
    grace_period_seconds: int | None = Field(None, ge=0)
    """delete_pod, drain: seconds the pods get to shut down; unset: each pod's own setting."""
    drain_timeout: Duration | None = None
    """drain: give up after this long (a PodDisruptionBudget keeps refusing, pods do not go);
    unset: 90% of `timeout`. Must be shorter than `timeout`."""
    job_template: dict[str, Any] | None = None
    """run_job: a batch/v1 Job's `metadata` (optional) and `spec`, as in a CronJob's
    jobTemplate. Written as is; alert values reach the Job only through `env`."""
    env: dict[str, TemplateStr] | None = None
    """run_job: environment variables added to every container, e.g.
    {NODE: "{{ labels.node }}"}: the way to hand alert values to the Job, as data."""
    job_timeout: Duration | None = None
    """run_job: how long the Job may take; unset: 90% of `timeout`. Shorter than `timeout`."""
    patch: dict[str, Any] | None = None
    """patch: a strategic merge patch of the workload, e.g. {spec: {replicas: 3}}."""

    @model_validator(mode="after")
    def _check_fields(self) -> KubernetesAction:
        required, optional = ACTION_FIELDS[self.action]
        missing = sorted(f for f in required if getattr(self, f) is None)
        if missing:
            raise ValueError(f"action {self.action} needs {', '.join(missing)}")
        extra = sorted(f for f in _SPECIFIC - required - optional if getattr(self, f) is not None)
        if extra:
            raise ValueError(f"action {self.action} does not take {', '.join(extra)}")
        if self.action == "scale" and self.kind not in _SCALABLE:
            raise ValueError("action scale takes kind deployment or statefulset")
        for field in ("drain_timeout", "job_timeout"):
            value: timedelta | None = getattr(self, field)
            if value is not None and not timedelta(0) < value < self.timeout:
                raise ValueError(f"{field} must be more than 0 and shorter than timeout")
        if self.patch is not None and not self.patch:
            raise ValueError("patch must not be empty")
        if self.job_template is not None:
            _check_job_template(self.job_template)
        return self


def _check_job_template(template: dict[str, Any]) -> None:
    unknown = sorted(set(template) - {"metadata", "spec"})
    if unknown:
        raise ValueError(f"job_template takes metadata and spec, not {', '.join(unknown)}")
    metadata = template.get("metadata") or {}
    if not isinstance(metadata, dict) or set(metadata) - {"labels", "annotations", "generateName"}:
        # No fixed name: every run (and retry) creates a new Job via generateName.
        raise ValueError("job_template.metadata takes only labels, annotations and generateName")
    spec = template.get("spec")
    pod = spec.get("template", {}).get("spec", {}) if isinstance(spec, dict) else {}
    containers = pod.get("containers") if isinstance(pod, dict) else None
    if not isinstance(containers, list) or not containers:
        raise ValueError("job_template needs spec.template.spec.containers (a non-empty list)")
    for container in containers:
        if (
            not isinstance(container, dict)
            or not container.get("name")
            or not container.get("image")
        ):
            raise ValueError("every container in job_template needs a name and an image")
    if pod.get("restartPolicy", "Never") not in ("Never", "OnFailure"):
        raise ValueError("a Job's restartPolicy must be Never or OnFailure")


class KubernetesSettings(BaseModel):
    """The service config's `executors.kubernetes` section: how to reach the cluster."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    in_cluster: bool = False
    """Use the pod's ServiceAccount (running inside the cluster); kubeconfig is then ignored."""
    kubeconfig: str | None = None
    """Path of a kubeconfig file; unset: $KUBECONFIG or ~/.kube/config."""
    context: str | None = None
    """The kubeconfig context to use; unset: its current-context."""
    request_timeout: Duration = timedelta(seconds=10)
    """Timeout of each API request. Waits (drain, run_job) are many short requests."""
    poll_interval: Duration = timedelta(seconds=2)
    """How often drain and run_job look again while they wait."""
