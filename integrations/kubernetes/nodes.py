"""cordon, uncordon and drain: what `kubectl cordon/uncordon/drain --ignore-daemonsets` do."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Final

from remediator_integrations.kubernetes.client import STRATEGIC_MERGE_PATCH, Kube
from remediator_integrations.kubernetes.errors import ApiFailure
from remediator_integrations.kubernetes.params import Params, deadline_for, dry_run_param, verb

from remediator.plugins import ActionFailed, ActionRequest, ActionResult

__all__ = ["cordon", "drain", "uncordon"]

MIRROR_ANNOTATION: Final = "kubernetes.io/config.mirror"
_SHOWN: Final = 3
Key = tuple[str, str]


async def _set_unschedulable(kube: Kube, node: str, value: bool, request: ActionRequest) -> None:
    # kubectl sends null, not false, to uncordon: the field is omitempty.
    body = {"spec": {"unschedulable": True if value else None}}
    await kube.call(
        f"node {node}",
        kube.core.patch_node,
        node,
        body,
        dry_run=dry_run_param(request),
        _content_type=STRATEGIC_MERGE_PATCH,
    )


async def cordon(kube: Kube, params: Params, request: ActionRequest) -> ActionResult:
    """Mark the node unschedulable; running pods stay."""
    node = params.node()
    await _set_unschedulable(kube, node, True, request)
    return ActionResult(summary=f"{verb(request, 'cordon', 'cordoned')} node {node}")


async def uncordon(kube: Kube, params: Params, request: ActionRequest) -> ActionResult:
    """Mark the node schedulable again."""
    node = params.node()
    await _set_unschedulable(kube, node, False, request)
    return ActionResult(summary=f"{verb(request, 'uncordon', 'uncordoned')} node {node}")


@dataclass(slots=True)
class _Drain:
    """What one drain has seen so far, for its waits, summary and output."""

    node: str
    pending: dict[Key, str] = field(default_factory=dict)
    """Pods still to evict: (namespace, name) -> uid."""
    terminating: dict[Key, str] = field(default_factory=dict)
    """Pods whose eviction the API accepted and that still exist: (namespace, name) -> uid."""
    blocked: dict[Key, str] = field(default_factory=dict)
    """The API's last refusal per pod (429: a PodDisruptionBudget)."""
    evicted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


async def drain(kube: Kube, params: Params, request: ActionRequest) -> ActionResult:
    """Cordon, then evict every pod but DaemonSet and mirror pods, and wait until they are gone.

    Evictions refused with 429 (a PodDisruptionBudget) are tried again every poll interval
    until `drain_timeout`; then the action fails and the node stays cordoned. Under dry run
    every request is sent once with dryRun=All and nothing is waited for.
    """
    node = params.node()
    deadline, wait = deadline_for(params, "drain_timeout")
    grace = params.optional_int("grace_period_seconds")
    state = _Drain(node)
    await _set_unschedulable(kube, node, True, request)
    await _list_pods(kube, state)
    await _evict_pending(kube, state, grace, request)
    if request.dry_run:
        return _result(state, request)
    # Short sleeps between short requests: the core's cancellation lands between them.
    while (state.pending or state.terminating) and time.monotonic() < deadline:
        await asyncio.sleep(kube.poll_interval)
        await _evict_pending(kube, state, grace, request)
        await _forget_gone(kube, state)
    if state.pending or state.terminating:
        raise _timed_out(state, wait.total_seconds())
    return _result(state, request)


async def _list_pods(kube: Kube, state: _Drain) -> None:
    pods = await kube.call(
        f"pods on node {state.node}",
        kube.core.list_pod_for_all_namespaces,
        field_selector=f"spec.nodeName={state.node}",
    )
    for pod in pods.items:
        meta = pod.metadata
        shown = f"{meta.namespace}/{meta.name}"
        reason = _skip_reason(meta)
        if reason:
            state.skipped.append(shown)
            state.lines.append(f"skipped pod {shown}: {reason}")
        else:
            state.pending[(meta.namespace, meta.name)] = meta.uid


def _skip_reason(meta: Any) -> str | None:
    """Why `kubectl drain --ignore-daemonsets` leaves this pod alone, or None."""
    if MIRROR_ANNOTATION in (meta.annotations or {}):
        return "mirror pod (a static pod of the kubelet)"
    for owner in meta.owner_references or []:
        if owner.controller and owner.kind == "DaemonSet":
            return f"managed by DaemonSet {owner.name}"
    return None


async def _evict_pending(
    kube: Kube, state: _Drain, grace: int | None, request: ActionRequest
) -> None:
    for key, uid in list(state.pending.items()):
        shown = f"pod {key[0]}/{key[1]}"
        try:
            await _evict(kube, key, grace, request)
        except ApiFailure as failure:
            if failure.status == 429:  # a PodDisruptionBudget says not now: next round
                state.blocked[key] = failure.summary
                continue
            if failure.status != 404:
                raise
            state.lines.append(f"{shown} already gone")
        else:
            state.lines.append(f"{verb(request, 'evict', 'evicted')} {shown}")
            state.evicted.append(f"{key[0]}/{key[1]}")
            state.terminating[key] = uid
        del state.pending[key]
        state.blocked.pop(key, None)


async def _evict(kube: Kube, key: Key, grace: int | None, request: ActionRequest) -> None:
    """POST a policy/v1 Eviction, which the API refuses with 429 while a PDB forbids it."""
    namespace, name = key
    body: dict[str, Any] = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
    }
    if grace is not None:
        body["deleteOptions"] = {"gracePeriodSeconds": grace}
    await kube.call(
        f"pod {namespace}/{name}",
        kube.core.create_namespaced_pod_eviction,
        name,
        namespace,
        body,
        dry_run=dry_run_param(request),
    )


async def _forget_gone(kube: Kube, state: _Drain) -> None:
    """Stop waiting for evicted pods that are gone (404, or a new pod with the same name)."""
    for (namespace, name), uid in list(state.terminating.items()):
        try:
            pod = await kube.call(
                f"pod {namespace}/{name}", kube.core.read_namespaced_pod, name, namespace
            )
        except ApiFailure as failure:
            if failure.status != 404:
                raise
            pod = None
        if pod is None or pod.metadata.uid != uid:
            del state.terminating[(namespace, name)]


def _result(state: _Drain, request: ActionRequest) -> ActionResult:
    summary = f"{verb(request, 'drain', 'drained')} node {state.node}: "
    summary += f"{'would evict' if request.dry_run else 'evicted'} {len(state.evicted)} pods"
    if state.skipped:
        summary += f", skipped {len(state.skipped)} DaemonSet/mirror pods"
    if state.blocked:  # only under dry run: a real drain waits or fails
        summary += f", {len(state.blocked)} refused by a PodDisruptionBudget now"
        state.lines.extend(state.blocked.values())
    return ActionResult(
        summary=summary,
        output="\n".join(state.lines),
        data={"node": state.node, "evicted": state.evicted, "skipped": state.skipped},
    )


def _timed_out(state: _Drain, seconds: float) -> ActionFailed:
    left = [f"{ns}/{name}" for ns, name in [*state.pending, *state.terminating]]
    shown = ", ".join(left[:_SHOWN])
    more = f" and {len(left) - _SHOWN} more" if len(left) > _SHOWN else ""
    summary = (
        f"drain of node {state.node} timed out after {seconds:g}s (the node stays cordoned): "
        f"{len(left)} pods not gone: {shown}{more}"
    )
    if state.blocked:
        summary += f"; last refusal: {next(iter(state.blocked.values()))}"
    lines = [*state.lines, *state.blocked.values()]
    return ActionFailed(summary, retryable=False, output="\n".join(lines))
