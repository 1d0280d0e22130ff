"""API errors, unreachable servers, bad credentials and untrusted names become ActionFailed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from remediator_integrations.kubernetes.executor import KubernetesExecutor
from remediator_integrations.kubernetes.model import KubernetesSettings

from remediator.plugins import ActionFailed
from tests.integrations.kubernetes.conftest import (
    LABELS,
    Run,
    request_for,
    settings_for,
    write_kubeconfig,
)
from tests.integrations.kubernetes.fake_apiserver import TOKEN, FakeApiServer

RESTART = {
    "action": "rollout_restart",
    "kind": "deployment",
    "namespace": "{{ labels.namespace }}",
    "name": "{{ labels.deployment }}",
}
DEPLOYMENT = "/apis/apps/v1/namespaces/shop/deployments/checkout"


async def test_not_found_is_final(run: Run) -> None:
    with pytest.raises(ActionFailed) as caught:
        await run({**RESTART, "name": "gone"})

    assert caught.value.summary == "deployment shop/gone not found"
    assert not caught.value.retryable
    assert '"reason": "NotFound"' in caught.value.output


@pytest.mark.parametrize(
    ("code", "message", "retryable", "summary"),
    [
        (409, "the object has been modified", True, "conflict: the object has been modified"),
        (422, "spec.replicas: Invalid value", False, "invalid: spec.replicas: Invalid value"),
        (429, "storage is (re)initializing", True, "too many requests: storage is"),
        (500, "etcdserver: request timed out", True, "HTTP 500: etcdserver: request timed out"),
        (503, "the server is shutting down", True, "HTTP 503: the server is shutting down"),
        (403, 'User "x" cannot patch', False, 'forbidden (check the RBAC of rbac.yaml): User "x"'),
    ],
)
async def test_api_statuses_map_to_retryability(
    run: Run, fake: FakeApiServer, code: int, message: str, retryable: bool, summary: str
) -> None:
    fake.fail("PATCH", DEPLOYMENT, code, message)

    with pytest.raises(ActionFailed) as caught:
        await run(RESTART)

    assert caught.value.retryable is retryable
    assert caught.value.summary.startswith(f"deployment shop/checkout: {summary}")


async def test_a_retry_after_a_transient_error_succeeds(run: Run, fake: FakeApiServer) -> None:
    fake.fail("PATCH", DEPLOYMENT, 503, "the server is shutting down")
    with pytest.raises(ActionFailed):
        await run(RESTART)

    assert (await run(RESTART)).summary.startswith("restarted deployment shop/checkout")


async def test_an_unreachable_server_is_retryable(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    executor = KubernetesExecutor(settings_for(write_kubeconfig(tmp_path / "kc", port)))
    try:
        with pytest.raises(ActionFailed) as caught:
            await executor.run(request_for(RESTART))
    finally:
        await executor.close()

    assert caught.value.retryable
    assert "Kubernetes API unreachable" in caught.value.summary


async def test_the_configured_context_is_used(kubeconfig: Path) -> None:
    executor = KubernetesExecutor(settings_for(kubeconfig, context="wrong-user"))
    try:
        with pytest.raises(ActionFailed) as caught:
            await executor.run(request_for(RESTART))
    finally:
        await executor.close()

    assert caught.value.summary == (
        "deployment shop/checkout: unauthorized (check the credentials): Unauthorized"
    )
    assert not caught.value.retryable


async def test_a_missing_kubeconfig_is_reported(tmp_path: Path) -> None:
    executor = KubernetesExecutor(KubernetesSettings(kubeconfig=str(tmp_path / "nope")))
    try:
        with pytest.raises(ActionFailed) as caught:
            await executor.run(request_for(RESTART))
    finally:
        await executor.close()

    assert caught.value.summary.startswith("cannot load the Kubernetes configuration")
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("label", "value", "what"),
    [
        ("deployment", "../../../api/v1/nodes/node-1", "deployment name"),
        ("deployment", "checkout?dryRun=All", "deployment name"),
        ("deployment", "Checkout", "deployment name"),
        ("deployment", "", "deployment name"),
        ("namespace", "shop/deployments/other", "namespace"),
        ("namespace", "a" * 64, "namespace"),
        ("namespace", "kube.system", "namespace"),
    ],
)
async def test_untrusted_label_values_never_reach_the_api(
    run: Run, fake: FakeApiServer, label: str, value: str, what: str
) -> None:
    with pytest.raises(ActionFailed) as caught:
        await run(RESTART, labels={**LABELS, label: value})

    assert not caught.value.retryable
    assert caught.value.summary.startswith(f"invalid {what} {value[:80]!r}: must be a DNS-1123")
    assert fake.requests == []


async def test_node_names_are_checked(run: Run, fake: FakeApiServer) -> None:
    with pytest.raises(ActionFailed) as caught:
        await run({"action": "drain", "node": "{{ labels.node }}"}, labels={"node": "n1 x"})

    assert caught.value.summary.startswith("invalid node name 'n1 x'")
    assert fake.requests == []


async def test_the_fake_enforces_the_patch_media_type(server: TestServer) -> None:
    """A client sending plain JSON to PATCH gets the real server's 415."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with ClientSession() as session:
        response = await session.patch(server.make_url(DEPLOYMENT), json={}, headers=headers)
        body = await response.json()

    assert response.status == 415
    assert body["kind"] == "Status"
    assert body["reason"] == "UnsupportedMediaType"


@pytest.mark.parametrize(
    "body",
    [
        {"apiVersion": "policy/v1beta2", "kind": "Eviction", "metadata": {"name": "p"}},
        {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}},
        {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p"}, "x": 1},
    ],
)
async def test_the_fake_enforces_the_eviction_body(
    server: TestServer, fake: FakeApiServer, body: dict[str, object]
) -> None:
    fake.add_pod("shop", "p")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = server.make_url("/api/v1/namespaces/shop/pods/p/eviction")
    async with ClientSession() as session:
        response = await session.post(url, json=body, headers=headers)

    assert response.status == 400
    assert ("shop", "p") in fake.store["pods"]


async def test_the_fake_answers_unknown_paths_with_a_status(server: TestServer) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with ClientSession() as session:
        response = await session.get(server.make_url("/apis/apps/v1/deployments"), headers=headers)
        body = await response.json()

    assert response.status == 404
    assert body["message"] == "the server could not find the requested resource"
