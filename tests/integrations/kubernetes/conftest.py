"""A fake API server per test, a kubeconfig pointing at it, and an executor using both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestServer
from remediator_integrations.kubernetes import KubernetesAction, KubernetesSettings
from remediator_integrations.kubernetes.executor import KubernetesExecutor

from remediator.plugins import ActionRequest, ActionResult
from remediator.rules.compiled import compile_action
from remediator.rules.templating import render_context, render_params
from tests.integrations.kubernetes.fake_apiserver import TOKEN, FakeApiServer

Run = Callable[..., Awaitable[ActionResult]]
ServerFactory = Callable[..., Awaitable[TestServer]]

LABELS = {
    "namespace": "shop",
    "deployment": "checkout",
    "pod": "checkout-7d9f-abcde",
    "node": "node-1",
}


def write_kubeconfig(path: Path, port: int) -> Path:
    """A kubeconfig whose current-context is NOT the fake one, so `context` must be honoured."""
    server = f"http://127.0.0.1:{port}"
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "fake", "cluster": {"server": server}},
            {"name": "elsewhere", "cluster": {"server": "http://127.0.0.1:9"}},
        ],
        "users": [
            {"name": "remediator", "user": {"token": TOKEN}},
            {"name": "stranger", "user": {"token": "not-the-token"}},
        ],
        "contexts": [
            {"name": "fake", "context": {"cluster": "fake", "user": "remediator"}},
            {"name": "wrong-user", "context": {"cluster": "fake", "user": "stranger"}},
            {"name": "default", "context": {"cluster": "elsewhere", "user": "stranger"}},
        ],
        "current-context": "default",
    }
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def fake() -> FakeApiServer:
    """A cluster with a deployment, statefulset, daemonset, node and pods."""
    cluster = FakeApiServer()
    cluster.add_workload("deployments", "shop", "checkout", replicas=2)
    cluster.add_workload("statefulsets", "shop", "db", replicas=3)
    cluster.add_workload("daemonsets", "monitoring", "node-exporter")
    cluster.add_node("node-1")
    cluster.add_pod("shop", "checkout-7d9f-abcde", "node-1")
    return cluster


@pytest.fixture
async def server(fake: FakeApiServer, aiohttp_server: ServerFactory) -> TestServer:
    return await aiohttp_server(fake.app(), host="127.0.0.1")


@pytest.fixture
def kubeconfig(tmp_path: Path, server: TestServer) -> Path:
    assert server.port is not None
    return write_kubeconfig(tmp_path / "kubeconfig", server.port)


def settings_for(kubeconfig: Path, context: str = "fake") -> KubernetesSettings:
    return KubernetesSettings(
        kubeconfig=str(kubeconfig),
        context=context,
        request_timeout=timedelta(seconds=5),
        poll_interval=timedelta(milliseconds=20),
    )


@pytest.fixture
async def executor(kubeconfig: Path) -> AsyncIterator[KubernetesExecutor]:
    kubernetes = KubernetesExecutor(settings_for(kubeconfig))
    yield kubernetes
    await kubernetes.close()


def request_for(
    action: dict[str, Any], labels: dict[str, str] | None = None, *, dry_run: bool = False
) -> ActionRequest:
    """What the core hands the executor: the rule's action validated, compiled, rendered."""
    compiled = compile_action(KubernetesAction.model_validate({"type": "kubernetes", **action}))
    params = render_params(compiled.params, render_context(labels or LABELS, {}, {}, {}))
    return ActionRequest(
        job_id=7,
        incident_id=3,
        rule="restart-checkout",
        action_index=0,
        attempt=1,
        params=params,
        labels=labels or LABELS,
        annotations={},
        dry_run=dry_run,
    )


@pytest.fixture
def run(executor: KubernetesExecutor) -> Run:
    """Run one action (a rule file's mapping, without `type`) against the fake cluster."""

    async def run(
        action: dict[str, Any], labels: dict[str, str] | None = None, *, dry_run: bool = False
    ) -> ActionResult:
        return await executor.run(request_for(action, labels, dry_run=dry_run))

    return run
