"""cordon, uncordon and drain against the fake API server."""

from __future__ import annotations

import pytest

from remediator.plugins import ActionFailed
from tests.integrations.kubernetes.conftest import Run
from tests.integrations.kubernetes.fake_apiserver import PDB_MESSAGE, FakeApiServer

DRAIN = {"action": "drain", "node": "{{ labels.node }}", "drain_timeout": "2s", "timeout": "1m"}


def seed_node(fake: FakeApiServer) -> None:
    fake.add_pod("shop", "web-1", "node-1")
    fake.add_pod("shop", "web-2", "node-1")
    fake.add_pod("monitoring", "node-exporter-x1", "node-1", owner=("DaemonSet", "node-exporter"))
    fake.add_pod("kube-system", "etcd-node-1", "node-1", owner=None, mirror=True)
    fake.add_pod("shop", "elsewhere", "node-2")


async def test_cordon_and_uncordon(run: Run, fake: FakeApiServer) -> None:
    node = fake.store["nodes"][("", "node-1")]

    assert (await run({"action": "cordon", "node": "{{ labels.node }}"})).summary == (
        "cordoned node node-1"
    )
    assert fake.store["nodes"][("", "node-1")]["spec"]["unschedulable"] is True

    assert (await run({"action": "uncordon", "node": "node-1"})).summary == "uncordoned node node-1"
    assert "unschedulable" not in fake.store["nodes"][("", "node-1")]["spec"]

    cordon, uncordon = fake.sent("PATCH")
    assert cordon.path == uncordon.path == "/api/v1/nodes/node-1"
    assert cordon.content_type == "application/strategic-merge-patch+json"
    assert cordon.body == {"spec": {"unschedulable": True}}
    assert uncordon.body == {"spec": {"unschedulable": None}}  # what kubectl sends
    assert node["spec"] == {"podCIDR": "10.244.1.0/24"}


async def test_cordon_dry_run(run: Run, fake: FakeApiServer) -> None:
    result = await run({"action": "cordon", "node": "node-1"}, dry_run=True)

    assert result.summary == "dry run: would cordon node node-1"
    assert fake.sent("PATCH")[0].query == {"dryRun": "All"}
    assert "unschedulable" not in fake.store["nodes"][("", "node-1")]["spec"]


async def test_drain_evicts_all_but_daemonset_and_mirror_pods(
    run: Run, fake: FakeApiServer
) -> None:
    seed_node(fake)

    result = await run(DRAIN)

    assert result.summary == "drained node node-1: evicted 3 pods, skipped 2 DaemonSet/mirror pods"
    assert fake.store["nodes"][("", "node-1")]["spec"]["unschedulable"] is True
    [listing] = fake.sent("GET", "/api/v1/pods")
    assert listing.query == {"fieldSelector": "spec.nodeName=node-1"}
    evictions = fake.sent("POST", "/eviction")
    assert {r.path for r in evictions} == {
        "/api/v1/namespaces/shop/pods/checkout-7d9f-abcde/eviction",
        "/api/v1/namespaces/shop/pods/web-1/eviction",
        "/api/v1/namespaces/shop/pods/web-2/eviction",
    }
    assert evictions[0].body == {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "checkout-7d9f-abcde", "namespace": "shop"},
    }
    left = {key for key, pod in fake.store["pods"].items() if pod["spec"]["nodeName"] == "node-1"}
    assert left == {("monitoring", "node-exporter-x1"), ("kube-system", "etcd-node-1")}
    assert "skipped pod monitoring/node-exporter-x1: managed by DaemonSet" in result.output


async def test_drain_retries_evictions_a_pdb_refuses(run: Run, fake: FakeApiServer) -> None:
    seed_node(fake)
    fake.pdb_refusals[("shop", "web-1")] = 2

    result = await run({**DRAIN, "grace_period_seconds": 10})

    assert result.summary.startswith("drained node node-1: evicted 3 pods")
    web1 = fake.sent("POST", "/pods/web-1/eviction")
    assert len(web1) == 3
    assert web1[-1].body["deleteOptions"] == {"gracePeriodSeconds": 10}
    assert ("shop", "web-1") not in fake.store["pods"]


async def test_drain_times_out_while_a_pdb_refuses(run: Run, fake: FakeApiServer) -> None:
    seed_node(fake)
    fake.pdb_refusals[("shop", "web-2")] = -1

    with pytest.raises(ActionFailed) as caught:
        await run({**DRAIN, "drain_timeout": "300ms"})

    failure = caught.value
    assert not failure.retryable
    assert failure.summary.startswith("drain of node node-1 timed out after 0.3s")
    assert "1 pods not gone: shop/web-2" in failure.summary
    assert PDB_MESSAGE in failure.summary
    assert fake.store["nodes"][("", "node-1")]["spec"]["unschedulable"] is True
    assert len(fake.sent("POST", "/pods/web-2/eviction")) > 2


async def test_drain_dry_run_sends_everything_once_and_changes_nothing(
    run: Run, fake: FakeApiServer
) -> None:
    seed_node(fake)
    fake.pdb_refusals[("shop", "web-2")] = -1
    pods_before = dict(fake.store["pods"])

    result = await run(DRAIN, dry_run=True)

    assert result.summary == (
        "dry run: would drain node node-1: would evict 2 pods, skipped 2 DaemonSet/mirror pods, "
        "1 refused by a PodDisruptionBudget now"
    )
    mutating = fake.sent("PATCH") + fake.sent("POST")
    assert len(mutating) == 4
    assert all(r.query == {"dryRun": "All"} for r in mutating)
    assert fake.store["pods"] == pods_before
    assert "unschedulable" not in fake.store["nodes"][("", "node-1")]["spec"]


async def test_drain_of_a_missing_node(run: Run) -> None:
    with pytest.raises(ActionFailed) as caught:
        await run({**DRAIN, "node": "node-9"})

    assert caught.value.summary == "node node-9 not found"
    assert not caught.value.retryable
