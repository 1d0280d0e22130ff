"""A rule whose actions hang cannot hold up every other incident: each replica runs at most
`remediation.max_running_per_rule` jobs of one rule at once (default: half its workers).

With two workers, three alerts of a rule whose target never answers (until the test ends)
and then one alert of another rule: the other rule's action runs at once, while one hanging
job runs and two wait. Without the cap both workers would hang and the other rule would wait
for the hanging actions' timeout.
"""

from __future__ import annotations

import asyncio
import copy
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.api.test_remediation import WEBHOOK, start
from tests.conftest import load_fixture

Targets = tuple[str, list[str], defaultdict[str, asyncio.Event]]


@pytest.fixture
async def targets() -> AsyncIterator[Targets]:
    """/hang answers only when the test ends; /fix at once. Both record who called, and
    `arrived["hang"]` / `arrived["fix:<instance>"]` are set when such a call comes."""
    calls: list[str] = []
    arrived: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        calls.append("hang:" + (await request.json())["instance"])
        arrived["hang"].set()
        await release.wait()
        return web.json_response({}, status=202)

    async def fix(request: web.Request) -> web.Response:
        call = "fix:" + (await request.json())["instance"]
        calls.append(call)
        arrived[call].set()
        return web.json_response({}, status=202)

    app = web.Application()
    app.router.add_post("/hang", hang)
    app.router.add_post("/fix", fix)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}", calls, arrived
    release.set()
    await server.close()


def rules(base: str) -> str:
    action = (
        '{{type: http, url: "{url}", json: {{instance: "{{{{ labels.instance }}}}"}}, timeout: 5m}}'
    )
    return f"""
rules:
  - name: stuck
    match: ['alertname="DiskWillFillIn4Hours"', 'service="stuck"']
    incident: {{group_by: [instance]}}
    actions: [{action.format(url=base + "/hang")}]
  - name: healthy
    match: ['alertname="DiskWillFillIn4Hours"']
    actions: [{action.format(url=base + "/fix")}]
"""


def alert(instance: str, service: str) -> dict[str, Any]:
    body = copy.deepcopy(load_fixture("diskfill-firing.json"))
    body["alerts"][0]["labels"] |= {"instance": instance, "service": service}
    body["alerts"][0]["fingerprint"] = f"{abs(hash((instance, service))):016x}"[:16]
    return body


async def test_a_hanging_rule_leaves_workers_for_other_incidents(
    aiohttp_client: Any,
    db_url: str,
    tmp_path: Path,
    targets: Targets,
) -> None:
    base, calls, arrived = targets
    client = await start(
        aiohttp_client, db_url, tmp_path, rules(base), remediation={"workers": 2,
        "poll_interval": "100ms"},
    )  # fmt: skip
    for n in range(3):
        assert (await client.post(WEBHOOK, json=alert(f"db-{n}:9100", "stuck"))).status == 200
    await asyncio.wait_for(arrived["hang"].wait(), 10)
    assert (await client.post(WEBHOOK, json=alert("web-1:9100", "web"))).status == 200
    await asyncio.wait_for(arrived["fix:web-1:9100"].wait(), 10)
    await asyncio.sleep(0.5)  # long enough for a second hanging job to start, were it allowed
    assert [call for call in calls if call.startswith("hang:")] == [calls[0]]
    listing = await (await client.get("/api/v1/incidents")).json()
    states = sorted(i["state"] for i in listing["incidents"])
    assert states.count("remediating") == 1  # the hanging one; two more wait their turn
