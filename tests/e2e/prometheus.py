"""A real Prometheus scraping a real node exporter, for tests where alerts come from metrics.

The node exporter runs only its textfile collector, so the one thing it exposes is what the
test writes into its textfile directory (`Textfile`). Prometheus scrapes it and evaluates its
alert rules every second and sends alerts to an Alertmanager, as in production, just faster.
Both are started with conftest's `start_daemon` (loopback, free port, bounded readiness wait)
and stopped with `stop_daemon`.

Prometheus can also start without an Alertmanager and be given one later
(`Prometheus.send_alerts_to`), for a stack where something Alertmanager depends on must know
Prometheus' URL first (remediator's PromQL verifier).
"""

from __future__ import annotations

import os
import shutil
import signal
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.conftest import missing
from tests.e2e.conftest import Daemon, start_daemon, wait_for

PROMETHEUS = "prometheus"
NODE_EXPORTER = "prometheus-node-exporter"
# Prometheus itself runs everything on these intervals; the tests' waits are built on them.
SCRAPE_INTERVAL = "1s"


def installed(binary: str, package: str) -> str:
    """The binary's path; skipped locally, a failure in CI, when it is missing."""
    path = shutil.which(binary)
    if path is None:
        missing(f"{binary} not installed: apt-get install {package}")
    assert path is not None
    return path


@dataclass(frozen=True)
class Textfile:
    """One metric file of the node exporter's textfile collector: the test's control knob."""

    path: Path
    metric: str
    labels: str
    """The sample's label set as exposition text, e.g. `service="web"`."""

    def write(self, value: float) -> None:
        """Replace the file atomically, so that no scrape ever reads half of it."""
        partial = self.path.with_name(self.path.name + ".partial")  # not *.prom: never read
        partial.write_text(f"{self.metric}{{{self.labels}}} {value:g}\n")
        os.replace(partial, self.path)


async def start_node_exporter(
    binary: str, workdir: Path, textfile_dir: Path, http: aiohttp.ClientSession
) -> Daemon:
    """A node exporter whose only collector reads *.prom files from `textfile_dir`."""
    workdir.mkdir()

    def command(address: str) -> list[str]:
        return [
            binary,
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={textfile_dir}",
            f"--web.listen-address={address}",
        ]

    log_path = workdir / "node-exporter.log"
    return await start_daemon("node exporter", command, log_path, http, ready_path="/metrics")


@dataclass
class Prometheus:
    """A running Prometheus, the read side of its HTTP API, and its config file."""

    daemon: Daemon
    http: aiohttp.ClientSession
    config_path: Path

    async def _api(self, path: str, **params: str) -> Any:
        async with self.http.get(self.daemon.url + path, params=params) as response:
            body = await response.json()
            assert response.status == 200, f"Prometheus {path}: {response.status} {body}"
            return body["data"]

    async def query(self, expr: str) -> dict[str, float]:
        """An instant query: each result's label set (as text) → its value."""
        data = await self._api("/api/v1/query", query=expr)
        return {_labels_text(r["metric"]): float(r["value"][1]) for r in data["result"]}

    async def alerts(self) -> list[dict[str, Any]]:
        """The alerts Prometheus has pending or firing now (resolved ones are gone)."""
        alerts: list[dict[str, Any]] = (await self._api("/api/v1/alerts"))["alerts"]
        return alerts

    async def alertmanagers(self) -> list[str]:
        """The Alertmanager URLs Prometheus sends to (discovered from its config)."""
        data = await self._api("/api/v1/alertmanagers")
        return [am["url"] for am in data["activeAlertmanagers"]]

    async def send_alerts_to(self, alertmanager: str) -> None:
        """Point a running Prometheus at `alertmanager` (host:port): new config and SIGHUP.

        Returns once Prometheus has loaded the new config; as at startup, it sends to the
        Alertmanager only from discovery's next 5 s tick on.
        """
        config = yaml.safe_load(self.config_path.read_text())
        config["alerting"] = _alerting(alertmanager)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.daemon.process.send_signal(signal.SIGHUP)
        await wait_for(
            self._alertmanager_targets,
            lambda targets: targets == [alertmanager],
            f"Prometheus to reload its config with Alertmanager {alertmanager}",
        )

    async def _alertmanager_targets(self) -> list[str]:
        """The Alertmanager targets of the config Prometheus runs (not the file on disk)."""
        loaded = yaml.safe_load((await self._api("/api/v1/status/config"))["yaml"])
        alerting = loaded.get("alerting") or {}
        return [
            target
            for am in alerting.get("alertmanagers") or []
            for static in am.get("static_configs") or []
            for target in static.get("targets") or []
        ]


def _labels_text(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))


def _alerting(alertmanager: str) -> dict[str, Any]:
    return {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}


def prometheus_config(
    target: str, alertmanager: str | None, rule_file: Path | None, job: str = "node"
) -> str:
    """Scrape `target` as `job` and send alerts to `alertmanager` (host:port each; None:
    nowhere yet), every second."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(rule_file)] if rule_file is not None else [],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}],
    }
    if alertmanager is not None:
        config["alerting"] = _alerting(alertmanager)
    return yaml.safe_dump(config, sort_keys=False)


async def start_prometheus(
    binary: str,
    workdir: Path,
    *,
    target: str,
    alertmanager: str | None,
    alert_rules: str | None,
    http: aiohttp.ClientSession,
    job: str = "node",
) -> Prometheus:
    """A Prometheus scraping `target` as `job`, with `alert_rules` (a rule file's text, or
    None), in `workdir`, ready.

    With `alertmanager` None it evaluates its rules but sends alerts nowhere until
    `send_alerts_to`.
    """
    workdir.mkdir()
    rule_file = None
    if alert_rules is not None:
        rule_file = workdir / "alerts.yml"
        rule_file.write_text(textwrap.dedent(alert_rules))
    config_path = workdir / "prometheus.yml"
    config_path.write_text(prometheus_config(target, alertmanager, rule_file, job))

    def command(address: str) -> list[str]:
        return [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address={address}",
            # Prometheus learns its targets and Alertmanagers only on discovery's 5 s tick;
            # an alert that fired before the Alertmanager was known is sent again a second
            # later instead of after the default minute.
            "--rules.alert.resend-delay=1s",
            "--log.level=debug",
        ]

    daemon = await start_daemon("Prometheus", command, workdir / "prometheus.log", http)
    return Prometheus(daemon, http, config_path)


def host_port(url: str) -> str:
    """`http://127.0.0.1:9093` → `127.0.0.1:9093`, as Prometheus' static targets take it."""
    return url.removeprefix("http://").rstrip("/")
