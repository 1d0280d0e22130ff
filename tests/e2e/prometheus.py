"""A real Prometheus scraping a real node exporter, for tests where alerts come from metrics.

The node exporter runs only its textfile collector, so the one thing it exposes is what the
test writes into its textfile directory (`Textfile`). Prometheus scrapes it and evaluates its
alert rules every second and sends alerts to an Alertmanager, as in production, just faster.
Both are started with conftest's `start_daemon` (loopback, free port, bounded readiness wait)
and stopped with `stop_daemon`.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.conftest import missing
from tests.e2e.conftest import Daemon, start_daemon

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
    """A running Prometheus and the read side of its HTTP API."""

    daemon: Daemon
    http: aiohttp.ClientSession

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


def _labels_text(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))


def prometheus_config(target: str, alertmanager: str, rule_file: Path) -> str:
    """Scrape `target` and send alerts to `alertmanager` (host:port each), every second."""
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(rule_file)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{"job_name": "node", "static_configs": [{"targets": [target]}]}],
    }
    return yaml.safe_dump(config, sort_keys=False)


async def start_prometheus(
    binary: str,
    workdir: Path,
    *,
    target: str,
    alertmanager: str,
    alert_rules: str,
    http: aiohttp.ClientSession,
) -> Prometheus:
    """A Prometheus with `alert_rules` (a rule file's text), in `workdir`, ready."""
    workdir.mkdir()
    rule_file = workdir / "alerts.yml"
    rule_file.write_text(textwrap.dedent(alert_rules))
    config_path = workdir / "prometheus.yml"
    config_path.write_text(prometheus_config(target, alertmanager, rule_file))

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
    return Prometheus(daemon, http)


def host_port(url: str) -> str:
    """`http://127.0.0.1:9093` → `127.0.0.1:9093`, as Prometheus' static targets take it."""
    return url.removeprefix("http://").rstrip("/")
