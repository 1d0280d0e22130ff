"""PostgreSQL stopped for 30 s under a running replica, then started again.

The test runs a PostgreSQL cluster of its own (Debian's `initdb` / `pg_ctl`, as the
`postgres` user, on a free loopback port), so stopping it disturbs nothing else. While it is
down, webhooks are answered 503 with Retry-After (Alertmanager retries them) and `/readyz`
reports not ready. After it is back, the bodies that got 503 are sent again, as Alertmanager
would, and every alert is stored; a new alert is remediated by the rule's real `http` action,
so no worker was left wedged by the outage.
"""

from __future__ import annotations

import asyncio
import glob
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.conftest import missing
from tests.e2e.conftest import WEBHOOK, Launcher, free_port
from tests.e2e.test_replica_kill import body, stored_fingerprints

pytestmark = pytest.mark.e2e

OUTAGE_S = 30.0


class Cluster:
    """A throwaway PostgreSQL cluster run by the `postgres` user."""

    def __init__(self, bin_dir: Path, root: Path, port: int) -> None:
        self.bin_dir, self.root, self.port = bin_dir, root, port
        self.data = root / "data"
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = ["runuser", "-u", "postgres", "--", str(self.bin_dir / tool), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, f"{tool} failed: {result.stdout}{result.stderr}"

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                  str(self.root / "server.log"), "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found or shutil.which("runuser") is None:
        missing("PostgreSQL server binaries (Debian package postgresql) and runuser")
    root = Path(tempfile.mkdtemp(prefix="remediator-pg-outage-"))
    shutil.chown(root, "postgres", "postgres")  # its own, so mode 0700 keeps it private
    pg = Cluster(Path(found[-1]).parent, root, free_port())
    pg.init()
    pg.start()
    try:
        yield pg
    finally:
        pg_ctl = str(pg.bin_dir / "pg_ctl")
        stop = ["runuser", "-u", "postgres", "--", pg_ctl, "-D", str(pg.data), "-m", "immediate"]
        subprocess.run([*stop, "stop"], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def target(aiohttp_server: AiohttpServer) -> tuple[list[str], str]:
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append((await request.json())["instance"])
        return web.json_response({"restarted": True})

    app = web.Application()
    app.router.add_post("/restart", handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    return hits, f"http://127.0.0.1:{server.port}/restart"


def rules(url: str) -> str:
    rule = {
        "name": "restart",
        "match": ['alertname="AfterOutage"'],
        "actions": [{"type": "http", "url": url, "json": {"instance": "{{ labels.instance }}"}}],
    }
    return yaml.safe_dump({"rules": [rule]}, sort_keys=False)


async def test_a_postgres_outage_is_answered_503_and_nothing_is_lost(
    tmp_path: Path, cluster: Cluster, http: Any, target: tuple[list[str], str]
) -> None:
    hits, url = target
    launcher = Launcher(tmp_path, cluster.url, http)
    try:
        service = await launcher.start(rules=rules(url), remediation={"poll_interval": "250ms"})
        before = body(0, 20)
        assert (await service.post_json(WEBHOOK, before))[0] == 200

        cluster.stop()
        refused: list[dict[str, Any]] = []
        statuses: set[int] = set()
        ready_statuses: set[int] = set()
        ends = time.monotonic() + OUTAGE_S
        batch = 1
        while time.monotonic() < ends:
            sent = body(batch * 20, 20)
            batch += 1
            status, _reply = await service.post_json(WEBHOOK, sent)
            statuses.add(status)
            if status != 200:
                refused.append(sent)
            async with http.get(service.url + "/readyz") as ready:
                ready_statuses.add(ready.status)
            await asyncio.sleep(1.0)
        assert statuses == {503}, f"webhooks during the outage were answered {statuses}"
        assert ready_statuses == {503}, f"/readyz during the outage answered {ready_statuses}"

        cluster.start()
        for sent in refused:  # Alertmanager's retries
            deadline = time.monotonic() + 30
            while (await service.post_json(WEBHOOK, sent))[0] != 200:
                assert time.monotonic() < deadline, "a retried webhook was never accepted"
                await asyncio.sleep(1.0)
        await service.wait_ready()
        expected = {a["fingerprint"] for b in [before, *refused] for a in b["alerts"]}
        assert expected <= await stored_fingerprints(cluster.url)

        after = body(10_000, 1, alertname="AfterOutage")
        assert (await service.post_json(WEBHOOK, after))[0] == 200
        deadline = time.monotonic() + 30
        while hits != ["h10000:9100"]:
            assert time.monotonic() < deadline, f"the remediation after the outage: {hits}"
            await asyncio.sleep(0.2)
    finally:
        await launcher.stop_all()
