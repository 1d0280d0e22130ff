"""run_job: create a batch/v1 Job from the rule's template, wait for it, keep its logs."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any, Final

from remediator_integrations.kubernetes.client import Kube
from remediator_integrations.kubernetes.params import Params, deadline_for, dry_run_param

from remediator.plugins import ActionFailed, ActionRequest, ActionResult

__all__ = ["build_job", "run_job"]

log = logging.getLogger(__name__)

MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "remediator"}
LOG_TAIL_LINES: Final = 500
# Failed Jobs stay a day for inspection, then the TTL controller removes them and their pods.
DEFAULT_TTL_SECONDS: Final = 86400


def build_job(params: Params, request: ActionRequest) -> dict[str, Any]:
    """The Job to create: the rule's template plus generateName, labels and `env`.

    Defaults that differ from the API's: restartPolicy Never (the API has none for Jobs),
    backoffLimit 0 (the action's `retries` retries) and ttlSecondsAfterFinished one day.
    """
    template = params.plain("job_template")
    metadata = copy.deepcopy(template.get("metadata") or {})
    spec = copy.deepcopy(template["spec"])
    metadata.setdefault("generateName", "remediator-")
    metadata["labels"] = {**metadata.get("labels", {}), **MANAGED_BY}
    metadata["annotations"] = {
        **metadata.get("annotations", {}),
        "remediator.io/rule": request.rule,
        "remediator.io/job-id": str(request.job_id),
    }
    spec.setdefault("backoffLimit", 0)
    spec.setdefault("ttlSecondsAfterFinished", DEFAULT_TTL_SECONDS)
    pod = spec["template"]["spec"]
    pod.setdefault("restartPolicy", "Never")
    env = [{"name": str(k), "value": str(v)} for k, v in (params.plain("env") or {}).items()]
    for container in pod["containers"]:
        container["env"] = [*container.get("env", []), *env]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


async def run_job(kube: Kube, params: Params, request: ActionRequest) -> ActionResult:
    """Create the Job and wait until it completes or fails; the output holds its pods' logs.

    Failure, `job_timeout` and cancellation end in ActionFailed with the logs; on timeout and
    cancellation the Job is deleted (with its pods) so that it stops.
    """
    namespace = params.namespace()
    deadline, wait = deadline_for(params, "job_timeout")
    created = await kube.call(
        f"job in {namespace}",
        kube.batch.create_namespaced_job,
        namespace,
        build_job(params, request),
        dry_run=dry_run_param(request),
    )
    name = created.metadata.name
    target = f"job {namespace}/{name}"
    if request.dry_run:
        return ActionResult(summary=f"dry run: would create {target}", data={"job": name})
    started = time.monotonic()
    try:
        outcome = await _wait(kube, namespace, name, deadline)
    except asyncio.CancelledError:
        await _delete(kube, namespace, name)
        raise
    logs = await _logs(kube, namespace, name)
    took = f"{time.monotonic() - started:.0f}s"
    if outcome is None:
        await _delete(kube, namespace, name)
        message = f"{target} did not finish within {wait.total_seconds():g}s; deleted it"
        raise ActionFailed(message, retryable=False, output=logs)
    succeeded, reason = outcome
    if not succeeded:
        raise ActionFailed(f"{target} failed after {took}: {reason}", output=logs)
    return ActionResult(
        summary=f"{target} succeeded in {took}",
        output=logs,
        data={"job": name, "namespace": namespace},
    )


async def _wait(kube: Kube, namespace: str, name: str, deadline: float) -> tuple[bool, str] | None:
    """(succeeded, reason) once the Job has a Complete or Failed condition; None at deadline."""
    target = f"job {namespace}/{name}"
    while True:
        job = await kube.call(target, kube.batch.read_namespaced_job_status, name, namespace)
        for condition in (job.status.conditions if job.status else None) or []:
            if condition.status == "True" and condition.type in ("Complete", "Failed"):
                reason = ": ".join(x for x in (condition.reason, condition.message) if x)
                return condition.type == "Complete", reason or condition.type
        if time.monotonic() >= deadline:
            return None
        # A short sleep in async code: cancellation lands here, not inside a request.
        await asyncio.sleep(min(kube.poll_interval, max(deadline - time.monotonic(), 0)))


async def _logs(kube: Kube, namespace: str, name: str) -> str:
    """The last lines of every container of the Job's pods; notes instead of failures."""
    try:
        pods = await kube.call(
            f"pods of job {namespace}/{name}",
            kube.core.list_namespaced_pod,
            namespace,
            label_selector=f"job-name={name}",
        )
    except ActionFailed as failure:
        return f"(logs unavailable: {failure.summary})"
    parts: list[str] = []
    for pod in sorted(pods.items, key=lambda p: p.metadata.creation_timestamp or 0):
        for container in pod.spec.containers:
            parts.append(f"--- pod {pod.metadata.name} container {container.name}")
            parts.append(await _container_log(kube, namespace, pod.metadata.name, container.name))
    return "\n".join(parts) if parts else "(the job has no pods)"


async def _container_log(kube: Kube, namespace: str, pod: str, container: str) -> str:
    try:
        text = await kube.call(
            f"log of pod {namespace}/{pod}",
            kube.core.read_namespaced_pod_log,
            pod,
            namespace,
            container=container,
            tail_lines=LOG_TAIL_LINES,
        )
    except ActionFailed as failure:
        return f"(log unavailable: {failure.summary})"
    return str(text).rstrip("\n")


async def _delete(kube: Kube, namespace: str, name: str) -> None:
    """Delete the Job and, in the background, its pods (the API's default orphans them)."""
    try:
        await asyncio.wait_for(
            kube.call(
                f"job {namespace}/{name}",
                kube.batch.delete_namespaced_job,
                name,
                namespace,
                propagation_policy="Background",
            ),
            timeout=kube.request_timeout,
        )
    except (ActionFailed, TimeoutError) as error:
        log.warning("could not delete job %s/%s: %s", namespace, name, error)
