"""The Alertmanager webhook over HTTP: status codes Alertmanager acts on, and no loss."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import Connection

from remediator.store.database import Database
from tests.api.conftest import ClientFactory
from tests.conftest import FIXTURES, load_fixture

WEBHOOK = "/api/v1/webhooks/alertmanager"
HEADERS = json.loads((FIXTURES / "request-headers.json").read_text())


async def post(client: Any, body: Any, **kwargs: Any) -> Any:
    headers = {"User-Agent": HEADERS["User-Agent"], "Content-Type": HEADERS["Content-Type"]}
    headers.update(kwargs.pop("headers", {}))
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return await client.post(WEBHOOK, data=data, headers=headers, **kwargs)


async def metric(client: Any, name: str, **labels: str) -> float:
    text_body = await (await client.get("/metrics")).text()
    for family in text_string_to_metric_families(text_body):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def test_real_bodies_are_accepted_and_open_incidents(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await post(client, load_fixture("crashloop-two-pods-firing.json"))
    assert response.status == 200
    assert await response.json() == {"received": 2, "stored": 2, "duplicates": 0}
    assert (await post(client, load_fixture("diskfill-firing.json"))).status == 200
    page = await (await client.get("/api/v1/incidents")).json()
    assert [(i["rule"], i["priority"]) for i in page["incidents"]] == [
        ("disk", "P1"),
        ("crashloop", "P3"),
    ]
    assert await metric(client, "remediator_alerts_received_total", status="firing") == 3
    assert await metric(client, "remediator_incidents_opened_total", priority="P1") == 1
    assert await metric(client, "remediator_rule_matches_total", rule="crashloop") == 2
    assert await metric(client, "remediator_incidents_open", state="open", priority="P3") == 1


async def test_redelivery_is_a_counted_duplicate(make_client: ClientFactory) -> None:
    client = await make_client()
    body = load_fixture("crashloop-two-pods-firing.json")
    await post(client, body)
    again = await post(client, body)
    assert again.status == 200
    assert (await again.json())["duplicates"] == 2
    assert await metric(client, "remediator_alerts_duplicate_total") == 2
    page = await (await client.get("/api/v1/incidents")).json()
    assert len(page["incidents"]) == 1


async def test_resolution_arrives_and_incident_resolves(make_client: ClientFactory) -> None:
    client = await make_client()
    await post(client, load_fixture("crashloop-two-pods-firing.json"))
    await post(client, load_fixture("crashloop-one-resolved-one-firing.json"))
    body = load_fixture("crashloop-one-resolved-one-firing.json")
    body["alerts"][0]["status"] = "resolved"
    body["status"] = "resolved"
    response = await post(client, body)
    assert response.status == 200
    (incident,) = (await (await client.get("/api/v1/incidents")).json())["incidents"]
    assert incident["state"] == "resolved"


async def test_wrong_content_type_is_415(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await post(
        client, "x=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 415
    assert "application/json" in (await response.json())["error"]


async def test_malformed_json_is_400(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await post(client, b'{"version": "4", "alerts": [')
    assert response.status == 400
    body = await response.json()
    assert body["error"].startswith("the body is not a valid Alertmanager webhook")
    assert "JSON" in body["details"][0]["message"]


async def test_wrong_types_name_the_field_path(make_client: ClientFactory) -> None:
    client = await make_client()
    body = load_fixture("crashloop-two-pods-firing.json")
    body["alerts"][1]["labels"] = ["not", "a", "mapping"]
    response = await post(client, body)
    assert response.status == 400
    details = (await response.json())["details"]
    assert details[0]["path"] == "alerts.1.labels"
    # Nothing of a rejected body is stored, not even its valid first alert.
    assert (await (await client.get("/api/v1/incidents")).json())["incidents"] == []


async def test_body_over_the_limit_is_413(make_client: ClientFactory) -> None:
    client = await make_client(intake={"max_body_bytes": 2048})
    body = load_fixture("diskfill-firing.json")
    body["alerts"][0]["annotations"]["description"] = "x" * 4096
    response = await post(client, body)
    assert response.status == 413
    assert "intake.max_body_bytes" in (await response.json())["error"]


async def test_storage_failure_is_503_and_the_retry_loses_nothing(
    make_client: ClientFactory, db_url: str
) -> None:
    client = await make_client()
    assert (await post(client, load_fixture("diskfill-firing.json"))).status == 200
    outside = Database(db_url)  # a second client, as an operator's psql/sqlite3 would be
    try:
        # A real database error, from the real database.
        await outside.write(rename("alert_events", "alert_events_away"))
        failed = await post(client, load_fixture("crashloop-two-pods-firing.json"))
        assert failed.status == 503  # Alertmanager retries 5xx
        assert failed.headers["Retry-After"] == "5"
        await outside.write(rename("alert_events_away", "alert_events"))
    finally:
        await outside.dispose()
    retried = await post(client, load_fixture("crashloop-two-pods-firing.json"))
    assert retried.status == 200
    assert (await retried.json())["stored"] == 2
    page = await (await client.get("/api/v1/incidents")).json()
    assert sorted(i["rule"] for i in page["incidents"]) == ["crashloop", "disk"]
    assert await metric(client, "remediator_webhook_requests_total", code="503") == 1


def rename(old: str, new: str) -> Callable[[Connection], None]:
    def transaction(conn: Connection) -> None:
        conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))

    return transaction


async def test_webhook_bearer_token(make_client: ClientFactory) -> None:
    client = await make_client(intake={"auth": {"bearer_token": "s3cret"}})
    body = load_fixture("diskfill-firing.json")
    assert (await post(client, body)).status == 401
    wrong = await post(client, body, headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    ok = await post(client, body, headers={"Authorization": "Bearer s3cret"})
    assert ok.status == 200


async def test_webhook_basic_auth_from_env(make_client: ClientFactory, monkeypatch: Any) -> None:
    monkeypatch.setenv("AM_PASSWORD", "pa:ss")
    client = await make_client(
        intake={"auth": {"basic_auth": {"username": "am", "password_env": "AM_PASSWORD"}}}
    )
    body = load_fixture("diskfill-firing.json")
    bad = await post(client, body, headers={"Authorization": basic("am", "wrong")})
    assert bad.status == 401
    assert bad.headers["WWW-Authenticate"].startswith("Basic")
    good = await post(client, body, headers={"Authorization": basic("am", "pa:ss")})
    assert good.status == 200


def basic(user: str, password: str) -> str:
    """The header Alertmanager's http_config.basic_auth sends."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
