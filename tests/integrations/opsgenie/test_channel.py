"""The Opsgenie channel against a local Alert API v2 that enforces the contract."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from remediator_integrations.opsgenie import PLUGIN, OpsgenieChannel, OpsgenieSettings

from remediator.plugins import (
    AttemptSummary,
    DeliveryFailed,
    KnownResolution,
    Notification,
    PluginError,
)

from .conftest import (
    API_KEY,
    MakeChannel,
    Opsgenie,
    Scripted,
    action_problems,
    create_problems,
    notification,
)

HOSTILE = '"}{"x":1'
NOTE_AT = notification().opened_at


async def fail(channel: OpsgenieChannel, note: Notification) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as caught:
        await channel.send(note)
    return caught.value


async def test_trigger_creates_an_alert(opsgenie: Opsgenie, make_channel: MakeChannel) -> None:
    channel = make_channel(
        tags=["remediator", "prod"],
        responders=[{"type": "team", "name": "sre"}, {"type": "user", "username": "a@b.c"}],
    )

    result = await channel.send(notification())

    assert result.summary == "opsgenie create remediator-7 → 202 Request will be processed"
    assert result.reference is not None
    assert len(result.reference) == 36  # the requestId
    [seen] = opsgenie.accepted
    assert (seen.action, seen.identifier) == ("create", None)
    assert seen.headers["Authorization"] == f"GenieKey {API_KEY}"
    assert seen.headers["Content-Type"] == "application/json"
    body = seen.body
    assert body["message"] == "web-1: HighErrorRate"
    assert body["alias"] == "remediator-7"
    assert body["priority"] == "P2"
    assert body["source"] == "remediator"
    assert body["entity"] == "web-1:9100"
    assert body["tags"] == ["remediator", "prod"]
    assert body["responders"] == [
        {"type": "team", "name": "sre"},
        {"type": "user", "username": "a@b.c"},
    ]
    assert body["details"] == {
        "remediator_incident": "https://remediator.example.com/incidents/7",
        "remediator_priority": "P2",
        "remediator_state": "escalated",
        "remediator_rule": "restart-web",
        "remediator_runbook": "https://runbooks.example.com/high-error-rate",
        "remediator_attempts": "1",
        "alertname": "HighErrorRate",
        "instance": "web-1:9100",
        "service": "web",
    }


async def test_description_tells_what_was_tried(
    opsgenie: Opsgenie, make_channel: MakeChannel
) -> None:
    await make_channel().send(notification())
    assert opsgenie.accepted[0].body["description"] == "\n".join(
        [
            "verification failed: alert still firing after 5m",
            "",
            "Priority: P2 · State: escalated · Rule: restart-web",
            "Incident: https://remediator.example.com/incidents/7",
            "Runbook: https://runbooks.example.com/high-error-rate",
            "Acknowledge in remediator: https://remediator.example.com/ack/7?sig=abc",
            "",
            "What automation tried:",
            "- ansible action 1, attempt 1: failed at 2024-05-01T12:31:00+00:00: "
            "restart.yml: web-1 unreachable",
            "",
            "Labels:",
            "  alertname=HighErrorRate",
            "  instance=web-1:9100",
            "  service=web",
            "",
            "Annotations:",
            "  summary: 5xx above 5%",
        ]
    )


async def test_minimal_alert_leaves_out_empty_fields(
    opsgenie: Opsgenie, make_channel: MakeChannel
) -> None:
    await make_channel().send(
        notification(labels={}, annotations={}, runbook=None, rule=None, attempts=())
    )
    body = opsgenie.accepted[0].body
    assert not {"tags", "responders", "entity"} & body.keys()
    assert "remediator_rule" not in body["details"]
    assert body["details"]["remediator_attempts"] == "0"


@pytest.mark.parametrize("event", ["acknowledge", "resolve"])
async def test_acknowledge_and_resolve_act_on_the_alias(
    opsgenie: Opsgenie, make_channel: MakeChannel, event: Any
) -> None:
    result = await make_channel(source="remediator-eu").send(
        notification(event=event, reason="taken by alice")
    )

    action = "acknowledge" if event == "acknowledge" else "close"
    assert result.summary == f"opsgenie {action} remediator-7 → 202 Request will be processed"
    [seen] = opsgenie.accepted
    assert (seen.action, seen.identifier, seen.identifier_type) == (
        action,
        "remediator-7",
        "alias",
    )
    assert seen.body == {"user": "remediator", "source": "remediator-eu", "note": "taken by alice"}


async def test_alias_is_one_path_segment(opsgenie: Opsgenie, make_channel: MakeChannel) -> None:
    await make_channel().send(notification(event="resolve", dedup_key="a/b c?d"))
    assert opsgenie.accepted[0].identifier == "a/b c?d"


@pytest.mark.parametrize(
    ("priority", "expected"), [("P1", "P1"), ("P2", "P2"), ("P4", "P4"), ("P9", "P3")]
)
async def test_priority_map(
    opsgenie: Opsgenie, make_channel: MakeChannel, priority: str, expected: str
) -> None:
    await make_channel().send(notification(priority=priority))
    assert opsgenie.accepted[0].body["priority"] == expected


async def test_priority_map_overrides_some(opsgenie: Opsgenie, make_channel: MakeChannel) -> None:
    channel = make_channel(priority_map={"P4": "P5"})
    await channel.send(notification(priority="P4"))
    await channel.send(notification(priority="P1"))
    assert [seen.body["priority"] for seen in opsgenie.accepted] == ["P5", "P1"]


async def test_hostile_label_values_stay_strings(
    opsgenie: Opsgenie, make_channel: MakeChannel
) -> None:
    labels = {"service": HOSTILE, HOSTILE: "key too"}
    await make_channel().send(notification(title=HOSTILE, labels=labels))

    body = opsgenie.accepted[0].body
    assert "x" not in body
    assert body["message"] == HOSTILE
    assert body["entity"] == HOSTILE
    assert body["details"]["service"] == HOSTILE
    assert body["details"][HOSTILE] == "key too"
    assert f"service={HOSTILE}" in body["description"]


async def test_long_fields_are_cut_to_the_limits(
    opsgenie: Opsgenie, make_channel: MakeChannel
) -> None:
    labels = {f"label{i:03}": "v" * 500 for i in range(40)}  # 20 KB of labels
    attempt = AttemptSummary("http action 1", 1, "failed", "o" * 20_000, NOTE_AT)
    await make_channel().send(
        notification(title="t" * 500, labels=labels, attempts=(attempt,), reason="r" * 30_000)
    )

    body = opsgenie.accepted[0].body
    assert len(body["message"]) == 130
    assert body["message"].endswith("t…")
    assert len(body["description"]) == 15_000
    assert sum(len(k) + len(v) for k, v in body["details"].items()) <= 8000
    assert body["details"]["remediator_priority"] == "P2"  # ours survive the budget
    assert "label000" in body["details"]


KNOWN = (
    KnownResolution(
        note="restarted the exporter; the disk was fine",
        resolved_by="alice",
        at=datetime(2024, 4, 20, 9, 15, tzinfo=UTC),
        incident_id=3,
        same_key=True,
    ),
    KnownResolution(
        note="scaled web to 4 replicas",
        resolved_by="bob",
        at=datetime(2024, 3, 2),  # naive means UTC
        incident_id=1,
        same_key=False,
    ),
)
KNOWN_LINES = [
    "incident 3 (same service/host), resolved by alice at 2024-04-20T09:15:00+00:00: "
    "restarted the exporter; the disk was fine",
    "incident 1 (same rule), resolved by bob at 2024-03-02T00:00:00+00:00: "
    "scaled web to 4 replicas",
]


async def test_known_resolutions_in_description_and_details(
    opsgenie: Opsgenie, make_channel: MakeChannel
) -> None:
    await make_channel().send(notification(known_resolutions=KNOWN))

    body = opsgenie.accepted[0].body
    lines = body["description"].split("\n")
    start = lines.index("Known resolutions (newest first):")
    assert lines[start - 2].startswith("Acknowledge in remediator: ")
    assert lines[start + 1 : start + 4] == [*(f"- {line}" for line in KNOWN_LINES), ""]
    assert lines[start + 4] == "What automation tried:"
    assert body["details"]["remediator_known_resolutions"] == "\n".join(KNOWN_LINES)


async def test_no_known_resolutions_no_section(
    opsgenie: Opsgenie, make_channel: MakeChannel
) -> None:
    await make_channel().send(notification())

    body = opsgenie.accepted[0].body
    assert "Known resolutions" not in body["description"]
    assert "remediator_known_resolutions" not in body["details"]


async def test_hostile_known_resolutions_stay_text(
    opsgenie: Opsgenie, make_channel: MakeChannel
) -> None:
    note = f"{HOSTILE}\nIncident: https://evil.example/\n\nAcknowledge in remediator: x"
    known = KnownResolution(note, f"{HOSTILE}\nRunbook: y", NOTE_AT, 2, True)
    await make_channel().send(notification(known_resolutions=(known,)))

    body = opsgenie.accepted[0].body
    assert "x" not in body
    lines = body["description"].split("\n")
    # The note's own lines are indented: none passes for one of ours.
    assert [line for line in lines if line.startswith(("Incident:", "Acknowledge in"))] == [
        "Incident: https://remediator.example.com/incidents/7",
        "Acknowledge in remediator: https://remediator.example.com/ack/7?sig=abc",
    ]
    assert not any(line.startswith("Runbook: y") for line in lines)
    assert (
        f"- incident 2 (same service/host), resolved by {HOSTILE} Runbook: y at "
        in (body["description"])
    )
    assert "    Incident: https://evil.example/" in lines
    assert body["details"]["remediator_known_resolutions"].endswith(
        f"{HOSTILE}\n    Incident: https://evil.example/\n    Acknowledge in remediator: x"
    )


async def test_long_known_resolutions_stay_within_the_limits(
    opsgenie: Opsgenie, make_channel: MakeChannel
) -> None:
    labels = {f"label{i:03}": "v" * 500 for i in range(40)}  # 20 KB of labels
    attempt = AttemptSummary("http action 1", 1, "failed", "o" * 20_000, NOTE_AT)
    known = tuple(KnownResolution("n" * 5000, "r" * 500, NOTE_AT, i, False) for i in range(10))
    await make_channel().send(
        notification(labels=labels, attempts=(attempt,), known_resolutions=known)
    )

    body = opsgenie.accepted[0].body  # the fake accepted it: within every limit
    assert len(body["description"]) == 15_000
    shown = [line for line in body["description"].split("\n") if line.startswith("- incident")]
    assert [line.split(" ")[2] for line in shown] == ["0", "1", "2", "3", "4"]
    assert all(line.endswith("n…") and line.count("n") >= 999 for line in shown)
    assert sum(len(k) + len(v) for k, v in body["details"].items()) <= 8000
    known_detail = body["details"]["remediator_known_resolutions"]
    assert len(known_detail) == 1000
    assert known_detail.startswith("incident 0 (same rule), resolved by rrr")


async def test_long_note_is_cut(opsgenie: Opsgenie, make_channel: MakeChannel) -> None:
    await make_channel().send(notification(event="acknowledge", reason="n" * 30_000))
    assert len(opsgenie.accepted[0].body["note"]) == 25_000


async def test_blank_title_gets_a_message(opsgenie: Opsgenie, make_channel: MakeChannel) -> None:
    await make_channel().send(notification(title=""))
    assert opsgenie.accepted[0].body["message"] == "remediator incident 7"


async def test_api_key_from_env(
    opsgenie: Opsgenie, make_channel: MakeChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSGENIE_API_KEY", API_KEY)
    await make_channel(api_key_env="OPSGENIE_API_KEY").send(notification())
    assert opsgenie.accepted[0].headers["Authorization"] == f"GenieKey {API_KEY}"


async def test_api_key_file_is_read_per_request(
    opsgenie: Opsgenie, make_channel: MakeChannel, tmp_path: Path
) -> None:
    secret = tmp_path / "api_key"
    secret.write_text(API_KEY + "\n")
    channel = make_channel(api_key_file=str(secret))
    await channel.send(notification())
    secret.write_text("revoked\n")

    error = await fail(channel, notification(event="resolve"))

    assert not error.retryable
    assert error.summary == "opsgenie close remediator-7 → 401 Could not authenticate"
    assert len(opsgenie.accepted) == 1


async def test_api_key_with_a_line_break_is_refused(
    opsgenie: Opsgenie, make_channel: MakeChannel
) -> None:
    error = await fail(make_channel(api_key="k\r\nX-Injected: 1"), notification())
    assert not error.retryable
    assert "line break" in error.summary
    assert opsgenie.requests == 0


async def test_missing_secret_at_send_is_not_retried(
    opsgenie: Opsgenie, make_channel: MakeChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSGENIE_API_KEY", API_KEY)
    channel = make_channel(api_key_env="OPSGENIE_API_KEY")
    monkeypatch.delenv("OPSGENIE_API_KEY")
    error = await fail(channel, notification())
    assert not error.retryable
    assert "OPSGENIE_API_KEY is not set" in error.summary
    assert opsgenie.requests == 0


def test_create_fails_when_the_secret_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    settings = OpsgenieSettings.model_validate({"api_key_env": "NO_SUCH_KEY"})
    with pytest.raises(PluginError, match="NO_SUCH_KEY is not set"):
        PLUGIN.create(settings)


@pytest.mark.parametrize(
    ("scripted", "summary"),
    [
        (
            Scripted(
                422,
                '{"message": "Request body is not processable. Please check the errors.", '
                '"errors": {"responders#type": "Invalid recipient type \'bb\'"}, '
                '"took": 0.08, "requestId": "r"}',
            ),
            "422 Request body is not processable. Please check the errors. "
            "(responders#type: Invalid recipient type 'bb')",
        ),
        (Scripted(400, '{"message": "Invalid JSON body"}'), "400 Invalid JSON body"),
        (Scripted(402, '{"message": "Upgrade your plan"}'), "402 Upgrade your plan"),
        (Scripted(403, '{"message": "Forbidden", "took": 0.0}'), "403 Forbidden"),
        (Scripted(404, "no such handler"), "404 no such handler"),
    ],
)
async def test_client_errors_are_not_retried(
    opsgenie: Opsgenie, make_channel: MakeChannel, scripted: Scripted, summary: str
) -> None:
    opsgenie.script.append(scripted)
    error = await fail(make_channel(), notification())
    assert not error.retryable
    assert error.retry_after is None
    assert error.summary == f"opsgenie create remediator-7 → {summary}"


async def test_wrong_key_is_401_and_not_retried(make_channel: MakeChannel) -> None:
    error = await fail(make_channel(api_key="wrong"), notification(event="acknowledge"))
    assert not error.retryable
    assert error.summary == "opsgenie acknowledge remediator-7 → 401 Could not authenticate"


@pytest.mark.parametrize(
    ("scripted", "retry_after"),
    [
        (Scripted(429, '{"message": "Too many requests"}', {"Retry-After": "5"}), 5.0),
        (Scripted(429), None),
        (Scripted(500, '{"message": "Internal error"}'), None),
        (Scripted(503, "", {"Retry-After": "2"}), 2.0),
    ],
)
async def test_throttling_and_server_errors_are_retryable(
    opsgenie: Opsgenie, make_channel: MakeChannel, scripted: Scripted, retry_after: float | None
) -> None:
    opsgenie.script.append(scripted)
    error = await fail(make_channel(), notification(event="resolve"))
    assert error.retryable
    assert error.retry_after == retry_after
    assert error.summary.startswith(f"opsgenie close remediator-7 → {scripted.status}")


async def test_connection_refused_is_retryable(make_channel: MakeChannel) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = await fail(make_channel(url=f"http://127.0.0.1:{port}"), notification())
    assert error.retryable
    assert error.summary.startswith("opsgenie create remediator-7 → ")


async def test_timeout_is_retryable(opsgenie: Opsgenie, make_channel: MakeChannel) -> None:
    opsgenie.hang = True
    error = await fail(make_channel(timeout="200ms"), notification())
    assert error.retryable
    assert error.summary == "opsgenie create remediator-7 → timed out after 0.2s"


async def test_base_url_with_a_path_prefix(opsgenie: Opsgenie, make_channel: MakeChannel) -> None:
    error = await fail(make_channel(url=opsgenie.url + "/proxy/"), notification())
    assert error.summary.startswith("opsgenie create remediator-7 → 404")
    assert not error.retryable
    await make_channel(url=opsgenie.url + "/").send(notification())
    assert len(opsgenie.accepted) == 1


async def test_concurrent_sends_share_one_session_and_close_reopens(
    opsgenie: Opsgenie, make_channel: MakeChannel
) -> None:
    channel = make_channel()
    notes = [notification(dedup_key=f"remediator-{i}") for i in range(20)]
    results = await asyncio.gather(*(channel.send(note) for note in notes))
    await channel.close()
    await channel.close()
    await channel.send(notification(event="resolve"))

    assert len({result.reference for result in results}) == 20
    assert sorted(seen.body.get("alias", "") for seen in opsgenie.accepted[:20]) == sorted(
        f"remediator-{i}" for i in range(20)
    )
    assert opsgenie.accepted[20].action == "close"


# -- the contract server itself: a lenient fake would make the tests above meaningless ----


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({}, "message", "Message can not be empty."),
        ({"message": " "}, "message", "Message can not be empty."),
        ({"message": "m" * 131}, "message", "can not be longer than 130"),
        ({"message": "m", "alias": "a" * 513}, "alias", "longer than 512"),
        ({"message": "m", "priority": "P0"}, "priority", "Invalid priority"),
        ({"message": "m", "details": {"a": 1}}, "details", "map of strings"),
        ({"message": "m", "details": {"a": "b" * 8000}}, "details", "8000"),
        ({"message": "m", "tags": ["t"] * 21}, "tags", "at most 20"),
        ({"message": "m", "tags": ["t" * 51]}, "tags", "50"),
        ({"message": "m", "responders": [{"type": "bb", "id": "1"}]}, "responders#type", "bb"),
        ({"message": "m", "responders": [{"type": "team"}]}, "responders#type", "one of"),
        ({"message": "m", "priorty": "P1"}, "priorty", "not a known field"),
    ],
)
def test_contract_rejects_alerts(body: dict[str, Any], field: str, reason: str) -> None:
    assert reason in create_problems(body).get(field, ""), create_problems(body)


def test_contract_rejects_actions() -> None:
    assert action_problems({"note": "n" * 25_001}) == {
        "note": "note can not be longer than 25000 characters"
    }
    assert "alias" in action_problems({"alias": "a"})
    assert action_problems({}) == {}


async def test_contract_server_answers_like_opsgenie(opsgenie: Opsgenie) -> None:
    auth = {"Authorization": f"GenieKey {API_KEY}"}
    alerts = opsgenie.url + "/v2/alerts"
    async with aiohttp.ClientSession() as session:
        async with session.post(alerts, json={"alias": "x"}, headers=auth) as response:
            assert response.status == 422
            body = await response.json()
            assert body["message"] == "Request body is not processable. Please check the errors."
            assert body["errors"] == {"message": "Message can not be empty."}
            assert set(body) == {"message", "errors", "took", "requestId"}
        async with session.post(alerts, json={"message": "m"}) as response:
            assert response.status == 401
        async with session.post(alerts, data='{"message": "m"}', headers=auth) as response:
            assert response.status == 415
        async with session.get(alerts, headers=auth) as response:
            assert response.status == 405
        async with session.post(alerts, json={"message": "m"}, headers=auth) as response:
            assert response.status == 202
            body = await response.json()
            assert body["result"] == "Request will be processed"
            assert set(body) == {"result", "took", "requestId"}
