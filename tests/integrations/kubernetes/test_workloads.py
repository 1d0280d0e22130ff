"""rollout_restart, scale, delete_pod and patch against the fake API server."""

from __future__ import annotations

import re

import pytest

from remediator.plugins import ActionFailed
from tests.integrations.kubernetes.conftest import Run
from tests.integrations.kubernetes.fake_apiserver import FakeApiServer

RESTART = {
    "action": "rollout_restart",
    "kind": "deployment",
    "namespace": "{{ labels.namespace }}",
    "name": "{{ labels.deployment }}",
}
RFC3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


async def test_rollout_restart_patches_the_pod_template_like_kubectl(
    run: Run, fake: FakeApiServer
) -> None:
    result = await run(RESTART)

    assert re.fullmatch(
        rf"restarted deployment shop/checkout \(restartedAt ({RFC3339})\)", result.summary
    )
    [patch] = fake.sent("PATCH")
    assert patch.path == "/apis/apps/v1/namespaces/shop/deployments/checkout"
    assert patch.content_type == "application/strategic-merge-patch+json"
    assert "dryRun" not in patch.query
    stamp = patch.body["spec"]["template"]["metadata"]["annotations"][
        "kubectl.kubernetes.io/restartedAt"
    ]
    assert stamp == result.data["restartedAt"]
    deployment = fake.store["deployments"][("shop", "checkout")]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"kubectl.kubernetes.io/restartedAt": stamp}
    assert deployment["metadata"]["generation"] == 2


@pytest.mark.parametrize(
    ("kind", "namespace", "name", "path"),
    [
        ("statefulset", "shop", "db", "/apis/apps/v1/namespaces/shop/statefulsets/db"),
        (
            "daemonset",
            "monitoring",
            "node-exporter",
            "/apis/apps/v1/namespaces/monitoring/daemonsets/node-exporter",
        ),
    ],
)
async def test_rollout_restart_other_kinds(
    run: Run, fake: FakeApiServer, kind: str, namespace: str, name: str, path: str
) -> None:
    action = {"action": "rollout_restart", "kind": kind, "namespace": namespace, "name": name}
    result = await run(action)

    assert result.summary.startswith(f"restarted {kind} {namespace}/{name} (restartedAt ")
    assert [r.path for r in fake.sent("PATCH")] == [path]


async def test_rollout_restart_dry_run_changes_nothing(run: Run, fake: FakeApiServer) -> None:
    before = fake.store["deployments"][("shop", "checkout")]

    result = await run(RESTART, dry_run=True)

    assert result.summary.startswith("dry run: would restart deployment shop/checkout")
    assert [r.query for r in fake.sent("PATCH")] == [{"dryRun": "All"}]
    assert fake.store["deployments"][("shop", "checkout")] is before


async def test_scale_uses_the_scale_subresource(run: Run, fake: FakeApiServer) -> None:
    action = {"action": "scale", "kind": "deployment", "namespace": "shop", "name": "checkout"}

    result = await run({**action, "replicas": 5})

    assert result.summary == "scaled deployment shop/checkout from 2 to 5 replicas"
    [patch] = fake.sent("PATCH")
    assert patch.path == "/apis/apps/v1/namespaces/shop/deployments/checkout/scale"
    assert patch.content_type == "application/merge-patch+json"
    assert patch.body == {"spec": {"replicas": 5}}
    assert fake.store["deployments"][("shop", "checkout")]["spec"]["replicas"] == 5


async def test_scale_statefulset_dry_run(run: Run, fake: FakeApiServer) -> None:
    action = {"action": "scale", "kind": "statefulset", "namespace": "shop", "name": "db"}

    result = await run({**action, "replicas": 0}, dry_run=True)

    assert result.summary == "dry run: would scale statefulset shop/db from 3 to 0 replicas"
    assert fake.sent("PATCH")[0].query == {"dryRun": "All"}
    assert fake.store["statefulsets"][("shop", "db")]["spec"]["replicas"] == 3


async def test_delete_pod_with_grace_period(run: Run, fake: FakeApiServer) -> None:
    action = {
        "action": "delete_pod",
        "namespace": "{{ labels.namespace }}",
        "name": "{{ labels.pod }}",
        "grace_period_seconds": 0,
    }
    result = await run(action)

    assert result.summary == "deleted pod shop/checkout-7d9f-abcde (grace period 0s)"
    [delete] = fake.sent("DELETE")
    assert delete.path == "/api/v1/namespaces/shop/pods/checkout-7d9f-abcde"
    assert delete.query == {"gracePeriodSeconds": "0"}
    assert ("shop", "checkout-7d9f-abcde") not in fake.store["pods"]


async def test_delete_pod_dry_run_keeps_the_pod(run: Run, fake: FakeApiServer) -> None:
    action = {"action": "delete_pod", "namespace": "shop", "name": "checkout-7d9f-abcde"}

    result = await run(action, dry_run=True)

    assert result.summary == "dry run: would delete pod shop/checkout-7d9f-abcde"
    assert fake.sent("DELETE")[0].query == {"dryRun": "All"}
    assert ("shop", "checkout-7d9f-abcde") in fake.store["pods"]


PATCH_IMAGE = {
    "action": "patch",
    "kind": "deployment",
    "namespace": "shop",
    "name": "checkout",
    "patch": {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}},
}


async def test_patch_is_a_strategic_merge(run: Run, fake: FakeApiServer) -> None:
    result = await run(PATCH_IMAGE)

    assert result.summary == "patched deployment shop/checkout (generation 2)"
    [patch] = fake.sent("PATCH")
    assert patch.content_type == "application/strategic-merge-patch+json"
    assert patch.body == PATCH_IMAGE["patch"]
    spec = fake.store["deployments"][("shop", "checkout")]["spec"]["template"]["spec"]
    assert spec["containers"] == [{"name": "app", "image": "app:2"}]  # merged by name


async def test_patch_dry_run(run: Run, fake: FakeApiServer) -> None:
    result = await run(PATCH_IMAGE, dry_run=True)

    assert result.summary == "dry run: would patch deployment shop/checkout (generation 2)"
    spec = fake.store["deployments"][("shop", "checkout")]["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == "registry.example/app:1.0"


async def test_patch_rejected_as_invalid_is_not_retried(run: Run) -> None:
    action = {**PATCH_IMAGE, "patch": {"spec": {"selector": {"matchLabels": {"app": "other"}}}}}

    with pytest.raises(ActionFailed) as caught:
        await run(action)

    assert not caught.value.retryable
    assert caught.value.summary.startswith("deployment shop/checkout: invalid: ")
    assert "spec.selector: Invalid value" in caught.value.summary
    assert "field is immutable" in caught.value.summary


async def test_patch_conflict_is_retryable(run: Run) -> None:
    action = {**PATCH_IMAGE, "patch": {"metadata": {"resourceVersion": "1"}, "spec": {}}}

    with pytest.raises(ActionFailed) as caught:
        await run(action)

    assert caught.value.retryable
    assert "conflict: Operation cannot be fulfilled on deployments" in caught.value.summary
