"""The kubernetes actions by name; the simple ones are here, drain and run_job in their modules.

Every mutating request carries `dryRun=All` under dry run, so the API server validates and
admits it (RBAC, admission webhooks, schema) without persisting anything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

from remediator_integrations.kubernetes.client import MERGE_PATCH, STRATEGIC_MERGE_PATCH, Kube
from remediator_integrations.kubernetes.jobs import run_job
from remediator_integrations.kubernetes.nodes import cordon, drain, uncordon
from remediator_integrations.kubernetes.params import Params, dry_run_param, verb

from remediator.plugins import ActionRequest, ActionResult

__all__ = ["ACTIONS", "Action"]

Action = Callable[[Kube, Params, ActionRequest], Awaitable[ActionResult]]

RESTARTED_AT: Final = "kubectl.kubernetes.io/restartedAt"
_METHOD_SUFFIX: Final = {
    "deployment": "deployment",
    "statefulset": "stateful_set",
    "daemonset": "daemon_set",
}


def _workload(
    kube: Kube, params: Params, api_verb: str, suffix: str = ""
) -> tuple[str, tuple[str, str], Any]:
    """(target, name, namespace) and the bound `<verb>_namespaced_<kind><suffix>` method."""
    kind = params.text("kind")
    namespace, name = params.namespace(), params.name(kind)
    method = getattr(kube.apps, f"{api_verb}_namespaced_{_METHOD_SUFFIX[kind]}{suffix}")
    return f"{kind} {namespace}/{name}", (name, namespace), method


async def rollout_restart(kube: Kube, params: Params, request: ActionRequest) -> ActionResult:
    """What `kubectl rollout restart` does: stamp the pod template; the controller rolls."""
    target, key, patch = _workload(kube, params, "patch")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
    await kube.call(
        target,
        patch,
        *key,
        body,
        dry_run=dry_run_param(request),
        _content_type=STRATEGIC_MERGE_PATCH,
    )
    return ActionResult(
        summary=f"{verb(request, 'restart', 'restarted')} {target} (restartedAt {now})",
        data={"target": target, "restartedAt": now},
    )


async def scale(kube: Kube, params: Params, request: ActionRequest) -> ActionResult:
    """Set replicas through the scale subresource, as `kubectl scale` does."""
    target, key, read = _workload(kube, params, "read", "_scale")
    _, _, patch = _workload(kube, params, "patch", "_scale")
    replicas = params.optional_int("replicas")
    current = await kube.call(target, read, *key)
    before = current.spec.replicas if current.spec is not None else None
    body = {"spec": {"replicas": replicas}}
    await kube.call(
        target, patch, *key, body, dry_run=dry_run_param(request), _content_type=MERGE_PATCH
    )
    return ActionResult(
        summary=f"{verb(request, 'scale', 'scaled')} {target} from {before} to {replicas} replicas",
        data={"target": target, "from": before, "to": replicas},
    )


async def delete_pod(kube: Kube, params: Params, request: ActionRequest) -> ActionResult:
    """Delete one pod; its controller (if any) replaces it."""
    namespace, name = params.namespace(), params.name("pod")
    target = f"pod {namespace}/{name}"
    grace = params.optional_int("grace_period_seconds")
    await kube.call(
        target,
        kube.core.delete_namespaced_pod,
        name,
        namespace,
        grace_period_seconds=grace,
        dry_run=dry_run_param(request),
    )
    detail = "" if grace is None else f" (grace period {grace}s)"
    return ActionResult(
        summary=f"{verb(request, 'delete', 'deleted')} {target}{detail}", data={"target": target}
    )


async def patch(kube: Kube, params: Params, request: ActionRequest) -> ActionResult:
    """Apply the rule's strategic merge patch to a workload."""
    target, key, method = _workload(kube, params, "patch")
    body = params.plain("patch")
    result = await kube.call(
        target,
        method,
        *key,
        body,
        dry_run=dry_run_param(request),
        _content_type=STRATEGIC_MERGE_PATCH,
    )
    generation = result.metadata.generation if result.metadata is not None else None
    return ActionResult(
        summary=f"{verb(request, 'patch', 'patched')} {target} (generation {generation})",
        data={"target": target, "generation": generation},
    )


ACTIONS: Final[dict[str, Action]] = {
    "rollout_restart": rollout_restart,
    "scale": scale,
    "delete_pod": delete_pod,
    "cordon": cordon,
    "uncordon": uncordon,
    "drain": drain,
    "run_job": run_job,
    "patch": patch,
}
"""Each action by its YAML `action` name."""
