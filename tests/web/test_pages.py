"""The dashboard's pages through the real app on SQLite and PostgreSQL: sign-in, roles (the
UI never offers a viewer a control, and refuses the viewer's POSTs), CSRF, operator actions,
filters, untrusted labels shown as text, and the pages' own error messages."""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp.test_utils import TestClient

from remediator import appkeys
from tests.api.conftest import ClientFactory
from tests.conftest import load_fixture
from tests.quality_history import load_history

WEBHOOK = "/api/v1/webhooks/alertmanager"
TOKENS = {
    "auth": {
        "tokens": [
            {"name": "olivia", "token": "op-secret", "role": "operator"},
            {"name": "victor", "token": "view-secret", "role": "viewer"},
        ]
    }
}


async def _signed_in(
    make_client: ClientFactory, token: str, **settings: Any
) -> TestClient[Any, Any]:
    client = await make_client(**TOKENS, **settings)
    response = await client.post("/login", data={"token": token}, allow_redirects=False)
    assert response.status == 303
    return client


async def _incident(client: TestClient[Any, Any], body: dict[str, Any] | None = None) -> None:
    response = await client.post(WEBHOOK, json=body or load_fixture("diskfill-firing.json"))
    assert response.status == 200


async def _html(client: TestClient[Any, Any], path: str, status: int = 200) -> str:
    response = await client.get(path)
    assert response.status == status, await response.text()
    return await response.text()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found is not None
    return found.group(1)


async def test_pages_ask_to_sign_in_and_return_where_asked(make_client: ClientFactory) -> None:
    client = await make_client(**TOKENS)
    response = await client.get("/incidents/7?x=1", allow_redirects=False)
    assert response.status == 303
    location = urlsplit(response.headers["Location"])
    assert (location.path, parse_qs(location.query)) == ("/login", {"next": ["/incidents/7?x=1"]})
    wrong = await client.post("/login", data={"token": "nope", "next": "/rules"})
    assert wrong.status == 401
    assert "not one this service knows" in await wrong.text()
    right = await client.post(
        "/login", data={"token": "view-secret", "next": "/rules"}, allow_redirects=False
    )
    assert right.headers["Location"] == "/rules"
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


async def test_sign_in_never_sends_users_to_another_site(make_client: ClientFactory) -> None:
    client = await make_client(**TOKENS)
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "/\t/evil.x/"):
        response = await client.post(
            "/login", data={"token": "view-secret", "next": target}, allow_redirects=False
        )
        assert response.headers["Location"] == "/incidents", target


async def test_a_viewer_sees_no_controls_and_cannot_act(make_client: ClientFactory) -> None:
    client = await _signed_in(make_client, "view-secret")
    await _incident(client)
    html = await _html(client, "/incidents/1")
    assert "victor" in html
    for action in ("/ack", "/resolve", "/notes", "/approve", "close-breaker"):
        assert f'{action}"' not in html, action
    response = await client.post(
        "/incidents/1/ack", data={"csrf": _csrf(html), "comment": "mine"}, allow_redirects=False
    )
    assert response.status == 403
    assert "victor has role viewer" in await response.text()
    api = await client.get("/api/v1/incidents/1", headers={"Authorization": "Bearer view-secret"})
    assert (await api.json())["state"] != "acknowledged"


async def test_an_operator_acknowledges_notes_and_resolves(make_client: ClientFactory) -> None:
    client = await _signed_in(make_client, "op-secret")
    await _incident(client)
    html = await _html(client, "/incidents/1")
    csrf = _csrf(html)
    ack = await client.post(
        "/incidents/1/ack", data={"csrf": csrf, "comment": "on it"}, allow_redirects=False
    )
    assert (ack.status, ack.headers["Location"]) == (303, "/incidents/1?done=acknowledged")
    empty = await client.post("/incidents/1/notes", data={"csrf": csrf, "text": "  "})
    assert empty.status == 400
    assert "the note is empty" in await empty.text()
    await client.post("/incidents/1/notes", data={"csrf": csrf, "text": "disk at 97%"})
    await client.post("/incidents/1/resolve", data={"csrf": csrf, "reason": "rotated logs"})
    again = await client.post("/incidents/1/ack", data={"csrf": csrf})
    assert again.status == 409  # already resolved: the page says why
    assert "resolved" in await again.text()
    detail = await (
        await client.get("/api/v1/incidents/1", headers={"Authorization": "Bearer op-secret"})
    ).json()
    assert detail["state"] == "resolved"
    assert detail["acknowledged_by"] == "olivia"
    messages = [entry["message"] for entry in detail["timeline"]]
    assert "acknowledged by olivia: on it" in messages
    assert "disk at 97%" in messages
    assert "resolved by olivia: rotated logs" in messages


async def test_forms_without_the_session_csrf_token_or_from_elsewhere_are_refused(
    make_client: ClientFactory,
) -> None:
    client = await _signed_in(make_client, "op-secret")
    await _incident(client)
    csrf = _csrf(await _html(client, "/incidents/1"))
    missing = await client.post("/incidents/1/ack", data={"comment": "x"})
    assert missing.status == 403
    assert "reload and try again" in await missing.text()
    elsewhere = await client.post(
        "/incidents/1/ack", data={"csrf": csrf}, headers={"Origin": "https://evil.example"}
    )
    assert elsewhere.status == 403
    assert "another site" in await elsewhere.text()


async def test_the_list_filters_and_explains_a_bad_matcher(make_client: ClientFactory) -> None:
    client = await _signed_in(make_client, "view-secret")
    await _incident(client)  # rule disk, P1
    await _incident(client, load_fixture("crashloop-two-pods-firing.json"))
    every = await _html(client, "/incidents")
    assert set(re.findall(r'data-incident="(\d+)"', every)) == {"1", "2"}
    p1 = await _html(client, "/incidents?priority=P1")
    assert re.findall(r'data-incident="(\d+)"', p1) == ["1"]
    crash = await _html(client, "/incidents?match=alertname%3D%22KubePodCrashLooping%22")
    assert re.findall(r'data-incident="(\d+)"', crash) == ["2"]
    bad = await _html(client, "/incidents?match=alertname%3D~%22(%22", status=400)
    assert "invalid regular expression" in bad
    assert "data-live-url" not in bad  # no refresh that would fail every 5 s, no empty table
    fragment = await _html(client, "/incidents?priority=P1&partial=1")
    assert fragment.lstrip().startswith("<table")  # the live refresh gets just the table


async def test_untrusted_labels_are_shown_as_text(make_client: ClientFactory) -> None:
    client = await _signed_in(make_client, "view-secret")
    body = copy.deepcopy(load_fixture("diskfill-firing.json"))
    body["alerts"][0]["labels"]["instance"] = "<script>alert(1)</script>"
    body["alerts"][0]["annotations"]["summary"] = "{{ 7*7 }} <img src=x onerror=alert(1)>"
    await _incident(client, body)
    html = await _html(client, "/incidents/1")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    response = await client.get("/incidents/1")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_a_missing_incident_is_a_page_that_says_so(make_client: ClientFactory) -> None:
    client = await _signed_in(make_client, "view-secret")
    html = await _html(client, "/incidents/999", status=404)
    assert "incident 999 does not exist" in html


async def test_the_rules_page_shows_a_rejected_reload_plainly(
    make_client: ClientFactory, rules_file: Any
) -> None:
    client = await _signed_in(make_client, "view-secret")
    html = await _html(client, "/rules")
    assert 'data-rule="crashloop"' in html
    assert "reload-problems" not in html
    rules_file.write_text("rules:\n  - name: broken\n    match: ['alertname=~\"(\"']\n")
    assert not client.app[appkeys.RULES].reload().ok  # as SIGHUP or POST /-/reload would
    html = await _html(client, "/rules")
    assert "The last reload was rejected" in html
    assert "rules.yml:3" in html
    assert 'data-rule="crashloop"' in html  # the old rules still run, and are listed


async def test_the_quality_page_shows_the_report_and_exports_it(
    make_client: ClientFactory,
) -> None:
    client = await _signed_in(make_client, "view-secret")
    await client.app[appkeys.DATABASE].write(load_history)
    html = await _html(client, "/quality?from=2026-11-01&to=2026-11-07")
    assert re.search(r'id="q-mtta">.*?10m 00s.*?p90 14m 00s', html, re.S)
    assert re.search(r'id="q-auto">.*?40\.0 %', html, re.S)
    assert 'data-rule="disk-full"' in html
    assert "<svg" in html
    csv = await client.get("/quality/export?format=csv&from=2026-11-01&to=2026-11-07")
    assert csv.content_type == "text/csv"
    assert "mtta_median_seconds,all,600.0" in await csv.text()
    bad = await _html(client, "/quality?from=2026-11-09&to=2026-11-01", status=400)
    assert "must be before to" in bad


async def test_without_tokens_everyone_may_act_and_is_told_so(make_client: ClientFactory) -> None:
    client = await make_client()
    await _incident(client)
    html = await _html(client, "/incidents/1")
    assert "No API tokens are configured" in html
    assert 'action="/incidents/1/ack"' in html
    ack = await client.post("/incidents/1/ack", data={}, allow_redirects=False)
    assert ack.status == 303
