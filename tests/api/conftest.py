"""A real remediator app on a loopback port, with a client to talk to it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from remediator.app import create_app
from remediator.config import Config
from remediator.metrics import Metrics
from tests.prometheus_api import prometheus_api

__all__ = ["prometheus_api"]  # the Prometheus API contract server, for test_verification

RULES = """
rules:
  - name: crashloop
    match: ['alertname="KubePodCrashLooping"']
    incident: {group_by: [alertname, namespace, service]}
    runbook: "kubectl -n {{ labels.namespace }} describe pod"
    actions:
      - {type: log, message: "crashloop {{ labels.pod }}"}
  - name: disk
    match: ['alertname="DiskWillFillIn4Hours"']
    incident: {priority: P1}
"""

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yml"
    path.write_text(RULES)
    return path


@pytest.fixture
def make_client(
    aiohttp_client: Any, db_url: str, rules_file: Path, tmp_path: Path
) -> ClientFactory:
    """Start the app with this test's database and rules, plus any config overrides."""

    async def make(**settings: Any) -> TestClient[Any, Any]:
        config = Config.model_validate(
            {"database_url": db_url, "rules": [str(rules_file)], "base_dir": tmp_path, **settings}
        )
        app = create_app(config, metrics=Metrics())
        client: TestClient[Any, Any] = await aiohttp_client(app)
        return client

    return make
