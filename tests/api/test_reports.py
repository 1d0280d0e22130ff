"""`GET /api/v1/reports/quality` over the fixed history: the hand-computed numbers, as JSON
and as CSV; bad periods are refused with a message that names the parameter; viewers may read
it, requests without a token may not."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from remediator import appkeys
from tests.api.conftest import ClientFactory
from tests.quality_history import EXPECTED, EXPECTED_BY_RULE, FROM, TO, load_history

REPORT = "/api/v1/reports/quality"
VIEWER = {"Authorization": "Bearer viewer-secret"}
TOKENS = {"auth": {"tokens": [{"name": "manager", "token": "viewer-secret", "role": "viewer"}]}}


async def _client_with_history(make_client: ClientFactory, **settings: Any) -> TestClient[Any, Any]:
    client = await make_client(**settings)
    await client.app[appkeys.DATABASE].write(load_history)
    return client


async def test_json_report_has_the_hand_computed_numbers(make_client: ClientFactory) -> None:
    client = await _client_with_history(make_client)
    response = await client.get(REPORT, params={"from": FROM, "to": TO})
    assert response.status == 200
    body = await response.json()
    assert (body["start"], body["end"]) == ("2026-11-01T00:00:00Z", "2026-11-08T00:00:00Z")
    for key, want in EXPECTED.items():
        assert body[key] == pytest.approx(want), key
    assert [r["rule"] for r in body["by_rule"]] == [r["rule"] for r in EXPECTED_BY_RULE]


async def test_csv_report_has_one_indicator_per_row(make_client: ClientFactory) -> None:
    client = await _client_with_history(make_client)
    response = await client.get(REPORT, params={"from": FROM, "to": TO, "format": "csv"})
    assert response.status == 200
    assert response.content_type == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0] == ["metric", "scope", "value"]
    values = {(metric, scope): value for metric, scope, value in rows[1:]}
    assert values["mtta_median_seconds", "all"] == "600.0"
    assert values["mttr_p90_seconds", "all"] == "5040.0"
    assert float(values["auto_remediation_rate", "all"]) == pytest.approx(0.4)
    assert float(values["sla_breach_rate", "priority=P1"]) == pytest.approx(1 / 3)
    assert values["sla_breach_rate", "priority=P4"] == ""  # no P4 incidents: no data, not 0
    assert values["remediations_held_back", "rule=pod-crash"] == "1"
    assert values["period_start", "all"] == "2026-11-01T00:00:00+00:00"


async def test_accept_text_csv_gets_csv(make_client: ClientFactory) -> None:
    client = await _client_with_history(make_client)
    response = await client.get(REPORT, params={"from": FROM}, headers={"Accept": "text/csv"})
    assert response.content_type == "text/csv"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "last week"}, "from='last week' is not a date"),
        ({"from": "2026-11-05", "to": "2026-11-01"}, "must be before to"),
        ({"format": "xlsx"}, "format='xlsx': use csv or json"),
    ],
)
async def test_bad_parameters_get_400_naming_them(
    make_client: ClientFactory, params: dict[str, str], message: str
) -> None:
    client = await make_client()
    response = await client.get(REPORT, params=params)
    assert response.status == 400
    assert message in (await response.json())["error"]


async def test_viewers_may_read_it_and_anonymous_requests_may_not(
    make_client: ClientFactory,
) -> None:
    client = await _client_with_history(make_client, **TOKENS)
    assert (await client.get(REPORT)).status == 401
    assert (await client.get(REPORT, params={"from": FROM, "to": TO}, headers=VIEWER)).status == 200


async def test_the_incident_list_filters_by_opening_time(make_client: ClientFactory) -> None:
    client = await _client_with_history(make_client)
    response = await client.get(
        "/api/v1/incidents", params={"from": "2026-11-02T12:00:00Z", "to": "2026-11-02"}
    )
    ids = [incident["id"] for incident in (await response.json())["incidents"]]
    assert ids == [6, 5, 4, 3]  # opened 15:00, 14:00, 13:00, 12:00; 1 and 2 before 12:00
