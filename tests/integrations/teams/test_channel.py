"""The Teams channel against a local workflow webhook that enforces the trigger's contract."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from remediator_integrations.teams import TeamsChannel, escape_markdown
from remediator_integrations.teams.card import MAX_CARD_BYTES, build_message

from remediator.plugins import AttemptSummary, DeliveryFailed, KnownResolution

from .conftest import QUERY, RUN_ID, SIGNATURE, WORKFLOW_PATH, FakeTeams, Reply, notification

Make = Callable[..., TeamsChannel]
HOSTILE = "[x](https://evil) **bold** <at>everyone</at> &amp; `code` _i_ ~~s~~"
# After escaping, no unescaped Markdown syntax character may remain.
UNESCAPED = re.compile(r"(?<!\\)[\[\]*_`~<>&]")


def card(payload: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = payload["attachments"][0]["content"]
    return content


def facts(payload: dict[str, Any]) -> dict[str, str]:
    [fact_set] = [e for e in card(payload)["body"] if e["type"] == "FactSet"]
    return {fact["title"]: fact["value"] for fact in fact_set["facts"]}


def texts(payload: dict[str, Any]) -> list[str]:
    return [e["text"] for e in card(payload)["body"] if e["type"] == "TextBlock"]


def links(payload: dict[str, Any]) -> dict[str, str]:
    return {action["title"]: action["url"] for action in card(payload)["actions"]}


async def fail(channel: TeamsChannel, **changes: Any) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as caught:
        await channel.send(notification(**changes))
    return caught.value


async def test_trigger_posts_an_adaptive_card_message(teams: FakeTeams, make_channel: Make) -> None:
    result = await make_channel(webhook_url=teams.url).send(notification())

    assert result.summary == "Teams workflow 127.0.0.1 → 202 Accepted"
    assert result.reference == RUN_ID
    assert teams.raw_queries == [QUERY]  # the signed query arrived byte for byte
    [payload] = teams.received
    assert payload["type"] == "message"
    attachment = payload["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    assert card(payload)["version"] == "1.4"
    title = card(payload)["body"][0]
    assert title == {
        "type": "TextBlock",
        "text": "web-1 memory leak",
        "wrap": True,
        "weight": "Bolder",
        "size": "Medium",
    }
    assert facts(payload) == {
        "Priority": "P1",
        "State": "escalated",
        "Rule": "memory-leak",
        "Opened": "2024-05-01 12:00 UTC",
        "alertname": "MemoryLeak",
        "instance": "web-1",
        "severity": "critical",
    }
    assert texts(payload)[1:] == [
        "verification failed: alert still firing after 5m",
        "What automation tried",
        "1. ansible action 1, attempt 1: failed — restart-service.yml: web-1 unreachable",
        "Runbook",
        "https://runbooks.example.com/memory-leak",
    ]
    assert links(payload) == {
        "Acknowledge": "https://remediator.example.com/ack/7?sig=abc&exp=1",
        "Open incident": "https://remediator.example.com/incidents/7",
        "Open runbook": "https://runbooks.example.com/memory-leak",
    }


async def test_acknowledge_link_only_when_given(teams: FakeTeams, make_channel: Make) -> None:
    await make_channel(webhook_url=teams.url).send(notification(acknowledge_url=None))

    assert set(links(teams.received[0])) == {"Open incident", "Open runbook"}


@pytest.mark.parametrize(
    ("event", "reason", "title"),
    [
        ("acknowledge", "acknowledged by alice", "Acknowledged: web-1 memory leak"),
        ("resolve", "alert resolved after restart", "Resolved: web-1 memory leak"),
    ],
)
async def test_acknowledge_and_resolve_are_short_cards(
    teams: FakeTeams, make_channel: Make, event: str, reason: str, title: str
) -> None:
    await make_channel(webhook_url=teams.url).send(notification(event=event, reason=reason))

    [payload] = teams.received
    assert texts(payload) == [title, reason]
    assert links(payload) == {"Open incident": "https://remediator.example.com/incidents/7"}


async def test_hostile_alert_data_is_escaped(teams: FakeTeams, make_channel: Make) -> None:
    attempt = AttemptSummary("ansible action 1", 1, "failed", HOSTILE, datetime.now(UTC))
    await make_channel(webhook_url=teams.url).send(
        notification(
            title=HOSTILE,
            reason=f"{HOSTILE}\n# heading\n- item\n1. first",
            labels={"team": HOSTILE, "[k](https://evil)": "- x"},
            attempts=(attempt,),
            runbook=HOSTILE,
        )
    )

    [payload] = teams.received
    for text in [*texts(payload), *facts(payload), *facts(payload).values()]:
        assert not UNESCAPED.search(text), text
    assert facts(payload)["team"] == (
        "\\[x\\](https://evil) \\*\\*bold\\*\\* \\<at\\>everyone\\</at\\> \\&amp; \\`code\\` "
        "\\_i\\_ \\~\\~s\\~\\~"
    )
    assert facts(payload)["\\[k\\](https://evil)"] == "\\- x"
    reason = texts(payload)[1]
    assert reason.split("\n\n")[1:] == ["\\# heading", "\\- item", "1\\. first"]
    assert "Open runbook" not in links(payload)


def test_escape_markdown_keeps_plain_text_and_breaks_syntax() -> None:
    assert escape_markdown("web-1 memory 42%", 100) == "web-1 memory 42%"
    assert escape_markdown("-5", 100) == "\\-5"
    assert escape_markdown("2024. ok", 100) == "2024\\. ok"
    assert escape_markdown("a\nb", 100) == "a b"
    assert escape_markdown("a\n\n\nb", 100, multiline=True) == "a\n\nb"
    assert escape_markdown("x" * 10, 5) == "xxxx…"


async def test_big_alerts_fit_in_a_teams_message(teams: FakeTeams, make_channel: Make) -> None:
    labels = {f"label_{index:03}": "ü*" * 400 for index in range(300)}
    attempts = tuple(
        AttemptSummary("ansible action 1", n, "failed", "[e]" * 500, datetime.now(UTC))
        for n in range(1, 60)
    )
    big = notification(
        title="t" * 2000, reason="_r_" * 3000, labels=labels, attempts=attempts, runbook="k" * 5000
    )
    size = len(json.dumps(build_message(big), ensure_ascii=False).encode())
    assert size <= MAX_CARD_BYTES

    await make_channel(webhook_url=teams.url).send(big)

    [payload] = teams.received  # and the fixture checks Teams would not have dropped it
    shown = facts(payload)
    more = [title for title in shown if title.endswith("more labels")]
    assert more
    assert shown[more[0]].startswith("label\\_")
    assert any("earlier attempts not shown" in text for text in texts(payload))


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


async def test_known_resolutions_are_text_blocks(teams: FakeTeams, make_channel: Make) -> None:
    await make_channel(webhook_url=teams.url).send(notification(known_resolutions=KNOWN))

    [payload] = teams.received
    assert texts(payload)[4:] == [
        "Known resolutions",
        "restarted the exporter; the disk was fine",
        "incident 3 · same service/host · resolved by alice · 2024-04-20 09:15 UTC",
        "scaled web to 4 replicas",
        "incident 1 · same rule · resolved by bob · 2024-03-02 00:00 UTC",
        "Runbook",
        "https://runbooks.example.com/memory-leak",
    ]
    body = card(payload)["body"]
    heading = next(e for e in body if e.get("text") == "Known resolutions")
    assert heading["weight"] == "Bolder"


async def test_no_known_resolutions_no_section(teams: FakeTeams, make_channel: Make) -> None:
    await make_channel(webhook_url=teams.url).send(notification())
    assert "Known resolutions" not in texts(teams.received[0])


async def test_hostile_known_resolutions_are_escaped(teams: FakeTeams, make_channel: Make) -> None:
    known = KnownResolution(
        f"{HOSTILE}\n# heading\n- item", HOSTILE, datetime(2024, 4, 1, tzinfo=UTC), 2, True
    )
    await make_channel(webhook_url=teams.url).send(notification(known_resolutions=(known,)))

    [payload] = teams.received
    for text in texts(payload):
        assert not UNESCAPED.search(text), text
    shown = texts(payload)
    note = shown[shown.index("Known resolutions") + 1]
    assert note.split("\n\n")[1:] == ["\\# heading", "\\- item"]
    assert shown[shown.index("Known resolutions") + 2].startswith(
        "incident 2 · same service/host · resolved by \\[x\\](https://evil) "
    )


async def test_many_and_long_known_resolutions_fit(teams: FakeTeams, make_channel: Make) -> None:
    known = tuple(
        KnownResolution("[n]" * 5000, "*r*" * 500, datetime(2024, 4, 1), i, False)
        for i in range(20)
    )
    await make_channel(webhook_url=teams.url).send(notification(known_resolutions=known))

    [payload] = teams.received  # and the fixture checks Teams would not have dropped it
    shown = texts(payload)
    notes = [text for text in shown if text.startswith("\\[n\\]")]
    assert 1 <= len(notes) <= 5
    assert all(text.endswith("…") for text in notes)
    assert shown[shown.index("Known resolutions") + 2].startswith("incident 0 · ")
    assert f"({20 - len(notes)} more; open the incident for them)" in shown

    labels = {f"label_{index:03}": "ü*" * 400 for index in range(300)}
    big = notification(labels=labels, reason="_r_" * 3000, known_resolutions=known)
    assert len(json.dumps(build_message(big), ensure_ascii=False).encode()) <= MAX_CARD_BYTES
    assert "Known resolutions" in texts(build_message(big))


@pytest.mark.parametrize(
    ("reply", "retryable", "retry_after", "summary"),
    [
        (
            Reply(
                429,
                {"error": {"code": "WorkflowRequestsThrottled", "message": "slow down"}},
                {"Retry-After": "17"},
            ),
            True,
            17.0,
            "429 Too Many Requests: WorkflowRequestsThrottled: slow down",
        ),
        (Reply(500, "boom"), True, None, "500 Internal Server Error: boom"),
        (Reply(502, "", {"Retry-After": "3"}), True, 3.0, "502 Bad Gateway"),
        (
            Reply(400, {"error": {"code": "InvalidRequestContent", "message": "bad"}}),
            False,
            None,
            "400 Bad Request: InvalidRequestContent: bad",
        ),
        (
            Reply(403, {"error": {"code": "Forbidden", "message": "no"}}),
            False,
            None,
            "403 Forbidden: Forbidden: no (the URL's signature",
        ),
        (Reply(410, "gone"), False, None, "410 Gone: gone"),
    ],
)
async def test_error_answers(
    teams: FakeTeams,
    make_channel: Make,
    reply: Reply,
    retryable: bool,
    retry_after: float | None,
    summary: str,
) -> None:
    teams.replies.append(reply)

    error = await fail(make_channel(webhook_url=teams.url))

    assert error.summary.startswith(f"Teams workflow 127.0.0.1 → {summary}"), error.summary
    assert error.retryable is retryable
    assert error.retry_after == retry_after


async def test_timeout_is_retryable(teams: FakeTeams, make_channel: Make) -> None:
    teams.replies.append(Reply(202, delay=5))

    error = await fail(make_channel(webhook_url=teams.url, timeout="200ms"))

    assert error.retryable
    assert error.summary == "Teams workflow 127.0.0.1 → timed out after 0.2s"


async def test_wrong_signature_is_not_retried(teams: FakeTeams, make_channel: Make) -> None:
    url = teams.url.replace(SIGNATURE, "forged")

    error = await fail(make_channel(webhook_url=url))

    assert not error.retryable
    assert error.summary == (
        "Teams workflow 127.0.0.1 → 401 Unauthorized: DirectApiInvalidAuthorizationSignature: "
        "The provided authorization signature is not valid. (the URL's signature is wrong or "
        "was regenerated; copy the URL again)"
    )
    assert teams.received == []


async def test_deleted_workflow_is_not_retried(teams: FakeTeams, make_channel: Make) -> None:
    url = teams.url.replace("0f1e2d3c4b5a", "deleted")

    error = await fail(make_channel(webhook_url=url))

    assert not error.retryable
    assert error.summary.startswith("Teams workflow 127.0.0.1 → 404 Not Found: WorkflowNotFound")


async def test_fake_refuses_what_the_trigger_refuses(teams: FakeTeams) -> None:
    """The contract server really checks the body, so passing tests mean something."""
    bodies: list[Any] = [
        {"text": "legacy connector payload"},
        {"type": "message", "attachments": [{"contentType": "text/plain", "content": {}}]},
        {**build_message(notification()), "attachments": []},
    ]
    async with aiohttp.ClientSession() as session:
        for body in bodies:
            async with session.post(teams.url, json=body) as response:
                answer = await response.json()
                assert response.status == 400
                assert answer["error"]["code"] == "TriggerInputSchemaMismatch"
    assert teams.received == []


async def test_connection_refused_is_retryable_and_hides_the_signature(make_channel: Make) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    error = await fail(make_channel(webhook_url=f"http://127.0.0.1:{port}{WORKFLOW_PATH}?{QUERY}"))

    assert error.retryable
    assert error.summary.startswith("Teams workflow 127.0.0.1 → ")
    assert SIGNATURE not in error.summary


async def test_webhook_url_is_read_at_send_time(
    teams: FakeTeams, make_channel: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = make_channel(webhook_url_env="TEAMS_URL")
    missing = await fail(channel)
    assert not missing.retryable
    assert missing.summary == (
        "Teams workflow: webhook_url_env: environment variable TEAMS_URL is not set"
    )

    monkeypatch.setenv("TEAMS_URL", teams.url)
    await channel.send(notification())
    assert len(teams.received) == 1
