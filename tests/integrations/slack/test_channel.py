"""The Slack channel against a local webhook that enforces Slack's contract."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from remediator_integrations.slack import SlackChannel
from remediator_integrations.slack.message import MAX_BLOCKS, build_message

from remediator.plugins import AttemptSummary, DeliveryFailed, KnownResolution

from .conftest import WEBHOOK_PATH, FakeSlack, Reply, check_blocks, notification

Make = Callable[..., SlackChannel]
DATE_TOKEN = re.compile(r"<!date\^\d+\^\{date_short_pretty\} \{time\}\|[\d: -]+UTC>")
HOSTILE = ("<!channel>", "<https://evil.example|click>", "*bold*", "[x](https://evil)", "a&b")


def texts(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every text object in a message's blocks."""
    for block in payload["blocks"]:
        for key in ("text", "accessory"):
            if isinstance(block.get(key), dict):
                yield block[key] if key == "text" else block[key]["text"]
        for item in block.get("fields", []) + block.get("elements", []):
            yield item["text"] if item.get("type") == "button" else item


def buttons(payload: dict[str, Any]) -> dict[str, str]:
    found = {}
    for block in payload["blocks"]:
        elements = [*block.get("elements", []), block.get("accessory") or {}]
        for element in elements:
            if element.get("type") == "button":
                found[element["text"]["text"]] = element["url"]
    return found


async def fail(channel: SlackChannel, **changes: Any) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as caught:
        await channel.send(notification(**changes))
    return caught.value


async def test_trigger_posts_block_kit_json(slack: FakeSlack, make_channel: Make) -> None:
    result = await make_channel(webhook_url=slack.url).send(notification())

    assert result.summary == "Slack webhook 127.0.0.1 → 200 ok"
    assert slack.content_types == ["application/json; charset=utf-8"]
    [payload] = slack.received
    assert payload["text"] == (
        "[P1] web-1 memory leak — verification failed: alert still firing after 5m"
    )
    kinds = [block["type"] for block in payload["blocks"]]
    assert kinds == ["header", "section", "section", "section", "section", "section", "actions"]
    assert payload["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": "web-1 memory leak",
        "emoji": False,
    }
    summary = payload["blocks"][1]
    assert summary["text"]["text"] == "verification failed: alert still firing after 5m"
    shown = [field["text"] for field in summary["fields"]]
    assert shown[:3] == ["*Priority*\nP1", "*State*\nescalated", "*Rule*\nmemory-leak"]
    assert shown[3].startswith("*Opened*\n<!date^1714564800^")
    labels = [field["text"] for field in payload["blocks"][2]["fields"]]
    assert labels == ["alertname: MemoryLeak", "instance: web-1", "severity: critical"]
    assert payload["blocks"][3]["text"]["text"] == "*What automation tried*"
    assert payload["blocks"][4]["text"]["text"] == (
        "1. ansible action 1, attempt 1: failed — restart-service.yml: web-1 unreachable"
    )
    assert payload["blocks"][5]["text"]["text"] == (
        "Runbook: https://runbooks.example.com/memory-leak"
    )
    assert buttons(payload) == {
        "Open runbook": "https://runbooks.example.com/memory-leak",
        "Acknowledge": "https://remediator.example.com/ack/7?sig=abc&exp=1",
        "Open incident": "https://remediator.example.com/incidents/7",
    }


async def test_acknowledge_button_only_with_a_link(slack: FakeSlack, make_channel: Make) -> None:
    await make_channel(webhook_url=slack.url).send(notification(acknowledge_url=None))

    assert set(buttons(slack.received[0])) == {"Open runbook", "Open incident"}


async def test_runbook_that_is_not_a_url_is_text_only(slack: FakeSlack, make_channel: Make) -> None:
    runbook = "ssh web-1 and run `systemctl restart app`; javascript:alert(1)"
    channel = make_channel(webhook_url=slack.url)
    await channel.send(notification(runbook=runbook))
    await channel.send(notification(runbook="javascript:alert(1)"))

    for payload in slack.received:
        assert "Open runbook" not in buttons(payload)
    assert any(t["text"] == f"Runbook: {runbook}" for t in texts(slack.received[0]))


@pytest.mark.parametrize(
    ("event", "reason", "expected"),
    [
        ("acknowledge", "acknowledged by alice", "Acknowledged: web-1 memory leak"),
        ("resolve", "alert resolved after restart", "Resolved: web-1 memory leak"),
    ],
)
async def test_acknowledge_and_resolve_are_short_messages(
    slack: FakeSlack, make_channel: Make, event: str, reason: str, expected: str
) -> None:
    await make_channel(webhook_url=slack.url).send(notification(event=event, reason=reason))

    [payload] = slack.received
    assert payload["text"] == f"{expected} — {reason}"
    assert [block["type"] for block in payload["blocks"]] == ["section", "context", "actions"]
    assert payload["blocks"][0]["text"]["text"] == expected
    assert payload["blocks"][1]["elements"][0]["text"] == reason
    assert buttons(payload) == {"Open incident": "https://remediator.example.com/incidents/7"}


async def test_many_and_long_labels_stay_within_block_kit_limits(
    slack: FakeSlack, make_channel: Make
) -> None:
    labels = {f"label_{index:03}": "v" * 50 for index in range(200)}
    labels["label_000"] = "x" * 10_000
    attempts = tuple(
        AttemptSummary("ansible action 1", n, "failed", "e" * 1000, datetime.now(UTC))
        for n in range(1, 40)
    )
    long = notification(
        title="t" * 500, reason="r" * 5000, labels=labels, attempts=attempts, runbook="k" * 4000
    )

    await make_channel(webhook_url=slack.url).send(long)

    [payload] = slack.received  # the fake answered 200, not 400 invalid_blocks
    assert len(payload["blocks"][0]["text"]["text"]) == 150
    label_sections = [b for b in payload["blocks"] if "fields" in b][1:]
    fields = [field["text"] for section in label_sections for field in section["fields"]]
    assert len(fields) == 30
    assert len(fields[0]) == 2000
    assert fields[0].endswith("…")
    assert fields[-1].startswith("171 more labels: label_029, label_030, ")
    tried = payload["blocks"][len(label_sections) + 3]["text"]["text"]
    assert tried.startswith("(")
    assert "earlier attempts not shown" in tried
    last = tried.split("\n")[-1]
    assert last.startswith("39. ansible action 1, attempt 39: failed — eee")
    assert len(last) == 300
    assert last.endswith("…")
    assert len(payload["text"]) <= 3000


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


async def test_known_resolutions_section(slack: FakeSlack, make_channel: Make) -> None:
    await make_channel(webhook_url=slack.url).send(notification(known_resolutions=KNOWN))

    [payload] = slack.received
    blocks = payload["blocks"]
    kinds = [block["type"] for block in blocks]
    # header, summary, labels, what automation tried (2), known resolutions (1 + 2 * 2),
    # runbook, buttons
    assert kinds == [
        "header",
        *["section"] * 4,
        "section",
        "section",
        "context",
        "section",
        "context",
        "section",
        "actions",
    ]
    assert blocks[5]["text"]["text"] == "*Known resolutions*"
    assert blocks[6]["text"] == {
        "type": "plain_text",
        "text": "restarted the exporter; the disk was fine",
        "emoji": False,
    }
    assert blocks[7]["elements"] == [
        {
            "type": "plain_text",
            "text": "incident 3 · same service/host · resolved by alice · 2024-04-20 09:15 UTC",
            "emoji": False,
        }
    ]
    assert blocks[8]["text"]["text"] == "scaled web to 4 replicas"
    assert blocks[9]["elements"][0]["text"] == (
        "incident 1 · same rule · resolved by bob · 2024-03-02 00:00 UTC"
    )
    assert blocks[10]["text"]["text"].startswith("Runbook: ")


async def test_no_known_resolutions_no_section(slack: FakeSlack, make_channel: Make) -> None:
    await make_channel(webhook_url=slack.url).send(notification())

    [payload] = slack.received
    assert all(t["text"] != "*Known resolutions*" for t in texts(payload))
    assert "context" not in [block["type"] for block in payload["blocks"]]


async def test_hostile_known_resolutions_are_plain_text(
    slack: FakeSlack, make_channel: Make
) -> None:
    hostile = " ".join(HOSTILE)
    known = KnownResolution(hostile, hostile, datetime(2024, 4, 1, tzinfo=UTC), 2, True)
    await make_channel(webhook_url=slack.url).send(notification(known_resolutions=(known,)))

    [payload] = slack.received
    for obj in texts(payload):
        if obj["type"] == "mrkdwn":
            assert "<" not in DATE_TOKEN.sub("", obj["text"]), obj
    plain = [obj["text"] for obj in texts(payload) if obj["type"] == "plain_text"]
    assert hostile in plain  # the note, verbatim
    assert any(f"resolved by {hostile} · " in text for text in plain)


async def test_many_and_long_known_resolutions_stay_within_limits(
    slack: FakeSlack, make_channel: Make
) -> None:
    labels = {f"label_{index:03}": "v" for index in range(200)}
    attempts = tuple(
        AttemptSummary("ansible action 1", n, "failed", "e" * 1000, datetime.now(UTC))
        for n in range(1, 40)
    )
    known = tuple(
        KnownResolution("n" * 10_000, "r\n" * 5000, datetime(2024, 4, 1), i, False)
        for i in range(30)
    )
    await make_channel(webhook_url=slack.url).send(
        notification(labels=labels, attempts=attempts, known_resolutions=known)
    )

    [payload] = slack.received  # the fake answered 200, not 400 invalid_blocks
    blocks = payload["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    assert blocks[-1]["type"] == "actions"
    contexts = [block["elements"][0]["text"] for block in blocks if block["type"] == "context"]
    assert [text.split(" · ")[0] for text in contexts] == [f"incident {i}" for i in range(5)]
    assert all("\n" not in text and len(text) <= 2000 for text in contexts)
    notes = [t["text"] for t in texts(payload) if t["text"].startswith("nnn")]
    assert len(notes) == 5
    assert all(len(note) == 1000 and note.endswith("…") for note in notes)


def test_block_limit_checker_rejects_what_slack_rejects() -> None:
    payload = build_message(notification())
    check_blocks(payload["blocks"])
    with pytest.raises(ValueError, match="150"):
        check_blocks([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}])
    with pytest.raises(ValueError, match="50 blocks"):
        check_blocks([{"type": "divider"}] * 51)
    fields = [{"type": "plain_text", "text": "f"}] * 11
    with pytest.raises(ValueError, match=r"1\.\.10"):
        check_blocks([{"type": "section", "fields": fields}])


async def test_fake_answers_invalid_blocks_like_slack(slack: FakeSlack, make_channel: Make) -> None:
    """The contract server really refuses oversize blocks (so passing tests mean something)."""
    import aiohttp

    header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    async with (
        aiohttp.ClientSession() as session,
        session.post(slack.url, json={"text": "x", "blocks": [header]}) as response,
    ):
        assert (response.status, await response.text()) == (400, "invalid_blocks")


async def test_hostile_alert_data_is_shown_never_acted_on(
    slack: FakeSlack, make_channel: Make
) -> None:
    hostile = " ".join(HOSTILE)
    attempt = AttemptSummary("ansible action 1", 1, "failed", hostile, datetime.now(UTC))
    await make_channel(webhook_url=slack.url).send(
        notification(
            title=hostile,
            reason=hostile,
            rule="rule <!here>",
            labels={"team": hostile, "<!channel>": "x"},
            attempts=(attempt,),
            runbook=hostile,
        )
    )

    [payload] = slack.received
    for obj in texts(payload):
        if obj["type"] == "mrkdwn":
            # Our own date token is the only control sequence allowed in mrkdwn.
            raw = DATE_TOKEN.sub("", obj["text"])
            assert "<" not in raw, obj
            assert ">" not in raw, obj
    assert "rule &lt;!here&gt;" in [
        f["text"].split("\n")[1] for f in payload["blocks"][1]["fields"]
    ]
    plain = [obj["text"] for obj in texts(payload) if obj["type"] == "plain_text"]
    assert f"team: {hostile}" in plain  # shown verbatim, as plain text
    assert "<!channel>: x" in plain
    assert payload["text"] == (
        "[P1] &lt;!channel&gt; &lt;https://evil.example|click&gt; *bold* [x](https://evil) "
        "a&amp;b — &lt;!channel&gt; &lt;https://evil.example|click&gt; *bold* "
        "[x](https://evil) a&amp;b"
    )
    assert "Open runbook" not in buttons(payload)


@pytest.mark.parametrize(
    ("reply", "retryable", "retry_after", "summary"),
    [
        (Reply(429, "rate_limited", {"Retry-After": "30"}), True, 30.0, "429 rate_limited"),
        (Reply(500, "rollup_error"), True, None, "500 rollup_error"),
        (Reply(503, "", {"Retry-After": "5"}), True, 5.0, "503"),
        (
            Reply(410, "channel_is_archived"),
            False,
            None,
            "410 channel_is_archived (the webhook's channel is archived; unarchive it or use "
            "another)",
        ),
        (Reply(404, "no_service"), False, None, "404 no_service (the webhook was removed"),
        (Reply(403, "action_prohibited"), False, None, "403 action_prohibited (a workspace"),
        (Reply(403, "invalid_token"), False, None, "403 invalid_token"),
        (Reply(400, "invalid_payload"), False, None, "400 invalid_payload"),
    ],
)
async def test_error_answers(
    slack: FakeSlack,
    make_channel: Make,
    reply: Reply,
    retryable: bool,
    retry_after: float | None,
    summary: str,
) -> None:
    slack.replies.append(reply)

    error = await fail(make_channel(webhook_url=slack.url))

    assert error.summary.startswith(f"Slack webhook 127.0.0.1 → {summary}")
    assert error.retryable is retryable
    assert error.retry_after == retry_after
    assert "s3cr3t" not in error.summary


async def test_timeout_is_retryable(slack: FakeSlack, make_channel: Make) -> None:
    slack.replies.append(Reply(200, "ok", delay=5))

    error = await fail(make_channel(webhook_url=slack.url, timeout="200ms"))

    assert error.retryable
    assert error.summary == "Slack webhook 127.0.0.1 → timed out after 0.2s"


async def test_unknown_webhook_path_is_not_retried(slack: FakeSlack, make_channel: Make) -> None:
    error = await fail(make_channel(webhook_url=slack.base + "/services/T0001/B0001/revoked"))

    assert not error.retryable
    assert error.summary.startswith("Slack webhook 127.0.0.1 → 404 no_service")
    assert "revoked" not in error.summary


async def test_connection_refused_is_retryable_and_hides_the_token(make_channel: Make) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    error = await fail(make_channel(webhook_url=f"http://127.0.0.1:{port}{WEBHOOK_PATH}"))

    assert error.retryable
    assert error.retry_after is None
    assert error.summary.startswith("Slack webhook 127.0.0.1 → ")
    assert "s3cr3t" not in error.summary


async def test_webhook_url_is_read_at_send_time(
    slack: FakeSlack, make_channel: Make, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    secret = tmp_path / "slack-url"
    channel = make_channel(webhook_url_file=secret)
    missing = await fail(channel)
    assert not missing.retryable
    assert missing.summary.startswith("Slack webhook: webhook_url_file: cannot read")

    secret.write_text("not a url\n")
    bad = await fail(channel)
    assert bad.summary == (
        "Slack webhook: webhook_url_file is not an http(s) URL; use the incoming webhook URL "
        "Slack shows, https://hooks.slack.com/services/…"
    )

    secret.write_text(slack.url + "\n")
    await channel.send(notification())
    monkeypatch.setenv("SLACK_URL", slack.url)
    await make_channel(webhook_url_env="SLACK_URL").send(notification())
    assert len(slack.received) == 2
