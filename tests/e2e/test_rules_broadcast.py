"""A rule reload reaches every replica: three `remediator serve` processes on one PostgreSQL.

Each replica reads its own copy of the rule files (as pods read a ConfigMap). The new files
reach replica A and B at once and replica C three seconds later; only A is told to reload
(`POST /-/reload`). B follows within seconds, C as soon as its files catch up, and all three
then report the same rules version in `/api/v1/rules` and in `remediator_rules_version_info`.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e.conftest import Launcher, Service
from tests.e2e.test_guard_replicas import pg_url, replicas

__all__ = ["pg_url", "replicas"]  # fixtures

pytestmark = pytest.mark.e2e

OLD = """\
rules:
  - name: disk
    match: ['alertname="DiskWillFillIn4Hours"']
    incident: {priority: P1}
"""
NEW = (
    OLD
    + """\
  - name: crashloop
    match: ['alertname="KubePodCrashLooping"']
    incident: {priority: P2}
"""
)
FOLLOW_WITHIN = 15.0


async def _version(service: Service) -> str:
    version: str = (await service.get_json("/api/v1/rules"))["version"]
    return version


async def _versions_when(services: list[Service], done: object, within: float) -> list[str]:
    deadline = time.monotonic() + within
    while True:
        versions = [await _version(service) for service in services]
        if done == versions or time.monotonic() > deadline:
            return versions
        await asyncio.sleep(0.2)


async def test_a_reload_on_one_replica_reaches_the_others(replicas: Launcher) -> None:
    a, b, c = [await replicas.start(rules=OLD) for _ in range(3)]
    old = await _version(a)
    assert [await _version(b), await _version(c)] == [old, old]

    a.rules_path.write_text(NEW)
    b.rules_path.write_text(NEW)
    started = time.monotonic()
    status, body = await a.post_json("/-/reload", {})
    assert status == 200, body
    new = body["version"]
    assert new != old

    versions = await _versions_when([a, b], [new, new], FOLLOW_WITHIN)
    assert versions == [new, new], "replica B did not follow the reload on A"
    followed_in = time.monotonic() - started
    assert await _version(c) == old  # its files have not changed yet: it keeps its rules

    await asyncio.sleep(3)
    c.rules_path.write_text(NEW)  # the ConfigMap reaches C late; C keeps trying meanwhile
    versions = await _versions_when([a, b, c], [new, new, new], FOLLOW_WITHIN)
    assert versions == [new, new, new], "replica C did not catch up with the announced rules"
    for service in (a, b, c):
        assert await service.metric("remediator_rules_version_info", version=new) == 1
        names = [rule["name"] for rule in (await service.get_json("/api/v1/rules"))["rules"]]
        assert names == ["disk", "crashloop"]
    print(f"replica B followed the reload on A in {followed_in:.1f} s")
