"""run_job against the fake API server: success, failure, timeout, dry run, cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from remediator_integrations.kubernetes.executor import KubernetesExecutor

from remediator.plugins import ActionFailed
from tests.integrations.kubernetes.conftest import Run, request_for
from tests.integrations.kubernetes.fake_apiserver import FakeApiServer

JOB: dict[str, Any] = {
    "action": "run_job",
    "namespace": "{{ labels.namespace }}",
    "job_template": {
        "metadata": {"generateName": "flush-cache-", "labels": {"team": "shop"}},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "flush", "image": "redis:7", "args": ["redis-cli", "flushall"]}
                    ]
                }
            }
        },
    },
    "env": {"TARGET_POD": "{{ labels.pod }}"},
    "timeout": "1m",
    "job_timeout": "10s",
}


async def test_run_job_succeeds_with_logs(run: Run, fake: FakeApiServer) -> None:
    fake.job_script.logs = "flushing\nOK\n"

    result = await run(JOB)

    [create] = fake.sent("POST", "/apis/batch/v1/namespaces/shop/jobs")
    job = create.body
    assert job["apiVersion"] == "batch/v1"
    assert job["kind"] == "Job"
    assert job["metadata"]["generateName"] == "flush-cache-"
    assert job["metadata"]["labels"] == {
        "team": "shop",
        "app.kubernetes.io/managed-by": "remediator",
    }
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 0
    assert pod["containers"][0]["env"] == [{"name": "TARGET_POD", "value": "checkout-7d9f-abcde"}]
    name = result.data["job"]
    assert name.startswith("flush-cache-")
    assert result.summary.startswith(f"job shop/{name} succeeded in ")
    assert "flushing\nOK" in result.output
    [logs] = fake.sent("GET", "/log")
    assert logs.query == {"container": "flush", "tailLines": "500"}
    [listing] = [r for r in fake.sent("GET") if r.path == "/api/v1/namespaces/shop/pods"]
    assert listing.query == {"labelSelector": f"job-name={name}"}


async def test_run_job_failure_carries_the_logs(run: Run, fake: FakeApiServer) -> None:
    fake.job_script.outcome = "Failed"
    fake.job_script.logs = "ERR connection refused\n"

    with pytest.raises(ActionFailed) as caught:
        await run(JOB)

    failure = caught.value
    assert not failure.retryable
    assert "failed after" in failure.summary
    assert "BackoffLimitExceeded: Job has reached the specified backoff limit" in failure.summary
    assert "ERR connection refused" in failure.output


async def test_run_job_timeout_deletes_the_job(run: Run, fake: FakeApiServer) -> None:
    fake.job_script.outcome = "Hang"

    with pytest.raises(ActionFailed) as caught:
        await run({**JOB, "job_timeout": "200ms"})

    assert "did not finish within 0.2s; deleted it" in caught.value.summary
    [delete] = fake.sent("DELETE", "/apis/batch/v1/namespaces/shop/jobs/")
    assert delete.query == {"propagationPolicy": "Background"}
    assert fake.store["jobs"] == {}


async def test_run_job_dry_run_creates_nothing_and_does_not_wait(
    run: Run, fake: FakeApiServer
) -> None:
    result = await run(JOB, dry_run=True)

    assert result.summary.startswith("dry run: would create job shop/flush-cache-")
    [create] = fake.sent("POST")
    assert create.query == {"dryRun": "All"}
    assert fake.store["jobs"] == {}
    assert fake.sent("GET") == []


async def test_cancelling_a_waiting_run_job_deletes_the_job(
    executor: KubernetesExecutor, fake: FakeApiServer
) -> None:
    fake.job_script.outcome = "Hang"
    task = asyncio.create_task(executor.run(request_for(JOB)))
    await asyncio.wait_for(fake.job_polled.wait(), timeout=5)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    [delete] = fake.sent("DELETE")
    assert delete.query == {"propagationPolicy": "Background"}
    assert fake.store["jobs"] == {}
    assert not any(p["metadata"]["labels"].get("job-name") for p in fake.store["pods"].values())


async def test_an_invalid_job_is_refused_before_it_is_sent(run: Run, fake: FakeApiServer) -> None:
    container = {"name": "x", "image": "y", "env": [{"value": "no name"}]}
    template = {"spec": {"template": {"spec": {"containers": [container]}}}}

    with pytest.raises(ActionFailed) as caught:
        await run({**JOB, "job_template": template})

    assert not caught.value.retryable
    assert caught.value.summary == (
        "job in shop: invalid request: spec.template.spec.containers.0.env.0.name: Field required"
    )
    assert fake.sent("POST") == []
