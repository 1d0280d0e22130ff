"""Self-healing end to end, with nothing simulated: a metric breaks and a playbook repairs it.

The test writes `remediator_e2e_broken{service="web"} 1` into a real node exporter's
textfile directory. A real Prometheus scrapes it, fires `E2EServiceBroken` and sends it to a
real Alertmanager, which notifies a real `remediator serve`. The rule runs a real playbook
through ansible-runner on the alert's `instance` host (127.0.0.1, connection local), then
verifies: the repairing playbook writes the metric back to 0, Prometheus resolves the alert,
Alertmanager sends `resolved`, and the incident ends auto-remediated. A playbook that runs
fine but repairs nothing leaves the alert firing, and the incident escalates when the
verification window ends. With `verify.promql`, remediator asks the real Prometheus itself
whether the fault is gone; that variant's alert keeps firing for minutes after the repair
(`keep_firing_for`), so only the PromQL check can resolve the incident within the test.

Prometheus scrapes and evaluates every second and Alertmanager groups within a second, so
each variant settles in seconds; the printed timings show where the time goes. Most of a
test's time is fixed: Prometheus discovers its target and Alertmanager only on a 5 s tick,
and the escalating variant waits out its whole verification window. So the repairing
variant runs on SQLite and PostgreSQL, the others on SQLite only.

The PromQL variant starts in another order: remediator's config must name Prometheus' URL,
and Alertmanager's must name remediator's, so Prometheus starts first, sending alerts nowhere,
and is pointed at the Alertmanager last (new config, SIGHUP). Its discovery tick then picks
the Alertmanager up as it picks up its scrape target, so this costs no time.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.e2e.conftest import (
    Alertmanager,
    AlertmanagerFactory,
    Daemon,
    Launcher,
    Service,
    parse_time,
    stop_daemon,
    wait_for,
)
from tests.e2e.prometheus import (
    NODE_EXPORTER,
    PROMETHEUS,
    Prometheus,
    Textfile,
    host_port,
    installed,
    start_node_exporter,
    start_prometheus,
)

pytestmark = pytest.mark.e2e

ALERT = "E2EServiceBroken"
METRIC = "remediator_e2e_broken"
RULE = "e2e-self-heal"
SERVICE = "web"
# The non-repairing variant waits this long for nothing; the repairing one gets more room,
# which costs no time (it resolves as soon as the alert does) and keeps a slow CI green.
SHORT_WINDOW = 10
LONG_WINDOW = 30
# Firing takes a scrape, an evaluation and Alertmanager's group_wait (about 3 s); the
# playbook a few seconds more. Waits are bounded well above that.
FIRE_TIMEOUT = 20.0
SETTLE_MARGIN = 30.0

ALERT_RULES = """\
groups:
  - name: e2e
    rules:
      - alert: E2EServiceBroken
        expr: remediator_e2e_broken == 1
        for: 0s
        labels: {severity: critical}
        annotations: {summary: "service {{ $labels.service }} is broken"}
"""
# The alert keeps firing this long after the metric is repaired (Prometheus >= 2.42), far
# longer than a test: while it does, Alertmanager never sends `resolved`.
KEEP_FIRING_FOR = "2m"
ALERT_RULES_KEEP_FIRING = ALERT_RULES + f"        keep_firing_for: {KEEP_FIRING_FOR}\n"

# verify.promql as a user writes it (the placeholder unquoted: remediator quotes the value),
# and as remediator renders it for the alert's labels.
VERIFY_PROMQL = "remediator_e2e_broken{service={{ labels.service }}} == 1"
RENDERED_PROMQL = 'remediator_e2e_broken{service="web"} == 1'
PROMQL_WITHIN = 30  # seconds; the check passes a scrape or two after the playbook
PROMQL_INTERVAL = 1

PLAYBOOKS = {
    # Repairs: the service's health metric goes back to 0.
    "repair.yml": """\
        - hosts: all
          gather_facts: false
          tasks:
            - name: Repair the service
              ansible.builtin.copy:
                dest: "{{ textfile }}"
                content: |
                  remediator_e2e_broken{service="{{ service }}"} 0
    """,
    # Runs fine, repairs nothing: it only reads the metric.
    "inspect.yml": """\
        - hosts: all
          gather_facts: false
          tasks:
            - name: Read the health metric
              ansible.builtin.slurp: {src: "{{ textfile }}"}
              register: health
            - name: Report it
              ansible.builtin.debug: {msg: "{{ health.content | b64decode }}"}
    """,
}


def rules(playbook: str, textfile: Path, verify: dict[str, Any]) -> str:
    """One rule: run `playbook` on the alert's host, then `verify` (the rule's section).

    The textfile path is a literal of the rule; the service comes from the alert's labels.
    """
    rule = {
        "name": RULE,
        "match": [f'alertname="{ALERT}"'],
        "incident": {"group_by": ["alertname", "service"], "priority": "P2"},
        "actions": [
            {
                "type": "ansible",
                "playbook": playbook,
                "extravars": {"textfile": str(textfile), "service": "{{ labels.service }}"},
                "timeout": "60s",
            }
        ],
        "verify": verify,
    }
    return yaml.safe_dump({"rules": [rule]}, sort_keys=False)


def settings(tmp_path: Path, playbooks_dir: Path) -> dict[str, Any]:
    """Service config: playbooks from `playbooks_dir`, run locally with this venv's Python.

    As in tests/integrations/ansible: connection local and ANSIBLE_PYTHON_INTERPRETER, so no
    SSH and no interpreter discovery; Ansible's own files stay in tmp_path.
    """
    home = tmp_path / "ansible-home"
    env = {
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        # On the textfile's filesystem, so copy's final rename is atomic for the scraper.
        "ANSIBLE_REMOTE_TEMP": str(home / "remote-tmp"),
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
    }
    return {
        "playbooks_dir": str(playbooks_dir),
        "remediation": {"poll_interval": "250ms"},  # the sweep that escalates runs this often
        "executors": {"ansible": {"connection": "local", "extra_env": env}},
    }


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    """The service's playbooks_dir: PLAYBOOKS, nothing else."""
    root = tmp_path / "playbooks"
    root.mkdir()
    for name, text in PLAYBOOKS.items():
        (root / name).write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def textfile(tmp_path: Path) -> Textfile:
    """The metric the test breaks and the playbook repairs; broken from the start."""
    directory = tmp_path / "textfiles"
    directory.mkdir()
    knob = Textfile(directory / "e2e.prom", METRIC, f'service="{SERVICE}"')
    knob.write(1)
    return knob


@pytest.fixture
async def node_exporter(
    tmp_path: Path, textfile: Textfile, http: aiohttp.ClientSession
) -> AsyncIterator[Daemon]:
    """The real node exporter, exposing only `textfile`'s directory; stopped last."""
    binary = installed(NODE_EXPORTER, "prometheus-node-exporter")
    daemon = await start_node_exporter(
        binary, tmp_path / "node-exporter", textfile.path.parent, http
    )
    yield daemon
    await stop_daemon(daemon)


PrometheusFactory = Callable[[Alertmanager | None, str], Awaitable[Prometheus]]


@pytest.fixture
async def launch_prometheus(
    tmp_path: Path,
    http: aiohttp.ClientSession,
    node_exporter: Daemon,
    start_alertmanager: AlertmanagerFactory,
) -> AsyncIterator[PrometheusFactory]:
    """Starts Prometheus (scraping `node_exporter`) with alert rules, sending to an
    Alertmanager (None: none yet); stops it first."""
    binary = installed(PROMETHEUS, "prometheus")
    started: list[Prometheus] = []

    async def start(alertmanager: Alertmanager | None, alert_rules: str) -> Prometheus:
        prometheus = await start_prometheus(
            binary,
            tmp_path / "prometheus",
            target=host_port(node_exporter.url),
            alertmanager=None if alertmanager is None else host_port(alertmanager.url),
            alert_rules=alert_rules,
            http=http,
        )
        started.append(prometheus)
        return prometheus

    yield start
    for prometheus in started:
        await stop_daemon(prometheus.daemon)


@dataclass
class Stack:
    """Everything between the broken metric and the incident."""

    service: Service
    alertmanager: Alertmanager
    prometheus: Prometheus
    node_exporter: Daemon
    textfile: Textfile

    async def diagnosis(self) -> str:
        """What each part saw, for failure messages."""
        parts = [
            f"Prometheus sends to: {await self.prometheus.alertmanagers()}",
            f"Prometheus alerts: {await self.prometheus.alerts()}",
            f"Alertmanager alerts: {await self.alertmanager.alerts()}",
            f"textfile: {self.textfile.path.read_text()!r}",
        ]
        for listed in await self.service.incidents():
            parts.append(f"incident: {await self.service.incident(listed['id'])}")
        return "\n".join(parts)


StackFactory = Callable[[str, int], Awaitable[Stack]]


@pytest.fixture
def start_stack(
    tmp_path: Path,
    launcher: Launcher,
    start_alertmanager: AlertmanagerFactory,
    launch_prometheus: PrometheusFactory,
    node_exporter: Daemon,
    textfile: Textfile,
    playbooks_dir: Path,
) -> StackFactory:
    """remediator running `playbook` with a `window`-second verification, then the rest,
    in delivery order."""

    async def start(playbook: str, window: int) -> Stack:
        verify = {"resolved_within": f"{window}s"}
        service = await launcher.start(
            rules(playbook, textfile.path, verify), **settings(tmp_path, playbooks_dir)
        )
        alertmanager = await start_alertmanager(service)
        prometheus = await launch_prometheus(alertmanager, ALERT_RULES)
        return Stack(service, alertmanager, prometheus, node_exporter, textfile)

    return start


PromQLStackFactory = Callable[[], Awaitable[Stack]]


@pytest.fixture
def start_promql_stack(
    tmp_path: Path,
    launcher: Launcher,
    start_alertmanager: AlertmanagerFactory,
    launch_prometheus: PrometheusFactory,
    node_exporter: Daemon,
    textfile: Textfile,
    playbooks_dir: Path,
) -> PromQLStackFactory:
    """The repairing playbook verified by VERIFY_PROMQL on this Prometheus, whose alert
    keeps firing; Prometheus first, because remediator's config names it."""

    async def start() -> Stack:
        prometheus = await launch_prometheus(None, ALERT_RULES_KEEP_FIRING)
        verify = {
            "promql": VERIFY_PROMQL,
            "within": f"{PROMQL_WITHIN}s",
            "interval": f"{PROMQL_INTERVAL}s",
        }
        service = await launcher.start(
            rules("repair.yml", textfile.path, verify),
            **settings(tmp_path, playbooks_dir),
            verifiers={"promql": {"url": prometheus.daemon.url}},
        )
        alertmanager = await start_alertmanager(service)
        await prometheus.send_alerts_to(host_port(alertmanager.url))
        return Stack(service, alertmanager, prometheus, node_exporter, textfile)

    return start


# -- helpers --------------------------------------------------------------------------------


async def settled(stack: Stack, within: float) -> dict[str, Any]:
    """The incident Prometheus' alert opened, once it is resolved or escalated."""
    service = stack.service
    try:
        (listed,) = await wait_for(
            service.incidents,
            lambda page: len(page) == 1,
            f"{ALERT} to open an incident",
            within=FIRE_TIMEOUT,
        )
        return await wait_for(
            lambda: service.incident(listed["id"]),
            lambda i: i["state"] in ("resolved", "escalated"),
            "the incident to be resolved or escalated",
            within=within,
        )
    except pytest.fail.Exception as failure:
        pytest.fail(f"{failure}\n{await stack.diagnosis()}")


def transitions(incident: dict[str, Any]) -> list[tuple[str, datetime]]:
    """(to_state, at) of each state change, in order."""
    return [
        (e["to_state"], parse_time(e["at"]))
        for e in incident["timeline"]
        if e["kind"] == "state_changed"
    ]


def only_run(incident: dict[str, Any]) -> dict[str, Any]:
    """The one action run of the one job, checked to have succeeded on 127.0.0.1."""
    (job,) = incident["remediation"]
    assert job["rule"] == RULE
    assert (job["state"], job["dry_run"]) == ("succeeded", False)
    (run,) = job["runs"]
    assert (run["type"], run["attempt"], run["outcome"]) == ("ansible", 1, "succeeded"), run
    return dict(run)


def print_timings(incident: dict[str, Any]) -> None:
    """Where the time went, from the stored timestamps (one clock: all on this machine)."""
    (alert,) = incident["alerts"]
    (job,) = incident["remediation"]
    (run,) = job["runs"]
    moments = [
        ("Prometheus: alert active", parse_time(alert["starts_at"])),
        ("remediator: incident opened", parse_time(incident["opened_at"])),
        ("playbook started", parse_time(run["started_at"])),
        ("playbook finished", parse_time(run["finished_at"])),
        *[(f"incident {state}", at) for state, at in transitions(incident)[-1:]],
    ]
    steps = [
        f"{name} +{(at - moments[i][1]).total_seconds():.2f}s"
        for i, (name, at) in enumerate(moments[1:])
    ]
    print("timings: " + " → ".join(steps) + f" ({incident['timeline'][-1]['message']})")


def alert_labels(stack: Stack) -> dict[str, str]:
    """The labels Prometheus gives the alert: the metric's, the target's and the rule's."""
    return {
        "alertname": ALERT,
        "service": SERVICE,
        "instance": host_port(stack.node_exporter.url),
        "job": "node",
        "severity": "critical",
    }


# -- tests ----------------------------------------------------------------------------------


async def test_a_repairing_playbook_resolves_the_incident(start_stack: StackFactory) -> None:
    stack = await start_stack("repair.yml", LONG_WINDOW)

    incident = await settled(stack, LONG_WINDOW + SETTLE_MARGIN)
    print_timings(incident)

    assert incident["rule"] == RULE
    assert incident["state"] == "resolved", await stack.diagnosis()
    assert incident["resolved_reason"].startswith("auto-remediated"), incident["resolved_reason"]
    states = [state for state, _ in transitions(incident)]
    # Resolved while verifying, or already while the playbook was finishing.
    assert states in (["remediating", "verifying", "resolved"], ["remediating", "resolved"])
    (alert,) = incident["alerts"]
    assert alert["labels"] == alert_labels(stack)
    assert alert["annotations"] == {"summary": f"service {SERVICE} is broken"}
    assert alert["status"] == "resolved"  # Prometheus resolved it; Alertmanager told us

    run = only_run(incident)
    assert run["params"]["playbook"] == "repair.yml"
    assert run["params"]["extravars"] == {"textfile": str(stack.textfile.path), "service": SERVICE}
    assert run["summary"] == (
        "playbook repair.yml on 127.0.0.1: ok=1 changed=1 failed=0 unreachable=0"
    )

    # The repair is real: the file, and what Prometheus scraped from the exporter.
    assert stack.textfile.path.read_text() == f'{METRIC}{{service="{SERVICE}"}} 0\n'
    scraped = await stack.prometheus.query(METRIC)
    assert list(scraped.values()) == [0.0], scraped
    assert await stack.prometheus.alerts() == []
    assert (
        await stack.alertmanager.metric(
            "alertmanager_notifications_failed_total", integration="webhook"
        )
        == 0
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # slow: one database is enough
async def test_a_playbook_that_repairs_nothing_escalates(start_stack: StackFactory) -> None:
    stack = await start_stack("inspect.yml", SHORT_WINDOW)

    incident = await settled(stack, SHORT_WINDOW + SETTLE_MARGIN)
    print_timings(incident)

    assert incident["state"] == "escalated", await stack.diagnosis()
    assert incident["resolved_reason"] is None
    changes = transitions(incident)
    assert [state for state, _ in changes] == ["remediating", "verifying", "escalated"]
    (_, verifying_at), (_, escalated_at) = changes[-2:]
    waited = (escalated_at - verifying_at).total_seconds()
    assert SHORT_WINDOW <= waited < SHORT_WINDOW + 3, waited  # the window, then one sweep
    [escalation] = [e for e in incident["timeline"] if e["to_state"] == "escalated"]
    assert escalation["message"] == (
        "not verified: 1 of 1 alert(s) still firing when the verification window ended"
    )

    run = only_run(incident)  # the playbook itself ran fine
    assert run["summary"] == (
        "playbook inspect.yml on 127.0.0.1: ok=2 changed=0 failed=0 unreachable=0"
    )
    # What it read, as the debug task prints it (JSON-quoted).
    assert f'"msg": "{METRIC}{{service=\\"{SERVICE}\\"}} 1\\n"' in run["output"]

    # Still broken everywhere: the file, Prometheus, Alertmanager, the stored alert.
    assert stack.textfile.path.read_text() == f'{METRIC}{{service="{SERVICE}"}} 1\n'
    (firing,) = await stack.prometheus.alerts()
    assert (firing["state"], firing["labels"]) == ("firing", alert_labels(stack))
    (in_am,) = await stack.alertmanager.alerts(alertname=ALERT)
    (alert,) = incident["alerts"]
    assert alert["status"] == "firing"
    assert alert["fingerprint"] == in_am["fingerprint"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the database plays no part
async def test_a_promql_check_verifies_the_repair_while_the_alert_still_fires(
    start_promql_stack: PromQLStackFactory,
) -> None:
    stack = await start_promql_stack()

    incident = await settled(stack, PROMQL_WITHIN + SETTLE_MARGIN)
    # At once: the alert has not resolved anywhere, so it cannot be what verified the repair.
    in_am = await stack.alertmanager.alerts(alertname=ALERT)
    in_prometheus = await stack.prometheus.alerts()
    print_timings(incident)

    assert incident["state"] == "resolved", await stack.diagnosis()
    assert incident["resolved_reason"] == (
        f"auto-remediated: verified by PromQL: {RENDERED_PROMQL} returned no series"
    )
    assert [state for state, _ in transitions(incident)] == [
        "remediating",
        "verifying",
        "resolved",
    ]
    (verifying,) = [e for e in incident["timeline"] if e["to_state"] == "verifying"]
    assert verifying["message"] == (
        f"remediation done; verifying within {PROMQL_WITHIN}s: PromQL {RENDERED_PROMQL} must "
        f"return no series (checked every {PROMQL_INTERVAL}s), or all alerts resolve"
    )

    (alert,) = incident["alerts"]
    assert alert["status"] == "firing"
    (am_alert,) = in_am
    assert am_alert["status"]["state"] == "active"
    assert am_alert["fingerprint"] == alert["fingerprint"]
    (prometheus_alert,) = in_prometheus
    assert (prometheus_alert["state"], prometheus_alert["labels"]) == (
        "firing",
        alert_labels(stack),
    )
    # Prometheus sees the expression clear (at its next evaluation at the latest), and only
    # keep_firing_for keeps the alert firing.
    (kept,) = await wait_for(
        stack.prometheus.alerts,
        lambda alerts: all("keepFiringSince" in a for a in alerts),
        "Prometheus to keep the alert firing after its expression cleared",
        within=5,
    )
    assert kept["state"] == "firing"

    assert only_run(incident)["params"]["playbook"] == "repair.yml"
    # The repair is real, and the query's selector matches the repaired series: it returned no
    # series because `== 1` no longer holds, not because it matched nothing.
    scraped = await stack.prometheus.query(f'{METRIC}{{service="{SERVICE}"}}')
    assert list(scraped.values()) == [0.0], scraped
