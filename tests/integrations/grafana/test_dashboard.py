"""The Grafana dashboard imports cleanly and every one of its queries works on real data.

Statically: the JSON loads; it declares the `DS_PROMETHEUS` import input and the `datasource`,
`job` and `instance` variables; every panel has a unique id and a place on the grid, and every
non-row panel queries through the `datasource` variable; and every `remediator_*` metric a query
names is one `remediator.metrics.Metrics` exports (a renamed metric would blank a panel).

End to end: a real `remediator serve` takes two real Alertmanager 0.25 webhooks, a real
Prometheus scrapes its /metrics every second, and every panel query (Grafana's variables
substituted) goes through Prometheus' HTTP API. Each one must be accepted, so a typo or bad
PromQL fails, and the core panels (alerts received, webhook requests, open incidents, rules
loaded) must return series, so a wrong selector or label fails too. The variables' own
`label_values(...)` queries must find the scraped job and instance.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from remediator.metrics import Metrics
from tests.conftest import load_fixture
from tests.e2e.conftest import (
    WAIT_TIMEOUT,
    WEBHOOK,
    Daemon,
    Launcher,
    Service,
    stop_daemon,
    wait_for,
)
from tests.e2e.prometheus import PROMETHEUS, host_port, installed, start_prometheus

DASHBOARD = Path(__file__).resolve().parents[3] / "integrations" / "grafana" / "remediator.json"
DATASOURCE = "${datasource}"
JOB = "remediator"
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gauge": ("",),
    "info": ("_info",),
}
# Panels that must show data as soon as remediator has taken a webhook and been scraped twice.
CORE = ("Alerts received /s", "Webhook requests /s by code", "Open incidents", "Rules loaded")
FIXTURES = ("crashloop-two-pods-firing.json", "diskfill-firing.json")
SCRAPES = 2
SCRAPE_TIMEOUT = 20.0


def load() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows and the panels inside collapsed rows included."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL expression) for every target of every panel."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def variables(dashboard: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {var["name"]: var for var in dashboard["templating"]["list"]}


def render(expr: str, values: Mapping[str, str]) -> str:
    """Substitute Grafana's `$name` / `${name}` variables; an unknown one fails the test."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"unknown variable ${name} in {expr}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


# -- the dashboard itself -------------------------------------------------------------------


def test_the_dashboard_is_importable_with_a_prometheus_input_and_variables() -> None:
    dashboard = load()
    assert dashboard["schemaVersion"] == 39
    assert dashboard["uid"]
    assert dashboard["id"] is None  # a new dashboard on import, never another's id
    [source] = dashboard["__inputs"]
    assert (source["name"], source["type"], source["pluginId"]) == (
        "DS_PROMETHEUS",
        "datasource",
        "prometheus",
    )
    found = variables(dashboard)
    assert (found["datasource"]["type"], found["datasource"]["query"]) == (
        "datasource",
        "prometheus",
    )
    assert found["datasource"]["current"]["value"] == "${DS_PROMETHEUS}"
    for name in ("job", "instance"):
        assert found[name]["type"] == "query"
        assert found[name]["datasource"]["uid"] == DATASOURCE


def test_every_panel_has_an_id_a_place_a_datasource_and_a_query() -> None:
    every = list(panels(load()))
    ids = [panel["id"] for panel in every]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"
    for panel in every:
        grid = panel["gridPos"]
        assert {"x", "y", "w", "h"} <= grid.keys(), panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE}, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']}: no unit"
    assert {panel["title"] for panel in every} >= set(CORE)


def test_rates_use_the_rate_interval() -> None:
    for title, expr in queries(load()):
        for window in re.findall(r"\b(?:rate|increase)\([^\[]*\[([^\]]+)\]", expr):
            assert window in ("$__rate_interval", "$__range"), f"{title}: [{window}] in {expr}"


def test_every_metric_the_panels_use_is_exported() -> None:
    used = {name for _, expr in queries(load()) for name in re.findall(r"\bremediator_\w+", expr)}
    registry = CollectorRegistry()
    Metrics(registry)
    exported = {
        family.name + suffix for family in registry.collect() for suffix in SUFFIXES[family.type]
    }
    assert used, "the dashboard names no remediator metric"
    assert used <= exported, f"not exported: {sorted(used - exported)}"


def test_every_exported_metric_has_a_panel() -> None:
    """A new metric in remediator/metrics.py needs a panel here too."""
    used = {name for _, expr in queries(load()) for name in re.findall(r"\bremediator_\w+", expr)}
    registry = CollectorRegistry()
    Metrics(registry)
    families = {family.name: family.type for family in registry.collect()}
    unshown = [
        name
        for name, kind in families.items()
        if not any(name + suffix in used for suffix in SUFFIXES[kind])
    ]
    assert not unshown, f"no panel shows: {sorted(unshown)}"


# -- every query on a real Prometheus scraping a real remediator ----------------------------


async def query(http: aiohttp.ClientSession, prometheus: Daemon, expr: str) -> dict[str, Any]:
    """Prometheus' whole answer to an instant query, errors included (not raised)."""
    async with http.get(prometheus.url + "/api/v1/query", params={"query": expr}) as response:
        body: dict[str, Any] = await response.json()
        return body


async def scrapes(http: aiohttp.ClientSession, prometheus: Daemon) -> int:
    body = await query(http, prometheus, f'count_over_time(up{{job="{JOB}"}}[1m])')
    return max((int(float(r["value"][1])) for r in body["data"]["result"]), default=0)


async def label_values(
    http: aiohttp.ClientSession, prometheus: Daemon, definition: str, values: Mapping[str, str]
) -> list[str]:
    """What Grafana offers for a `label_values(selector, label)` variable."""
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", render(definition, values))
    assert match, f"not a label_values query: {definition}"
    selector, label = match.groups()
    url = f"{prometheus.url}/api/v1/label/{label}/values"
    async with http.get(url, params={"match[]": selector}) as response:
        body = await response.json()
        assert body["status"] == "success", f"{definition}: {body}"
        found: list[str] = body["data"]
        return found


async def send_alerts(service: Service) -> None:
    for name in FIXTURES:
        status, body = await service.post_json(WEBHOOK, load_fixture(name))
        assert status == 200, f"{name}: {status} {body}"


@pytest.mark.e2e
async def test_every_panel_query_runs_on_a_real_prometheus(tmp_path: Path) -> None:
    binary = installed(PROMETHEUS, "prometheus")
    timeout = aiohttp.ClientTimeout(total=WAIT_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        launcher = Launcher(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'remediator.db'}", http)
        try:
            service = await launcher.start()
            await send_alerts(service)
            target = host_port(service.url)
            prometheus = (
                await start_prometheus(
                    binary,
                    tmp_path / "prometheus",
                    target=target,
                    alertmanager=None,
                    alert_rules=None,
                    http=http,
                    job=JOB,
                )
            ).daemon
            try:
                await check_queries(http, prometheus, target)
            finally:
                await stop_daemon(prometheus)
        finally:
            await launcher.stop_all()


async def check_queries(http: aiohttp.ClientSession, prometheus: Daemon, target: str) -> None:
    await wait_for(
        lambda: scrapes(http, prometheus),
        lambda count: count >= SCRAPES,
        f"{SCRAPES} scrapes of remediator",
        within=SCRAPE_TIMEOUT,
    )
    dashboard = load()
    values = {"job": JOB, "instance": target, "__rate_interval": "1m", "__range": "5m"}
    for name, expected in (("job", JOB), ("instance", target)):
        found = await label_values(
            http, prometheus, variables(dashboard)[name]["definition"], values
        )
        assert expected in found, f"variable {name} offers {found}, not {expected}"
    failures, empty = [], set()
    for title, expr in queries(dashboard):
        body = await query(http, prometheus, render(expr, values))
        if body["status"] != "success":
            failures.append(f"{title}: {expr}\n  {body.get('errorType')}: {body.get('error')}")
        elif not body["data"]["result"]:
            empty.add(title)
    assert not failures, "Prometheus rejected:\n" + "\n".join(failures)
    assert not empty & set(CORE), f"core panels without data: {sorted(empty & set(CORE))}"
