"""The PagerDuty channel against a local Events API v2 that enforces the contract."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from remediator_integrations.pagerduty import PLUGIN, PagerDutyChannel, PagerDutySettings
from remediator_integrations.pagerduty.channel import MAX_EVENT_BYTES

from remediator.plugins import (
    AttemptSummary,
    DeliveryFailed,
    DeliveryResult,
    KnownResolution,
    Notification,
    PluginError,
)

from .conftest import ROUTING_KEY, MakeChannel, PagerDuty, Scripted, event_problems, notification

HOSTILE = '"}{"x":1'


async def fail(channel: PagerDutyChannel, note: Notification) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as caught:
        await channel.send(note)
    return caught.value


async def test_trigger_sends_the_full_event(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    result = await make_channel().send(notification())

    assert result == DeliveryResult(
        summary="pagerduty trigger remediator-7 → 202 Event processed", reference="remediator-7"
    )
    [seen] = pagerduty.seen
    assert (seen.method, seen.path) == ("POST", "/v2/enqueue")
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["User-Agent"] == "remediator"
    assert seen.json() == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "remediator-7",
        "payload": {
            "summary": "web-1: HighErrorRate",
            "source": "web-1:9100",
            "severity": "error",
            "timestamp": "2024-05-01T12:30:00.000+00:00",
            "class": "HighErrorRate",
            "custom_details": {
                "priority": "P2",
                "state": "escalated",
                "rule": "restart-web",
                "reason": "verification failed: alert still firing after 5m",
                "runbook": "https://runbooks.example.com/high-error-rate",
                "incident_url": "https://remediator.example.com/incidents/7",
                "labels": {
                    "alertname": "HighErrorRate",
                    "instance": "web-1:9100",
                    "service": "web",
                },
                "annotations": {"summary": "5xx above 5%"},
                "attempts": [
                    {
                        "action": "ansible action 1",
                        "attempt": 1,
                        "outcome": "failed",
                        "summary": "restart.yml: web-1 unreachable",
                        "at": "2024-05-01T12:31:00.000+00:00",
                    }
                ],
            },
        },
        "links": [
            {
                "href": "https://remediator.example.com/incidents/7",
                "text": "Incident in remediator",
            },
            {"href": "https://runbooks.example.com/high-error-rate", "text": "Runbook"},
        ],
        "client": "remediator",
        "client_url": "https://remediator.example.com/incidents/7",
    }


@pytest.mark.parametrize("event", ["acknowledge", "resolve"])
async def test_acknowledge_and_resolve_carry_only_the_key(
    pagerduty: PagerDuty, make_channel: MakeChannel, event: Any
) -> None:
    result = await make_channel().send(notification(event=event))

    assert result.reference == "remediator-7"
    assert pagerduty.accepted == [
        {"routing_key": ROUTING_KEY, "dedup_key": "remediator-7", "event_action": event}
    ]


@pytest.mark.parametrize(
    ("priority", "severity"),
    [("P1", "critical"), ("P2", "error"), ("P3", "warning"), ("P4", "info"), ("P9", "error")],
)
async def test_severity_follows_the_priority(
    pagerduty: PagerDuty, make_channel: MakeChannel, priority: str, severity: str
) -> None:
    await make_channel().send(notification(priority=priority))
    assert pagerduty.accepted[0]["payload"]["severity"] == severity


async def test_severity_map_overrides_some_priorities(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    channel = make_channel(severity_map={"P2": "critical"})
    await channel.send(notification(priority="P2"))
    await channel.send(notification(priority="P3"))
    assert [event["payload"]["severity"] for event in pagerduty.accepted] == [
        "critical",
        "warning",
    ]


async def test_source_comes_from_settings_then_instance_then_remediator(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    await make_channel(source="prod-eu").send(notification())
    await make_channel().send(notification(labels={"alertname": "X"}))
    await make_channel().send(notification(labels={"instance": ""}))
    assert [event["payload"]["source"] for event in pagerduty.accepted] == [
        "prod-eu",
        "remediator",
        "remediator",
    ]


async def test_runbook_that_is_not_a_url_is_no_link(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    await make_channel().send(notification(runbook="ssh in and run fix.sh", incident_url=""))
    [event] = pagerduty.accepted
    assert event["links"] == []
    assert "client_url" not in event
    assert event["payload"]["custom_details"]["runbook"] == "ssh in and run fix.sh"


async def test_hostile_label_values_stay_strings(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    labels = {"service": HOSTILE, HOSTILE: "key too", "instance": HOSTILE}
    await make_channel().send(
        notification(title=HOSTILE, labels=labels, annotations={"description": HOSTILE})
    )

    [event] = pagerduty.accepted
    assert "x" not in event
    payload = event["payload"]
    assert payload["summary"] == HOSTILE
    assert payload["source"] == HOSTILE
    assert payload["custom_details"]["labels"] == labels
    assert payload["custom_details"]["annotations"] == {"description": HOSTILE}


async def test_long_summary_is_truncated_to_1024(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    await make_channel().send(notification(title="é" * 5000))
    summary = pagerduty.accepted[0]["payload"]["summary"]
    assert len(summary) == 1024
    assert summary.endswith("é…")


async def test_blank_title_gets_a_summary(pagerduty: PagerDuty, make_channel: MakeChannel) -> None:
    await make_channel().send(notification(title="  "))
    assert pagerduty.accepted[0]["payload"]["summary"] == "remediator incident 7"


async def test_oversized_details_are_slimmed_not_dropped(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    big = {f"a{i}": "x" * 1000 for i in range(600)}  # ~600 KB of annotations
    await make_channel().send(notification(annotations=big))

    [seen] = pagerduty.seen
    assert len(seen.body) <= MAX_EVENT_BYTES
    details = pagerduty.accepted[0]["payload"]["custom_details"]
    assert details["priority"] == "P2"
    assert details["incident_url"] == "https://remediator.example.com/incidents/7"
    assert "annotations" not in details
    assert "exceeded 512 KB" in details["omitted"]


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


async def test_known_resolutions_are_custom_details(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    await make_channel().send(notification(known_resolutions=KNOWN))

    details = pagerduty.accepted[0]["payload"]["custom_details"]
    assert details["known_resolutions"] == [
        {
            "note": "restarted the exporter; the disk was fine",
            "resolved_by": "alice",
            "at": "2024-04-20T09:15:00.000+00:00",
            "incident_id": 3,
            "same_key": True,
        },
        {
            "note": "scaled web to 4 replicas",
            "resolved_by": "bob",
            "at": "2024-03-02T00:00:00.000+00:00",
            "incident_id": 1,
            "same_key": False,
        },
    ]


async def test_no_known_resolutions_no_key(pagerduty: PagerDuty, make_channel: MakeChannel) -> None:
    await make_channel().send(notification())
    assert "known_resolutions" not in pagerduty.accepted[0]["payload"]["custom_details"]


async def test_hostile_known_resolutions_stay_strings(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    known = KnownResolution(HOSTILE + "\n<b>", HOSTILE, datetime(2024, 4, 1), 2, True)
    await make_channel().send(notification(known_resolutions=(known,)))

    [event] = pagerduty.accepted
    assert "x" not in event
    [sent] = event["payload"]["custom_details"]["known_resolutions"]
    assert (sent["note"], sent["resolved_by"]) == (HOSTILE + "\n<b>", HOSTILE)


async def test_long_known_resolutions_are_capped(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    known = tuple(
        KnownResolution("n" * 10_000, "r" * 1000, datetime(2024, 4, 1), i, False) for i in range(20)
    )
    await make_channel().send(notification(known_resolutions=known))

    sent = pagerduty.accepted[0]["payload"]["custom_details"]["known_resolutions"]
    assert [one["incident_id"] for one in sent] == list(range(10))  # the newest ten
    assert all(len(one["note"]) == 1024 and one["note"].endswith("n…") for one in sent)
    assert all(len(one["resolved_by"]) == 256 for one in sent)


async def test_known_resolutions_survive_slimming(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    big = {f"a{i}": "x" * 1000 for i in range(600)}  # ~600 KB of annotations
    await make_channel().send(notification(annotations=big, known_resolutions=KNOWN))

    [seen] = pagerduty.seen
    assert len(seen.body) <= MAX_EVENT_BYTES
    details = pagerduty.accepted[0]["payload"]["custom_details"]
    assert "annotations" not in details
    assert [one["incident_id"] for one in details["known_resolutions"]] == [3, 1]


async def test_long_attempt_summaries_are_capped(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    attempt = AttemptSummary("http action 1", 2, "timeout", "y" * 10_000, datetime(2024, 5, 1))
    await make_channel().send(notification(attempts=(attempt,)))
    [sent] = pagerduty.accepted[0]["payload"]["custom_details"]["attempts"]
    assert len(sent["summary"]) == 1024
    assert sent["at"] == "2024-05-01T00:00:00.000+00:00"  # naive means UTC


async def test_routing_key_from_env(
    pagerduty: PagerDuty, make_channel: MakeChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PD_ROUTING_KEY", ROUTING_KEY)
    await make_channel(routing_key_env="PD_ROUTING_KEY").send(notification())
    assert pagerduty.accepted[0]["routing_key"] == ROUTING_KEY


async def test_routing_key_file_is_read_for_every_event(
    pagerduty: PagerDuty, make_channel: MakeChannel, tmp_path: Path
) -> None:
    secret = tmp_path / "routing_key"
    secret.write_text(ROUTING_KEY + "\n")
    channel = make_channel(routing_key_file=str(secret))
    await channel.send(notification())
    rotated = "S" + ROUTING_KEY[1:]
    secret.write_text(rotated + "\n")
    await channel.send(notification(event="resolve"))

    assert [event["routing_key"] for event in pagerduty.accepted] == [ROUTING_KEY, rotated]


async def test_secret_that_disappears_is_not_retried(
    pagerduty: PagerDuty, make_channel: MakeChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PD_ROUTING_KEY", ROUTING_KEY)
    channel = make_channel(routing_key_env="PD_ROUTING_KEY")
    monkeypatch.delenv("PD_ROUTING_KEY")

    error = await fail(channel, notification())

    assert not error.retryable
    assert "environment variable PD_ROUTING_KEY is not set" in error.summary
    assert pagerduty.seen == []


def test_create_fails_when_the_secret_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    settings = PagerDutySettings.model_validate({"routing_key_env": "NO_SUCH_KEY"})
    with pytest.raises(PluginError, match="NO_SUCH_KEY is not set"):
        PLUGIN.create(settings)


async def test_invalid_event_is_not_retried_and_names_the_errors(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    error = await fail(make_channel(routing_key="too-short"), notification())

    assert not error.retryable
    assert error.retry_after is None
    assert error.summary == (
        "pagerduty trigger remediator-7 → 400 Event object is invalid: "
        "Length of 'routing_key' is incorrect (should be 32 characters)"
    )


@pytest.mark.parametrize(
    ("scripted", "retry_after"),
    [
        (Scripted(429, '{"status":"throttle event"}', {"Retry-After": "7"}), 7.0),
        (Scripted(429), None),
        (Scripted(500, "Internal Server Error"), None),
        (Scripted(502), None),
        (Scripted(503, "", {"Retry-After": "3"}), 3.0),
    ],
)
async def test_throttling_and_server_errors_are_retryable(
    pagerduty: PagerDuty, make_channel: MakeChannel, scripted: Scripted, retry_after: float | None
) -> None:
    pagerduty.script.append(scripted)

    error = await fail(make_channel(), notification())

    assert error.retryable
    assert error.retry_after == retry_after
    assert error.summary.startswith(f"pagerduty trigger remediator-7 → {scripted.status}")


@pytest.mark.parametrize("status", [403, 404, 413])
async def test_other_client_errors_are_not_retried(
    pagerduty: PagerDuty, make_channel: MakeChannel, status: int
) -> None:
    pagerduty.script.append(Scripted(status, '{"message": "nope"}'))
    error = await fail(make_channel(), notification())
    assert not error.retryable
    assert error.summary == f"pagerduty trigger remediator-7 → {status} nope"


async def test_a_retry_after_the_throttle_goes_through(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    channel = make_channel()
    pagerduty.script.append(Scripted(429, headers={"Retry-After": "1"}))
    await fail(channel, notification())
    result = await channel.send(notification())
    assert result.reference == "remediator-7"
    assert len(pagerduty.accepted) == 1


async def test_connection_refused_is_retryable(make_channel: MakeChannel) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    error = await fail(make_channel(url=f"http://127.0.0.1:{port}/v2/enqueue"), notification())

    assert error.retryable
    assert error.summary.startswith("pagerduty trigger remediator-7 → ")


async def test_timeout_is_retryable(pagerduty: PagerDuty, make_channel: MakeChannel) -> None:
    pagerduty.hang = True
    error = await fail(make_channel(timeout="200ms"), notification())
    assert error.retryable
    assert error.summary == "pagerduty trigger remediator-7 → timed out after 0.2s"


async def test_redirects_are_not_followed(pagerduty: PagerDuty, make_channel: MakeChannel) -> None:
    pagerduty.script.append(Scripted(307, headers={"Location": "http://elsewhere.invalid/"}))
    error = await fail(make_channel(), notification())
    assert not error.retryable
    assert len(pagerduty.seen) == 1


async def test_concurrent_sends_share_one_session_and_close_reopens(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    channel = make_channel()
    notes = [notification(dedup_key=f"remediator-{i}") for i in range(20)]
    await asyncio.gather(*(channel.send(note) for note in notes))
    await channel.close()
    await channel.close()
    await channel.send(notification(event="resolve"))

    keys = sorted(event["dedup_key"] for event in pagerduty.accepted)
    assert keys == sorted([f"remediator-{i}" for i in range(20)] + ["remediator-7"])


# -- the contract server itself: a lenient fake would make the tests above meaningless ----


def trigger(**changes: Any) -> dict[str, Any]:
    payload = {"summary": "s", "source": "h", "severity": "info"}
    event = {"routing_key": ROUTING_KEY, "event_action": "trigger", "payload": payload}
    for key, value in changes.items():
        if key.startswith("payload_"):
            if value is None:
                payload.pop(key.removeprefix("payload_"))
            else:
                payload[key.removeprefix("payload_")] = value
        elif value is None:
            event.pop(key)
        else:
            event[key] = value
    return event


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (trigger(routing_key=None), "'routing_key' is missing or blank"),
        (trigger(payload_summary=None), "'payload.summary' is missing or blank"),
        (trigger(payload_source=" "), "'payload.source' is missing or blank"),
        (trigger(payload_severity=None), "'payload.severity' is missing or blank"),
        (trigger(payload_severity="high"), "'payload.severity' must be one of"),
        (trigger(payload_summary="x" * 1025), "'payload.summary' is too long"),
        (trigger(payload_timestamp="yesterday"), "not a valid ISO 8601"),
        (trigger(payload_custom_details="{}"), "'payload.custom_details' must be an object"),
        (trigger(dedup_key="k" * 256), "at most 255 characters"),
        (trigger(event_action="escalate"), "'event_action' must be one of"),
        (trigger(links=[{"text": "no href"}]), "'links' must be an array of objects"),
        (trigger(payload=None), "'payload' is missing"),
        (trigger(severity="info"), "'severity' is not a known field"),
        ({"routing_key": ROUTING_KEY, "event_action": "resolve"}, "'dedup_key' is missing"),
    ],
)
def test_contract_rejects(event: dict[str, Any], error: str) -> None:
    assert any(error in problem for problem in event_problems(event)), event_problems(event)


async def test_contract_server_answers_like_pagerduty(pagerduty: PagerDuty) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(pagerduty.url, json=trigger(payload_source=None)) as response:
            assert response.status == 400
            assert await response.json() == {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": ["'payload.source' is missing or blank"],
            }
        async with session.post(pagerduty.url, data=json.dumps(trigger())) as response:
            assert response.status == 400  # no Content-Type: application/json
        async with session.post(pagerduty.url, json=trigger()) as response:
            assert response.status == 202
            body = await response.json()
            assert (body["status"], body["message"]) == ("success", "Event processed")
            assert len(body["dedup_key"]) == 32
