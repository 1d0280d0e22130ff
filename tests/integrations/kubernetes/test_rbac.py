"""rbac.yaml grants every request the actions make, and nothing they never make."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.integrations.kubernetes.conftest import Run
from tests.integrations.kubernetes.fake_apiserver import FakeApiServer, Recorded
from tests.integrations.kubernetes.test_jobs import JOB
from tests.integrations.kubernetes.test_workloads import PATCH_IMAGE, RESTART

RBAC = Path(__file__).parents[3] / "integrations" / "kubernetes" / "rbac.yaml"
VERBS = {"POST": "create", "PATCH": "patch", "DELETE": "delete"}


def permission(request: Recorded) -> tuple[str, str, str]:
    """(apiGroup, resource[/subresource], verb) that RBAC checks for a request."""
    parts = request.path.strip("/").split("/")
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    if rest[0] == "namespaces":
        rest = rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    verb = VERBS.get(request.method) or ("get" if len(rest) > 1 else "list")
    return group, resource, verb


def granted() -> set[tuple[str, str, str]]:
    documents: list[dict[str, Any]] = list(yaml.safe_load_all(RBAC.read_text()))
    [role] = [d for d in documents if d["kind"] == "ClusterRole"]
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


async def test_rbac_is_exactly_what_the_actions_use(run: Run, fake: FakeApiServer) -> None:
    fake.add_pod("shop", "web-1", "node-1")
    await run(RESTART)
    await run({**RESTART, "kind": "statefulset", "name": "db"})
    await run({**RESTART, "kind": "daemonset", "namespace": "monitoring", "name": "node-exporter"})
    await run(PATCH_IMAGE)
    await run({"action": "scale", "kind": "deployment", "namespace": "shop", "name": "checkout",
               "replicas": 3})  # fmt: skip
    await run({"action": "scale", "kind": "statefulset", "namespace": "shop", "name": "db",
               "replicas": 1})  # fmt: skip
    await run({"action": "delete_pod", "namespace": "shop", "name": "web-1"})
    await run({"action": "uncordon", "node": "node-1"})
    await run({"action": "drain", "node": "node-1", "drain_timeout": "5s"})
    await run(JOB)

    used = {permission(r) for r in fake.requests}
    used.add(("batch", "jobs", "delete"))  # run_job on timeout/cancel: test_jobs covers it

    assert used == granted()
