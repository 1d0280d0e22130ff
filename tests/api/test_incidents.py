"""Incident endpoints: listing with filters and cursors, detail, and human actions."""

from __future__ import annotations

import copy
from typing import Any

from tests.api.conftest import ClientFactory
from tests.api.test_webhook import post
from tests.conftest import load_fixture


def disk_alert(n: int, severity: str = "critical", service: str = "storage") -> dict[str, Any]:
    body = load_fixture("diskfill-firing.json")
    alert = body["alerts"][0]
    alert["fingerprint"] = f"{n:016x}"
    alert["labels"].update(instance=f"db-{n}:9100", severity=severity, service=service)
    return body


async def seed(client: Any) -> None:
    for n in range(5):
        await post(client, disk_alert(n, service="storage" if n % 2 else "billing"))
    await post(client, load_fixture("crashloop-two-pods-firing.json"))


async def test_detail_has_alerts_timeline_and_runbook(make_client: ClientFactory) -> None:
    client = await make_client()
    await post(client, load_fixture("crashloop-two-pods-firing.json"))
    (summary,) = (await (await client.get("/api/v1/incidents")).json())["incidents"]
    detail = await (await client.get(f"/api/v1/incidents/{summary['id']}")).json()
    assert detail["runbook"] == "kubectl -n {{ labels.namespace }} describe pod"
    assert sorted(a["labels"]["pod"] for a in detail["alerts"]) == [
        "checkout-7d9f8b-p9z1m",
        "checkout-7d9f8b-x2k4q",
    ]
    first = detail["timeline"][0]
    assert (first["kind"], first["actor_type"], first["actor"]) == ("opened", "rule", "crashloop")
    assert first["to_state"] == "open"
    assert detail["timeline"][1]["message"] == "crashloop checkout-7d9f8b-p9z1m"


async def test_filters_by_state_priority_rule_and_labels(make_client: ClientFactory) -> None:
    client = await make_client()
    await seed(client)

    async def ids(query: str) -> int:
        page = await (await client.get(f"/api/v1/incidents?{query}")).json()
        return len(page["incidents"])

    assert await ids("") == 6
    assert await ids("priority=P1") == 5
    assert await ids("priority=P3&priority=P1") == 6
    assert await ids("rule=crashloop") == 1
    assert await ids("state=resolved") == 0
    assert await ids('match=service="billing"') == 3
    assert await ids('match=service=~"bill.*"&match=instance!="db-0:9100"') == 2


async def test_cursor_pagination_walks_every_incident_once(make_client: ClientFactory) -> None:
    client = await make_client()
    await seed(client)
    seen: list[int] = []
    url = "/api/v1/incidents?limit=4"
    while url:
        page = await (await client.get(url)).json()
        seen += [i["id"] for i in page["incidents"]]
        cursor = page["next_cursor"]
        url = f"/api/v1/incidents?limit=4&cursor={cursor}" if cursor else ""
    assert seen == sorted(seen, reverse=True)  # newest first
    assert len(seen) == len(set(seen)) == 6


async def test_cursor_pagination_with_label_matchers(make_client: ClientFactory) -> None:
    client = await make_client()
    await seed(client)
    first = await (await client.get('/api/v1/incidents?limit=2&match=service="billing"')).json()
    assert len(first["incidents"]) == 2
    rest = await (
        await client.get(
            f'/api/v1/incidents?limit=2&match=service="billing"&cursor={first["next_cursor"]}'
        )
    ).json()
    assert len(rest["incidents"]) == 1
    assert rest["next_cursor"] is None


async def test_bad_query_is_400(make_client: ClientFactory) -> None:
    client = await make_client()
    assert (await client.get("/api/v1/incidents?match=service")).status == 400
    assert (await client.get("/api/v1/incidents?cursor=garbage")).status == 400
    assert (await client.get("/api/v1/incidents?limit=0")).status == 400


async def test_acknowledge_then_resolve_by_hand(make_client: ClientFactory) -> None:
    client = await make_client()
    await post(client, load_fixture("diskfill-firing.json"))
    url = "/api/v1/incidents/1"
    ack = await client.post(f"{url}/ack", json={"comment": "looking"})
    assert ack.status == 200
    body = await ack.json()
    assert body["state"] == "acknowledged"
    assert body["acknowledged_by"] == "anonymous"
    assert body["timeline"][-1]["message"] == "acknowledged by anonymous: looking"
    responded = body["response_seconds"]
    assert responded is not None
    again = await client.post(f"{url}/ack")
    assert again.status == 409
    assert "acknowledged" in (await again.json())["error"]
    resolved = await client.post(f"{url}/resolve", json={"reason": "disk cleaned"})
    body = await resolved.json()
    assert (body["state"], body["resolved_reason"], body["resolution"]) == (
        "resolved",
        "resolved by anonymous: disk cleaned",
        "human",
    )
    # The first response was the acknowledgement; resolving later does not move it.
    assert body["response_seconds"] == responded
    assert body["resolve_seconds"] >= responded
    last = body["timeline"][-1]
    assert (last["from_state"], last["to_state"], last["actor_type"]) == (
        "acknowledged",
        "resolved",
        "user",
    )


async def test_a_resolved_alert_firing_again_opens_a_linked_incident(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    body = load_fixture("diskfill-firing.json")
    await post(client, body)
    await client.post("/api/v1/incidents/1/resolve")
    again = copy.deepcopy(body)
    again["alerts"][0]["startsAt"] = "2026-11-21T14:00:00Z"
    await post(client, again)
    newest = (await (await client.get("/api/v1/incidents")).json())["incidents"][0]
    assert newest["previous_incident_id"] == 1
    assert newest["recurrence_count"] == 1


async def test_notes(make_client: ClientFactory) -> None:
    client = await make_client()
    await post(client, load_fixture("diskfill-firing.json"))
    note = await client.post("/api/v1/incidents/1/notes", json={"text": "vacuum running"})
    assert note.status == 201
    assert (await note.json())["timeline"][-1]["kind"] == "note"
    empty = await client.post("/api/v1/incidents/1/notes", json={"text": ""})
    assert empty.status == 400
    assert (await empty.json())["details"][0]["path"] == "text"
    typo = await client.post("/api/v1/incidents/1/notes", json={"txt": "x"})
    assert typo.status == 400


async def test_unknown_incident_is_404(make_client: ClientFactory) -> None:
    client = await make_client()
    assert (await client.get("/api/v1/incidents/99")).status == 404
    assert (await client.post("/api/v1/incidents/99/ack")).status == 404
    assert (await client.get("/api/v1/incidents/abc")).status == 404
