"""The dashboard in a real browser: headless Chromium drives a real `remediator serve`.

Each test starts its own service on a new SQLite database (the database plays no part in what
a browser sees, and the API and unit tests cover PostgreSQL), with two API tokens: an operator
(olivia) and a viewer (victor). Alerts arrive as the real Alertmanager 0.25 bodies of
shared/fixtures. Each rule's remediation runs a `log` action and then a real `http` action
against a local endpoint, so it succeeds; the disk rule needs an approval first. Every page
visited is saved as a full-page screenshot under test-artifacts/screenshots/, and a page's
script errors or CSP refusals fail its test.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from aiohttp import web
from playwright.async_api import Browser, expect
from pytest_aiohttp import AiohttpServer

from remediator.store.database import Database
from tests.conftest import load_fixture
from tests.e2e.browser import WAIT_MS, Visit, api_get, chromium
from tests.e2e.conftest import WEBHOOK, Launcher, Service, wait_for
from tests.quality_history import EXPECTED, EXPECTED_BY_RULE, FROM, TO, load_history

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]

OPERATOR, VIEWER = "operator-secret-7f3a", "viewer-secret-91c2"
AUTH = {
    "tokens": [
        {"name": "olivia", "token": OPERATOR, "role": "operator"},
        {"name": "victor", "token": VIEWER, "role": "viewer"},
    ]
}


def rules(deployer: Deployer) -> str:
    """Rules whose remediations run a `log` action, then an `http` call to the local deployer
    (a rule with only `log` actions does not remediate: it opens no job)."""

    def rule(name: str, match: str, priority: str, message: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "match": [match],
            "incident": {"priority": priority, "group_by": ["alertname", "service"]},
            "actions": [
                {"type": "log", "message": message},
                {"type": "http", "url": deployer.url, "json": {"service": "{{ labels.service }}"}},
            ],
            **extra,
        }

    return yaml.safe_dump(
        {
            "rules": [
                rule(
                    "crashloop",
                    'alertname="KubePodCrashLooping"',
                    "P2",
                    "crashloop {{ labels.pod }}",
                ),
                rule(
                    "disk",
                    'alertname="DiskWillFillIn4Hours"',
                    "P1",
                    "cleaning up {{ labels.mountpoint }} on {{ labels.instance }}",
                    guards={"approval": "required"},
                ),
            ]
        },
        sort_keys=False,
    )


@dataclass
class Deployer:
    """The HTTP endpoint the rules' `http` action calls; records every request."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        return web.json_response({"restarted": True})


CRASHLOOP = "crashloop-two-pods-firing.json"  # incident P2, service=checkout, two pods
DISKFILL = "diskfill-firing.json"  # incident P1, service=storage, waits for approval
WAIT_S = WAIT_MS / 1000
CONTROLS = "form[method=post]:not([action='/logout'])"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as started:
        yield started


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """The test's name without `test_`, for its screenshots."""
    return str(request.node.originalname).removeprefix("test_")


@pytest.fixture
async def deployer(aiohttp_server: AiohttpServer) -> Deployer:
    state = Deployer()
    app = web.Application()
    app.router.add_post("/restart", state.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    state.url = f"http://127.0.0.1:{server.port}/restart"
    return state


async def start(launcher: Launcher, deployer: Deployer, **settings: Any) -> Service:
    return await launcher.start(rules=rules(deployer), auth=AUTH, **settings)


async def alert(service: Service, fixture: str) -> None:
    status, body = await service.post_json(WEBHOOK, load_fixture(fixture))
    assert status == 200, body


async def incident(service: Service, incident_id: int) -> dict[str, Any]:
    detail: dict[str, Any] = await api_get(service, f"/api/v1/incidents/{incident_id}", OPERATOR)
    return detail


async def settled(service: Service, incident_id: int, job_state: str) -> dict[str, Any]:
    """The incident once every remediation job of it is in `job_state`."""
    return await wait_for(
        lambda: incident(service, incident_id),
        lambda i: bool(i["remediation"]) and all(j["state"] == job_state for j in i["remediation"]),
        f"incident {incident_id}'s jobs to be {job_state}",
        within=WAIT_S,
    )


async def exists(service: Service, incident_id: int) -> None:
    async def listed() -> list[int]:
        page = await api_get(service, "/api/v1/incidents", OPERATOR)
        return [i["id"] for i in page["incidents"]]

    await wait_for(listed, lambda ids: incident_id in ids, f"incident {incident_id}", WAIT_S)


async def rows(visit: Visit) -> list[str]:
    """The incident ids the list shows, top to bottom."""
    ids = await visit.page.locator("tr[data-incident]").evaluate_all(
        "rows => rows.map(r => r.dataset.incident)"
    )
    return [str(i) for i in ids]


async def filter_list(visit: Visit, step: str, priority: list[str], match: str) -> None:
    page = visit.page
    await page.select_option("select[name=priority]", priority)
    await page.fill("input[name=match]", match)
    async with page.expect_navigation():
        await page.click("form.filters button[type=submit]")
    await visit.shot(step)


async def test_list_filters_and_a_viewer_cannot_act(
    launcher: Launcher, deployer: Deployer, browser: Browser, name: str
) -> None:
    service = await start(launcher, deployer)
    await alert(service, CRASHLOOP)
    await settled(service, 1, "succeeded")
    await alert(service, DISKFILL)
    await settled(service, 2, "awaiting_approval")
    visit = await Visit.open(browser, service, name)
    page = visit.page

    await visit.sign_in(VIEWER)
    await visit.shot("1-list")
    assert await rows(visit) == ["2", "1"]  # newest first
    await expect(page.locator(".user")).to_contain_text("victor")
    await expect(page.locator("tr[data-incident='1'] .sla-ok")).to_have_count(2)  # ack, resolve
    assert await page.locator(".sla-near, .sla-breached").count() == 0

    await filter_list(visit, "2-priority-P1", ["P1"], "")
    assert await rows(visit) == ["2"]
    assert "priority=P1" in page.url
    await filter_list(visit, "3-matcher", [], 'service="checkout"')
    assert await rows(visit) == ["1"]
    await expect(page.locator("input[name=match]")).to_have_value('service="checkout"')
    await filter_list(visit, "4-both", ["P1"], 'service="checkout"')
    assert await rows(visit) == []
    await expect(page.locator("td.empty")).to_have_text("No incidents match.")

    await filter_list(visit, "5-bad-matcher", [], 'service="checkout')
    await expect(page.locator("p.error[role=alert]")).to_contain_text(
        'invalid matcher \'service="checkout\': the value has an opening " but no closing "'
    )
    assert await rows(visit) == []

    # No operator controls anywhere for a viewer: not on the list, not on an incident whose job
    # waits for approval, not on the rules; only the sign-out form posts.
    await visit.goto("/incidents", "6-list")
    assert await page.locator(CONTROLS).count() == 0
    await page.click("tr[data-incident='2'] td:first-child a")
    await page.wait_for_url(service.url + "/incidents/2")
    await visit.shot("7-incident-awaiting-approval")
    await expect(page.locator("article.job-awaiting_approval")).to_contain_text(
        "Waits for approval"
    )
    assert await page.locator(CONTROLS).count() == 0
    for label in ("Acknowledge", "Resolve", "Add note", "Approve", "Reject"):
        assert await page.get_by_role("button", name=label).count() == 0, label
    await visit.goto("/rules", "8-rules")
    assert await page.locator(CONTROLS).count() == 0

    # A viewer's POST with the viewer's own valid CSRF value is refused: the role decides.
    csrf = await visit.csrf()
    job = (await incident(service, 2))["remediation"][0]["id"]
    posts: list[tuple[str, dict[str, str | float | bool]]] = [
        ("/incidents/1/ack", {"csrf": csrf, "comment": "mine now"}),
        ("/incidents/1/resolve", {"csrf": csrf, "reason": "gone"}),
        ("/incidents/1/notes", {"csrf": csrf, "text": "hello"}),
        (f"/jobs/{job}/approve", {"csrf": csrf}),
    ]
    for path, form in posts:
        response = await page.request.post(service.url + path, form=form, max_redirects=0)
        assert response.status == 403, (path, response.status)
        assert "victor has role viewer" in await response.text()
    one, two = await incident(service, 1), await incident(service, 2)
    assert one["acknowledged_by"] is None
    assert one["state"] != "resolved"
    assert not [e for e in one["timeline"] if e["kind"] == "note"]
    assert two["remediation"][0]["state"] == "awaiting_approval"
    assert deployer.requests == [{"service": "checkout"}] * 2  # the crashloop's two pods only
    await visit.close()


async def test_list_refreshes_live_without_a_reload(
    launcher: Launcher, deployer: Deployer, browser: Browser, name: str
) -> None:
    service = await start(launcher, deployer)
    await alert(service, CRASHLOOP)
    await exists(service, 1)
    visit = await Visit.open(browser, service, name)
    page = visit.page
    await visit.sign_in(VIEWER)
    await visit.shot("1-one-incident")
    assert await rows(visit) == ["1"]
    await page.evaluate("window.__marker = 1")

    await alert(service, DISKFILL)
    await expect(page.locator("tr[data-incident='2']")).to_be_visible(timeout=WAIT_MS)
    await visit.shot("2-new-row")
    assert await rows(visit) == ["2", "1"]
    assert await page.evaluate("window.__marker") == 1, "the page was reloaded"
    await expect(page.locator("#live-note")).to_contain_text("updated")
    await visit.close()


async def test_operator_acknowledges_notes_and_resolves(
    launcher: Launcher, deployer: Deployer, browser: Browser, name: str
) -> None:
    service = await start(launcher, deployer)
    await alert(service, CRASHLOOP)
    await settled(service, 1, "succeeded")
    visit = await Visit.open(browser, service, name)
    page = visit.page
    await visit.sign_in(OPERATOR)
    await visit.goto("/incidents/1", "1-incident")
    state = page.locator("#incident-state")
    await expect(state).not_to_have_text("acknowledged")

    await page.fill("input[name=comment]", "looking at the checkout pods")
    await page.get_by_role("button", name="Acknowledge").click()
    await page.wait_for_url(service.url + "/incidents/1?done=acknowledged")
    await visit.shot("2-acknowledged")
    await expect(state).to_have_text("acknowledged")
    ack = page.locator("li.entry[data-kind=state_changed]").filter(has_text="→ acknowledged")
    await expect(ack).to_have_count(1)
    await expect(ack.locator(".actor")).to_have_text("olivia")
    await expect(ack.locator(".message")).to_have_text(
        "acknowledged by olivia: looking at the checkout pods"
    )
    await expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)

    await page.fill("input[name=text]", "the new image fails its readiness probe")
    await page.get_by_role("button", name="Add note").click()
    await page.wait_for_url(service.url + "/incidents/1?done=noted")
    await visit.shot("3-noted")
    note = page.locator("li.entry[data-kind=note]")
    await expect(note.locator(".message")).to_have_text("the new image fails its readiness probe")
    await expect(note.locator(".actor")).to_have_text("olivia")

    await page.fill("input[name=reason]", "rolled back the checkout deployment")
    await page.get_by_role("button", name="Resolve").click()
    await page.wait_for_url(service.url + "/incidents/1?done=resolved")
    await visit.shot("4-resolved")
    await expect(state).to_have_text("resolved")
    await expect(page.locator("section.controls")).to_have_count(0)
    await expect(
        page.locator("li.entry[data-kind=state_changed]").filter(has_text="→ resolved")
    ).to_contain_text("resolved by olivia: rolled back the checkout deployment")

    detail = await incident(service, 1)
    assert detail["state"] == "resolved"
    assert detail["acknowledged_by"] == "olivia"
    assert detail["resolution"] == "human"
    assert detail["resolved_reason"] == "resolved by olivia: rolled back the checkout deployment"
    notes = [(e["actor"], e["message"]) for e in detail["timeline"] if e["kind"] == "note"]
    assert notes == [("olivia", "the new image fails its readiness probe")]
    assert deployer.requests == [{"service": "checkout"}] * 2
    await visit.close()


async def test_operator_approves_a_waiting_job(
    launcher: Launcher, deployer: Deployer, browser: Browser, name: str
) -> None:
    service = await start(launcher, deployer)
    await alert(service, DISKFILL)
    job_id = (await settled(service, 1, "awaiting_approval"))["remediation"][0]["id"]
    visit = await Visit.open(browser, service, name)
    page = visit.page
    await visit.sign_in(OPERATOR)
    await visit.goto("/incidents/1", "1-awaiting-approval")
    job = page.locator(f"article.job[data-job='{job_id}']")
    await expect(job).to_have_class(re.compile(r"\bjob-awaiting_approval\b"))

    await job.get_by_label("Approval note").fill("disk is at 97 %, go ahead")
    await job.get_by_role("button", name="Approve").click()
    await page.wait_for_url(service.url + "/incidents/1?done=approved")
    await visit.shot("2-approved")
    # The job runs after the redirect; the live refresh shows how it ended, without a reload.
    await expect(job).to_have_class(re.compile(r"\bjob-succeeded\b"), timeout=WAIT_MS)
    await expect(job).to_contain_text("Approved by olivia")
    await expect(job.get_by_role("button", name="Approve")).to_have_count(0)
    await expect(job.locator("details.run-succeeded summary")).to_contain_text(
        ["action 1 · log · attempt 1 · succeeded", "action 2 · http · attempt 1 · succeeded"]
    )
    await expect(page.locator("ol.timeline")).to_contain_text("disk is at 97 %, go ahead")
    await visit.shot("3-succeeded")

    done = (await settled(service, 1, "succeeded"))["remediation"][0]
    assert done["approved_by"] == "olivia"
    assert [(run["type"], run["outcome"]) for run in done["runs"]] == [
        ("log", "succeeded"),
        ("http", "succeeded"),
    ]
    assert deployer.requests == [{"service": "storage"}]
    await visit.close()


# The fixed history, as the page formats it (render.duration: two units; percent: one decimal).
CARDS = {
    "#q-mtta": ("10m 00s", "p90 14m 00s · 3 of 4 paged"),
    "#q-mttr": ("15m 00s", "p90 1h 24m · 5 resolved"),
    "#q-auto": ("40.0 %", "2 of 5 resolved"),
    "#q-escalation": ("50.0 %", "3 of 6"),
    "#q-sla": ("16.7 %", "1 of 6"),
    "#q-recurrence": ("20.0 %", "1 re-opened of 5 resolved"),
}
PRIORITY_ROWS = [
    ["P1", "3", "1", "33.3 %", "1 / 1", "1h 00m", "1h 48m"],  # 3630 s, 6486 s
    ["P2", "2", "0", "0.0 %", "0 / 0", "16m 00s", "27m 12s"],  # 960 s, 1632 s
    ["P3", "1", "0", "0.0 %", "0 / 0", "15m 00s", "15m 00s"],
    ["P4", "0", "0", "—", "0 / 0", "—", "—"],
]
RULE_ROWS = [
    ["disk-full", "3", "2 (66.7 %)", "1 (33.3 %)", "3", "66.7 %", "0", "2m 00s"],
    ["pod-crash", "2", "0 (0.0 %)", "1 (50.0 %)", "0", "—", "1", "2h 00m"],
    ["(no rule)", "1", "0 (0.0 %)", "1 (100.0 %)", "0", "—", "0", "15m 00s"],
]


async def table(visit: Visit, selector: str) -> list[list[str]]:
    cells: list[list[str]] = await visit.page.locator(f"{selector} tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )
    return cells


async def test_quality_page_shows_the_hand_computed_history(
    launcher: Launcher, deployer: Deployer, browser: Browser, name: str
) -> None:
    # The history's incident 6 is still open and long past its resolve SLA: the service's SLA
    # sweep would record that breach (2 of 6, not the history's 1 of 6). It sweeps once at
    # start and then every poll_interval, so an hour's interval keeps it off the history.
    service = await start(launcher, deployer, remediation={"poll_interval": "1h"})
    db = Database(service.database_url)
    try:
        await db.write(load_history)
    finally:
        await db.dispose()
    visit = await Visit.open(browser, service, name)
    page = visit.page
    await visit.sign_in(VIEWER)
    assert await visit.goto(f"/quality?from={FROM}&to={TO}", "1-quality") == 200

    await expect(page.locator("input[name=from]")).to_have_value(FROM)
    await expect(page.locator("input[name=to]")).to_have_value(TO)
    await expect(page.locator("#q-incidents")).to_have_text(str(EXPECTED["incidents"]))
    for card, (value, detail) in CARDS.items():
        await expect(page.locator(f"{card} .value")).to_have_text(value)
        await expect(page.locator(card)).to_contain_text(detail)
    assert await table(visit, "#q-priorities") == PRIORITY_ROWS
    assert await table(visit, "#q-rules") == RULE_ROWS
    assert await page.locator(".chart svg").count() == 3

    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download CSV").click()
    download = await info.value
    assert download.suggested_filename == "remediator-quality.csv"
    text = await asyncio.to_thread(Path(await download.path()).read_text)
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == ["metric", "scope", "value"]
    values = {(metric, scope): value for metric, scope, value in lines[1:]}
    assert values["period_start", "all"] == "2026-11-01T00:00:00+00:00"
    assert values["period_end", "all"] == "2026-11-08T00:00:00+00:00"
    for key, want in EXPECTED.items():
        if isinstance(want, dict):  # durations: their medians and p90s (counts are not rows)
            for part in ("median_seconds", "p90_seconds"):
                assert float(values[f"{key}_{part}", "all"]) == want[part], (key, part)
        else:
            assert float(values[key, "all"]) == pytest.approx(want), key
    for rule in EXPECTED_BY_RULE:
        scope = f"rule={rule['rule']}"
        for key, want in rule.items():
            if key in ("rule", "mttr"):
                continue
            got = values[key, scope]
            assert (got == "") if want is None else float(got) == pytest.approx(want), (scope, key)
        assert float(values["mttr_median_seconds", scope]) == rule["mttr"]["median_seconds"]
    await visit.close()


async def test_signing_in_returns_to_the_page_asked_for(
    launcher: Launcher, deployer: Deployer, browser: Browser, name: str
) -> None:
    service = await start(launcher, deployer)
    visit = await Visit.open(browser, service, name)
    page = visit.page
    await visit.goto("/incidents?priority=P1", "1-redirected")
    url = urlsplit(page.url)
    assert (url.path, parse_qs(url.query)) == ("/login", {"next": ["/incidents?priority=P1"]})
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.locator("nav")).to_have_count(0)

    await page.fill("#token", "not-a-token-of-this-service")
    async with page.expect_navigation() as info:
        await page.get_by_role("button", name="Sign in").click()
    response = await info.value
    assert response is not None
    assert response.status == 401
    await visit.shot("2-wrong-token")
    await expect(page.locator("p.error[role=alert]")).to_contain_text(
        "That token is not one this service knows"
    )
    await expect(page.locator("input[name=next]")).to_have_value("/incidents?priority=P1")

    await page.fill("#token", VIEWER)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(service.url + "/incidents?priority=P1")
    await visit.shot("3-signed-in")
    await expect(page.locator(".user")).to_contain_text("victor")
    await expect(page.locator("select[name=priority] option[value=P1]")).to_have_js_property(
        "selected", True
    )

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(service.url + "/login")
    await visit.goto("/incidents", "4-signed-out")
    assert page.url.startswith(service.url + "/login?next=")
    await visit.close()
