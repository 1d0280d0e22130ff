"""The webhook channel against a real receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
import uuid
from collections.abc import Iterator
from email.utils import format_datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from remediator_integrations.webhook import PLUGIN, WebhookChannel, WebhookSettings, sign

from remediator.plugins import DeliveryFailed, KnownResolution, PluginError

from .conftest import NOW, SECRET, Make, Receiver, notification


def http_date(seconds_after_now: int) -> str:
    """An HTTP-date (RFC 9110) that many seconds after NOW."""
    return format_datetime(dt.datetime.fromtimestamp(NOW + seconds_after_now, dt.UTC), usegmt=True)


@contextlib.contextmanager
def port_that_refuses() -> Iterator[int]:
    """A port on 127.0.0.1 that is bound but not listening: connections are refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


async def failure(channel: WebhookChannel, **fields: object) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as caught:
        await channel.send(notification(**fields))
    return caught.value


async def test_delivers_the_signed_document(receiver: Receiver, make_channel: Make) -> None:
    result = await make_channel(receiver.url).send(notification())

    [delivery] = receiver.deliveries
    assert delivery.verdict == "accepted"
    headers = delivery.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Remediator-Timestamp"] == "1714564800"
    assert headers["X-Remediator-Event"] == "trigger"
    assert headers["X-Remediator-Signature"] == sign(SECRET, "1714564800", delivery.body)
    delivery_id = headers["X-Remediator-Delivery"]
    assert result.reference == delivery_id
    assert result.summary == f"webhook POST {receiver.url} → 200 OK"
    assert json.loads(delivery.body) == {
        "version": 1,
        "event": "trigger",
        "delivery_id": delivery_id,
        "incident": {
            "id": 42,
            "dedup_key": "remediator-42",
            "title": "Disk full on db-1",
            "priority": "P1",
            "state": "escalated",
            "rule": "disk-full",
            "reason": "remediation failed",
            "labels": {"alertname": "DiskFull", "instance": "db-1:9100"},
            "annotations": {"summary": "/var is 99% full"},
            "runbook": "https://runbooks.example.com/disk-full",
            "opened_at": "2024-05-01T11:30:00Z",
            "url": "https://remediator.example.com/incidents/42",
            "acknowledge_url": "https://remediator.example.com/ack/42?sig=abc",
            "approval_url": None,
        },
        "attempts": [
            {
                "action": "ansible action 1",
                "attempt": 1,
                "outcome": "failed",
                "summary": "rc=2",
                "at": "2024-05-01T11:30:00Z",
            }
        ],
        "known_resolutions": [],
        "sent_at": "2024-05-01T12:00:00Z",
    }


async def test_known_resolutions_are_in_the_document(
    receiver: Receiver, make_channel: Make
) -> None:
    known = KnownResolution(
        note='grew /var "by 50G"',
        resolved_by="dana",
        at=dt.datetime.fromtimestamp(NOW, dt.UTC),
        incident_id=7,
        same_key=False,
    )
    await make_channel(receiver.url).send(notification(known_resolutions=(known,)))
    [delivery] = receiver.deliveries
    assert json.loads(delivery.body)["known_resolutions"] == [
        {
            "incident_id": 7,
            "note": 'grew /var "by 50G"',
            "resolved_by": "dana",
            "at": "2024-05-01T12:00:00Z",
            "same_key": False,
        }
    ]


async def test_optional_fields_are_null_and_values_stay_literal(
    receiver: Receiver, make_channel: Make
) -> None:
    labels = {"service": '{{ 7*7 }}"}, "x": "<script>', "zone": "zürich"}
    await make_channel(receiver.url).send(
        notification(event="resolve", labels=labels, runbook=None, rule=None, acknowledge_url=None)
    )

    [delivery] = receiver.accepted
    document = json.loads(delivery.body)
    assert delivery.headers["X-Remediator-Event"] == "resolve"
    assert document["event"] == "resolve"
    assert document["incident"]["labels"] == labels
    assert [document["incident"][key] for key in ("runbook", "rule", "acknowledge_url")] == [
        None,
        None,
        None,
    ]


async def test_static_headers_are_sent(receiver: Receiver, make_channel: Make) -> None:
    await make_channel(receiver.url, headers={"X-Team": "sre"}).send(notification())

    assert receiver.accepted[0].headers["X-Team"] == "sre"


async def test_a_captured_delivery_cannot_be_replayed(
    receiver: Receiver, make_channel: Make
) -> None:
    await make_channel(receiver.url).send(notification())
    [original] = receiver.deliveries
    headers = {name: original.headers[name] for name in original.headers if "Remediator" in name}
    tampered = original.body.replace(b'"P1"', b'"P4"')
    fresh = str(int(NOW) + 60)

    async with aiohttp.ClientSession() as attacker:

        async def replay(body: bytes, **changed: str) -> int:
            sent = {**headers, "Content-Type": "application/json", **changed}
            async with attacker.post(receiver.url, data=body, headers=sent) as response:
                return response.status

        assert await replay(original.body) == 200  # same id: dropped, not acted upon
        assert await replay(tampered) == 401
        assert await replay(original.body, **{"X-Remediator-Timestamp": fresh}) == 401
        receiver.now = NOW + 301
        assert await replay(original.body) == 401  # outside the window

    verdicts = [d.verdict for d in receiver.deliveries]
    assert verdicts == ["accepted", "duplicate", "bad signature", "bad signature", "bad signature"]


async def test_a_retry_keeps_its_delivery_id_and_is_signed_afresh(
    receiver: Receiver, make_channel: Make
) -> None:
    now = [NOW]
    channel = make_channel(receiver.url, clock=lambda: now[0])
    receiver.replies.append(web.Response(status=503))
    with pytest.raises(DeliveryFailed):
        await channel.send(notification(notification_id=17))
    now[0] = receiver.now = NOW + 90
    result = await channel.send(notification(notification_id=17))  # the core's retry

    one, two = receiver.accepted
    assert result.reference == "remediator-42-17"
    for delivery in (one, two):
        assert delivery.headers["X-Remediator-Delivery"] == "remediator-42-17"
        assert json.loads(delivery.body)["delivery_id"] == "remediator-42-17"
    assert one.headers["X-Remediator-Timestamp"] == "1714564800"
    assert two.headers["X-Remediator-Timestamp"] == "1714564890"
    assert two.headers["X-Remediator-Signature"] == sign(SECRET, "1714564890", two.body)
    assert json.loads(two.body)["sent_at"] == "2024-05-01T12:01:30Z"


async def test_a_retry_of_a_handled_delivery_is_dropped_by_the_receiver(
    receiver: Receiver, make_channel: Make
) -> None:
    receiver.delays.append(1)  # it does the work, but answers after the sender gave up
    channel = make_channel(receiver.url, timeout="200ms")

    timed_out = await failure(channel, notification_id=17)
    retried = await channel.send(notification(notification_id=17))

    assert timed_out.retryable
    assert retried.reference == "remediator-42-17"
    assert [d.verdict for d in receiver.deliveries] == ["accepted", "duplicate"]


async def test_without_a_notification_id_every_attempt_has_a_new_uuid(
    receiver: Receiver, make_channel: Make
) -> None:
    channel = make_channel(receiver.url)
    first = await channel.send(notification())
    second = await channel.send(notification())

    assert first.reference is not None
    assert second.reference is not None
    assert first.reference != second.reference
    assert str(uuid.UUID(first.reference)) == first.reference
    assert [d.verdict for d in receiver.deliveries] == ["accepted", "accepted"]


async def test_distinct_notifications_have_distinct_ids(
    receiver: Receiver, make_channel: Make
) -> None:
    channel = make_channel(receiver.url)
    trigger = await channel.send(notification(notification_id=17))
    resolve = await channel.send(notification(notification_id=18, event="resolve"))
    other = await channel.send(
        notification(notification_id=19, incident_id=43, dedup_key="remediator-43")
    )

    assert [trigger.reference, resolve.reference, other.reference] == [
        "remediator-42-17",
        "remediator-42-18",
        "remediator-43-19",
    ]
    assert len(receiver.accepted) == 3


async def test_the_wrong_secret_is_rejected_by_the_receiver(
    receiver: Receiver, make_channel: Make
) -> None:
    error = await failure(make_channel(receiver.url, secret="not-the-receivers"))

    assert not error.retryable
    assert error.summary == f"webhook POST {receiver.url} → 401 Unauthorized"
    assert receiver.deliveries[0].verdict == "bad signature"


async def test_the_secret_file_is_read_for_every_delivery(
    receiver: Receiver, make_channel: Make, tmp_path: Path
) -> None:
    secret = tmp_path / "webhook-secret"
    secret.write_text("old\n")
    channel = make_channel(receiver.url, secret_file=str(secret))
    assert not (await failure(channel)).retryable
    secret.write_text(SECRET + "\n")

    await channel.send(notification())

    assert [d.verdict for d in receiver.deliveries] == ["bad signature", "accepted"]


async def test_the_secret_from_the_environment(
    receiver: Receiver, make_channel: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATOR_TEST_WEBHOOK_SECRET", SECRET)

    await make_channel(receiver.url, secret_env="REMEDIATOR_TEST_WEBHOOK_SECRET").send(
        notification()
    )
    monkeypatch.delenv("REMEDIATOR_TEST_WEBHOOK_SECRET")
    gone = await failure(make_channel(receiver.url, secret_env="REMEDIATOR_TEST_WEBHOOK_SECRET"))

    assert len(receiver.accepted) == 1
    assert not gone.retryable
    assert "REMEDIATOR_TEST_WEBHOOK_SECRET is not set" in gone.summary


@pytest.mark.parametrize(
    ("reply", "retryable", "retry_after", "summary"),
    [
        (
            web.Response(status=429, headers={"Retry-After": "7"}),
            True,
            7.0,
            "429 Too Many Requests",
        ),
        (
            web.Response(status=503, headers={"Retry-After": http_date(120)}),
            True,
            120.0,
            "503 Service Unavailable",
        ),
        (web.Response(status=500, text="boom"), True, None, "500 Internal Server Error: boom"),
        (web.Response(status=429), True, None, "429 Too Many Requests"),
        (web.Response(status=400, text='{"error": "bad"}'), False, None, '400 Bad Request: {"'),
        (web.Response(status=404, headers={"Retry-After": "7"}), False, None, "404 Not Found"),
        (web.Response(status=302, headers={"Location": "/elsewhere"}), False, None, "302 Found"),
    ],
)
async def test_scripted_failures(
    receiver: Receiver,
    make_channel: Make,
    reply: web.Response,
    retryable: bool,
    retry_after: float | None,
    summary: str,
) -> None:
    receiver.replies.append(reply)

    error = await failure(make_channel(receiver.url))

    assert error.retryable is retryable
    assert error.retry_after == retry_after
    assert error.summary.startswith(f"webhook POST {receiver.url} → {summary}")
    assert len(receiver.deliveries) == 1  # the redirect was not followed


async def test_a_long_error_body_is_cut(receiver: Receiver, make_channel: Make) -> None:
    receiver.replies.append(web.Response(status=400, text="x" * 10_000))

    error = await failure(make_channel(receiver.url))

    assert error.summary.endswith(": " + "x" * 200 + "…")


async def test_a_refused_connection_is_retried(make_channel: Make) -> None:
    with port_that_refuses() as port:
        error = await failure(make_channel(f"http://127.0.0.1:{port}/hook"))

    assert error.retryable
    assert error.retry_after is None


async def test_a_slow_receiver_times_out_and_is_retried(
    aiohttp_server: AiohttpServer, make_channel: Make
) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response()

    app = web.Application()
    app.router.add_post("/", slow)
    server = await aiohttp_server(app, host="127.0.0.1")

    error = await failure(make_channel(f"http://127.0.0.1:{server.port}/", timeout="200ms"))

    assert error.retryable
    assert error.summary.endswith("→ timed out after 0.2s")


def test_create_checks_the_secret_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REMEDIATOR_TEST_WEBHOOK_SECRET", raising=False)
    settings = WebhookSettings.model_validate(
        {"url": "https://hooks.example.com/x", "secret_env": "REMEDIATOR_TEST_WEBHOOK_SECRET"}
    )
    with pytest.raises(PluginError, match="REMEDIATOR_TEST_WEBHOOK_SECRET is not set"):
        PLUGIN.create(settings)


async def test_create_makes_a_channel() -> None:
    settings = WebhookSettings.model_validate({"url": "https://hooks.example.com/x", "secret": "s"})
    channel = PLUGIN.create(settings)
    assert isinstance(channel, WebhookChannel)
    await channel.close()
