"""Real processes for the end-to-end tests: `remediator serve` and Prometheus' Alertmanager.

Both run as subprocesses in the test's tmp_path, bound to 127.0.0.1 on free ports. Every wait
is bounded by a deadline; a process that does not become ready, or does not stop, fails the
test with its log. Logs are printed at teardown, so pytest shows them for failing tests.

`service` is a remediator on the test's `db_url` (SQLite, then PostgreSQL). Teardown sends it
SIGTERM and asserts it exits 0 within STOP_TIMEOUT. `launcher` starts more (a restart on the
same database, other rules). `alertmanager` is a real Alertmanager whose only receiver is
`service`'s webhook; `start_alertmanager` starts one for any service the launcher started.
`start_daemon` and `stop_daemon` run any server of the Prometheus ecosystem the same way
(tests/e2e/prometheus.py uses them for Prometheus and the node exporter).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import missing

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
WEBHOOK = "/api/v1/webhooks/alertmanager"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
WAIT_TIMEOUT = 30.0
POLL_INTERVAL = 0.05
ALERTMANAGER = "prometheus-alertmanager"

# The rules every e2e service starts with. crashloop's own priority (P2) beats the alerts'
# severity=warning (which would map to P3); alerts nothing matches get severity-mapped.
RULES = """\
rules:
  - name: crashloop
    match: ['alertname="KubePodCrashLooping"']
    incident: {group_by: [alertname, namespace, service], priority: P2}
    runbook: "kubectl -n {{ labels.namespace }} describe pod"
    actions:
      - {type: log, message: "crashloop {{ labels.pod }}"}
  - name: disk
    match: ['alertname="DiskWillFillIn4Hours"']
    incident: {priority: P1}
"""

ALERTMANAGER_CONFIG = """\
route:
  receiver: remediator
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: remediator
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


# -- small helpers ------------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on right now (the caller retries if it is taken meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def child_env() -> dict[str, str]:
    """The test's environment without REMEDIATOR_* settings, which would override config."""
    return {k: v for k, v in os.environ.items() if not k.startswith("REMEDIATOR_")}


def remediator_command(*args: str) -> list[str]:
    """The installed `remediator` script next to this interpreter, as users run it."""
    script = Path(sys.executable).parent / "remediator"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script), *args]
    return [sys.executable, "-m", "remediator.cli", *args]


def am_time(moment: datetime) -> str:
    """A timestamp as Alertmanager's API takes it (RFC 3339, UTC, milliseconds)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_ms() -> datetime:
    """Now, cut to milliseconds so it survives a round trip through am_time()."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def sample_value(metrics_text: str, name: str, **labels: str) -> float | None:
    """One sample of a Prometheus text exposition, or None when it is not there."""
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def wait_for(
    fetch: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    what: str,
    within: float = WAIT_TIMEOUT,
) -> T:
    """Poll `fetch` until `accept` holds for its result; fail after `within` s with the last one."""
    deadline = time.monotonic() + within
    while True:
        value = await fetch()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:.0f}s waiting for {what}; last seen: {value!r}")
        await asyncio.sleep(POLL_INTERVAL)


async def spawn(command: list[str], log: Path, cwd: Path) -> asyncio.subprocess.Process:
    """Start a process whose stdout and stderr both go to `log` (a file never blocks it)."""
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            *command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            cwd=cwd,
            env=child_env(),
        )


async def wait_exit(process: asyncio.subprocess.Process, within: float) -> int | None:
    """The exit code, or None if it was still running after `within` s (it is then killed)."""
    try:
        return await asyncio.wait_for(process.wait(), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        return None


def log_tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} was not written)"
    return "\n".join(text.splitlines()[-lines:])


class _PortTakenError(Exception):
    """The free port was taken before the child could bind it; start again on another."""


# -- remediator ---------------------------------------------------------------------------


@dataclass
class Service:
    """One `remediator serve` process and the files it was started with."""

    url: str
    port: int
    process: asyncio.subprocess.Process
    workdir: Path
    config_path: Path
    rules_path: Path
    database_url: str
    log_path: Path
    http: aiohttp.ClientSession
    sigterm_sent: bool = False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def send_signal(self, sig: signal.Signals) -> None:
        assert self.process.returncode is None, f"remediator already exited:\n{self.log()}"
        self.process.send_signal(sig)
        self.sigterm_sent = self.sigterm_sent or sig == signal.SIGTERM

    async def get_json(self, path: str, **params: str) -> Any:
        async with self.http.get(self.url + path, params=params) as response:
            body = await response.text()
            assert response.status == 200, f"GET {path}: {response.status} {body}"
            return await response.json()

    async def post_json(self, path: str, body: Any) -> tuple[int, Any]:
        async with self.http.post(self.url + path, json=body) as response:
            return response.status, await response.json()

    async def incidents(self, **params: str) -> list[dict[str, Any]]:
        page = await self.get_json("/api/v1/incidents", **params)
        incidents: list[dict[str, Any]] = page["incidents"]
        return incidents

    async def incident(self, incident_id: int) -> dict[str, Any]:
        detail: dict[str, Any] = await self.get_json(f"/api/v1/incidents/{incident_id}")
        return detail

    async def metrics_text(self) -> str:
        async with self.http.get(self.url + "/metrics") as response:
            assert response.status == 200
            return await response.text()

    async def metric(self, name: str, **labels: str) -> float:
        """A sample's value; an absent sample (a counter never incremented) is 0."""
        return sample_value(await self.metrics_text(), name, **labels) or 0.0

    async def wait_ready(self, within: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + within
        while True:
            if self.process.returncode is not None:
                log = self.log()
                if "address already in use" in log.lower():
                    raise _PortTakenError
                code = self.process.returncode
                pytest.fail(f"remediator exited with {code} before it was ready:\n{log}")
            try:
                async with self.http.get(self.url + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                self.process.kill()
                await self.process.wait()
                pytest.fail(f"remediator not ready within {within:.0f}s:\n{self.log()}")
            await asyncio.sleep(POLL_INTERVAL)

    async def wait_exit(self, within: float = STOP_TIMEOUT) -> int:
        """Wait for the process to end by itself; fail (after killing it) if it does not."""
        code = await wait_exit(self.process, within)
        if code is None:
            pytest.fail(f"remediator did not exit within {within:.0f}s:\n{self.log()}")
        return code

    async def stop(self) -> None:
        """SIGTERM, then assert a clean exit: code 0 within STOP_TIMEOUT, no traceback."""
        if self.process.returncode is None and not self.sigterm_sent:
            self.send_signal(signal.SIGTERM)  # once: a second one would cut a graceful stop
        code = await self.wait_exit()
        log = self.log()
        assert code == 0, f"remediator exited with {code} after SIGTERM:\n{log}"
        assert "Traceback" not in log, f"remediator logged a traceback:\n{log}"


class Launcher:
    """Starts remediator services on one database; stops and checks all of them at the end."""

    def __init__(self, tmp_path: Path, database_url: str, http: aiohttp.ClientSession) -> None:
        self._tmp_path = tmp_path
        self.database_url = database_url
        self._http = http
        self.started: list[Service] = []
        self._launched = 0  # names directories; `started` may shrink (a killed service)

    async def start(self, rules: str = RULES, **settings: Any) -> Service:
        """A new service (own directory, config and rules) on this database, ready."""
        self._launched += 1
        workdir = self._tmp_path / f"remediator-{self._launched}"
        workdir.mkdir()
        rules_path = workdir / "rules.yml"
        rules_path.write_text(rules)
        config_path = workdir / "config.yml"
        for _attempt in range(3):
            port = free_port()
            config = {
                "listen": f"{LOOPBACK}:{port}",
                "database_url": self.database_url,
                "rules": ["rules.yml"],
                "log_level": "info",
                **settings,
            }
            config_path.write_text(yaml.safe_dump(config, sort_keys=False))
            log_path = workdir / "remediator.log"
            command = remediator_command("serve", "--config", str(config_path))
            process = await spawn(command, log_path, workdir)
            service = Service(
                url=f"http://{LOOPBACK}:{port}",
                port=port,
                process=process,
                workdir=workdir,
                config_path=config_path,
                rules_path=rules_path,
                database_url=self.database_url,
                log_path=log_path,
                http=self._http,
            )
            ready = False
            try:
                await service.wait_ready()
                ready = True
            except _PortTakenError:
                continue
            finally:
                if not ready and process.returncode is None:
                    process.kill()
                    await process.wait()
            self.started.append(service)
            return service
        pytest.fail(f"could not find a free port for remediator:\n{log_tail(log_path)}")

    async def stop_all(self) -> None:
        """SIGTERM every service still running; each must have exited 0, without traceback."""
        failures = []
        for service in self.started:
            print(f"--- remediator log ({service.workdir.name}) ---\n{log_tail(service.log_path)}")
            try:
                await service.stop()
            except (AssertionError, pytest.fail.Exception) as exc:
                failures.append(str(exc))
        if failures:
            pytest.fail("\n\n".join(failures))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_TIMEOUT)) as session:
        yield session


@pytest.fixture
async def launcher(
    tmp_path: Path, db_url: str, http: aiohttp.ClientSession
) -> AsyncIterator[Launcher]:
    launcher = Launcher(tmp_path, db_url, http)
    yield launcher
    await launcher.stop_all()


@pytest.fixture
async def service(launcher: Launcher) -> Service:
    """A real remediator with RULES, ready; stopped with SIGTERM (and checked) at teardown."""
    return await launcher.start()


# -- Alertmanager and the other Prometheus-ecosystem servers -----------------------------


@dataclass
class Alertmanager:
    """A real Alertmanager whose one receiver is remediator's webhook."""

    url: str
    process: asyncio.subprocess.Process
    config_path: Path
    log_path: Path
    http: aiohttp.ClientSession

    async def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """What `amtool alert add` and Prometheus do: POST /api/v2/alerts."""
        async with self.http.post(self.url + "/api/v2/alerts", json=alerts) as response:
            body = await response.text()
            assert response.status == 200, f"Alertmanager refused the alerts: {body}"

    async def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """Alertmanager's view of its alerts, with the fingerprints it computed."""
        params = [("filter", f'{k}="{v}"') for k, v in filters.items()]
        async with self.http.get(self.url + "/api/v2/alerts", params=params) as response:
            assert response.status == 200
            alerts: list[dict[str, Any]] = await response.json()
            return alerts

    async def metric(self, name: str, **labels: str) -> float:
        async with self.http.get(self.url + "/metrics") as response:
            assert response.status == 200
            return sample_value(await response.text(), name, **labels) or 0.0


@dataclass
class Daemon:
    """A started server of the Prometheus ecosystem: Alertmanager, Prometheus, node exporter."""

    name: str
    url: str
    process: asyncio.subprocess.Process
    log_path: Path


async def start_daemon(
    name: str,
    command: Callable[[str], list[str]],
    log_path: Path,
    http: aiohttp.ClientSession,
    ready_path: str = "/-/ready",
) -> Daemon:
    """Run `command(listen_address)` until GET `ready_path` answers 200.

    A free port can be taken before the child binds it; then it starts again on another.
    """
    for _attempt in range(3):
        address = f"{LOOPBACK}:{free_port()}"
        process = await spawn(command(address), log_path, log_path.parent)
        daemon = Daemon(name, f"http://{address}", process, log_path)
        deadline = time.monotonic() + START_TIMEOUT
        while process.returncode is None and time.monotonic() < deadline:
            try:
                async with http.get(daemon.url + ready_path) as response:
                    if response.status == 200:
                        return daemon
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(POLL_INTERVAL)
        if process.returncode is None:
            process.kill()
            await process.wait()
            pytest.fail(f"{name} not ready within {START_TIMEOUT:.0f}s:\n{log_tail(log_path)}")
        if "address already in use" not in log_path.read_text(errors="replace"):
            pytest.fail(f"{name} exited with {process.returncode}:\n{log_tail(log_path)}")
    pytest.fail(f"could not find a free port for {name}:\n{log_tail(log_path)}")


async def stop_daemon(daemon: Daemon) -> None:
    """Print its log (pytest shows it when the test failed), SIGTERM it, wait for the exit."""
    print(f"--- {daemon.name} log ---\n{log_tail(daemon.log_path)}")
    if daemon.process.returncode is None:
        daemon.process.send_signal(signal.SIGTERM)
    code = await wait_exit(daemon.process, STOP_TIMEOUT)
    assert code is not None, f"{daemon.name} did not stop within {STOP_TIMEOUT:.0f}s"


async def _start_alertmanager(
    binary: str, workdir: Path, webhook_url: str, http: aiohttp.ClientSession
) -> Alertmanager:
    workdir.mkdir()
    config_path = workdir / "alertmanager.yml"
    config_path.write_text(ALERTMANAGER_CONFIG.format(url=webhook_url))

    def command(address: str) -> list[str]:
        return [
            binary,
            f"--config.file={config_path}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address={address}",
            "--cluster.listen-address=",  # no HA gossip: nothing listens beyond the web port
            "--log.level=debug",
        ]

    daemon = await start_daemon("Alertmanager", command, workdir / "alertmanager.log", http)
    return Alertmanager(daemon.url, daemon.process, config_path, daemon.log_path, http)


@pytest.fixture
def alertmanager_binary() -> str:
    """The installed Alertmanager; skipped locally, a failure in CI, when it is missing."""
    binary = shutil.which(ALERTMANAGER)
    if binary is None:
        missing(f"{ALERTMANAGER} not installed: apt-get install prometheus-alertmanager")
    assert binary is not None
    return binary


AlertmanagerFactory = Callable[[Service], Awaitable[Alertmanager]]


@pytest.fixture
async def start_alertmanager(
    alertmanager_binary: str, launcher: Launcher, tmp_path: Path, http: aiohttp.ClientSession
) -> AsyncIterator[AlertmanagerFactory]:
    """Starts real Alertmanagers routing every alert to a given service.

    It depends on `launcher`, so at teardown every Alertmanager stops before the services:
    none is left retrying deliveries to a stopped remediator.
    """
    started: list[Alertmanager] = []

    async def start(service: Service) -> Alertmanager:
        workdir = tmp_path / f"alertmanager-{len(started) + 1}"
        am = await _start_alertmanager(alertmanager_binary, workdir, service.url + WEBHOOK, http)
        started.append(am)
        return am

    yield start
    failures = []
    for am in started:
        try:
            await stop_daemon(Daemon("Alertmanager", am.url, am.process, am.log_path))
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)


@pytest.fixture
async def alertmanager(service: Service, start_alertmanager: AlertmanagerFactory) -> Alertmanager:
    """A real Alertmanager 0.25 routing every alert to `service`; stopped before it."""
    return await start_alertmanager(service)


# -- webhook bodies for tests that talk to remediator directly ------------------------------


def webhook_body(alerts: list[Mapping[str, Any]], receiver: str = "remediator") -> dict[str, Any]:
    """A version 4 notification as Alertmanager 0.25 sends it, around the given alerts.

    Each alert needs labels, fingerprint and startsAt; status defaults to firing.
    """
    full = [
        {
            "status": "firing",
            "annotations": {},
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            **alert,
        }
        for alert in alerts
    ]
    common = dict(full[0]["labels"])
    for alert in full[1:]:
        common = {k: v for k, v in common.items() if alert["labels"].get(k) == v}
    firing = any(alert["status"] == "firing" for alert in full)
    group = {k: common[k] for k in ("alertname", "service") if k in common}
    return {
        "receiver": receiver,
        "status": "firing" if firing else "resolved",
        "alerts": full,
        "groupLabels": group,
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "version": "4",
        "groupKey": "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group.items()) + "}",
        "truncatedAlerts": 0,
    }
