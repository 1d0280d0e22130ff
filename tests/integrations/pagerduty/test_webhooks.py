"""PagerDuty V3 webhooks into the channel's `receive`: signatures, envelopes, our dedup key.

Payloads follow the samples of developer.pagerduty.com "Webhook Payload" (PagerDuty's
developer-docs, docs/webhooks/01-Overview.md): the `incident.priority_updated` sample with
its incident `data`, re-typed as `incident.acknowledged` / `incident.resolved`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from remediator_integrations.pagerduty import PLUGIN, PagerDutyChannel, PagerDutySettings
from remediator_integrations.pagerduty.webhooks import sign

from remediator.plugins import InboundChannel, InboundEvent, InboundRejected, PluginError

from .conftest import ROUTING_KEY, MakeChannel, PagerDuty, notification

SECRET = "ChNFsNOkPMbOJg6ZFRnSw2PYVkOs2gO5HrTHGTnWEBv7RFU8ewP9yC-q2QWQw"
OLD_SECRET = "the-secret-being-rotated-out"

# The documentation's sample, verbatim apart from event_type (it shows priority_updated).
DOCS_SAMPLE: dict[str, Any] = {
    "event": {
        "id": "5ac64822-4adc-4fda-ade0-410becf0de4f",
        "event_type": "incident.acknowledged",
        "resource_type": "incident",
        "occurred_at": "2020-10-02T18:45:22.169Z",
        "agent": {
            "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
            "id": "PLH1HKV",
            "self": "https://api.pagerduty.com/users/PLH1HKV",
            "summary": "Tenex Engineer",
            "type": "user_reference",
        },
        "client": {"name": "PagerDuty"},
        "data": {
            "id": "PGR0VU2",
            "type": "incident",
            "self": "https://api.pagerduty.com/incidents/PGR0VU2",
            "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
            "number": 2,
            "status": "acknowledged",
            "incident_key": "d3640fbd41094207a1c11e58e46b1662",
            "created_at": "2020-04-09T15:16:27Z",
            "title": "A little bump in the road",
            "service": {
                "html_url": "https://acme.pagerduty.com/services/PF9KMXH",
                "id": "PF9KMXH",
                "self": "https://api.pagerduty.com/services/PF9KMXH",
                "summary": "API Service",
                "type": "service_reference",
            },
            "assignees": [
                {
                    "html_url": "https://acme.pagerduty.com/users/PTUXL6G",
                    "id": "PTUXL6G",
                    "self": "https://api.pagerduty.com/users/PTUXL6G",
                    "summary": "User 123",
                    "type": "user_reference",
                }
            ],
            "escalation_policy": {
                "html_url": "https://acme.pagerduty.com/escalation_policies/PUS0KTE",
                "id": "PUS0KTE",
                "self": "https://api.pagerduty.com/escalation_policies/PUS0KTE",
                "summary": "Default",
                "type": "escalation_policy_reference",
            },
            "teams": [],
            "priority": None,
            "urgency": "high",
            "conference_bridge": None,
            "resolve_reason": None,
        },
    }
}


def webhook(event_type: str = "incident.acknowledged", **data: Any) -> dict[str, Any]:
    """The docs' sample as `event_type`, its incident data changed by `data`."""
    body = copy.deepcopy(DOCS_SAMPLE)
    body["event"]["event_type"] = event_type
    body["event"]["data"].update(data)
    return body


def ours(event_type: str = "incident.acknowledged", **data: Any) -> dict[str, Any]:
    """A webhook about the incident remediator paged as `remediator-7`."""
    return webhook(event_type, **{"incident_key": "remediator-7", **data})


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()


def signed(body: bytes, *secrets: str) -> dict[str, str]:
    return {"X-PagerDuty-Signature": ",".join(sign(body, s) for s in secrets or (SECRET,))}


@pytest.fixture
def channel() -> PagerDutyChannel:
    """A channel with an inline webhook secret (receive never touches the network)."""
    settings = {"routing_key": ROUTING_KEY, "webhook_secret": SECRET}
    return PagerDutyChannel(PagerDutySettings.model_validate(settings))


def receive(channel: PagerDutyChannel, body: Any) -> list[InboundEvent]:
    data = encode(body)
    return channel.receive(data, signed(data))


def rejected(channel: PagerDutyChannel, body: bytes, headers: dict[str, str]) -> InboundRejected:
    with pytest.raises(InboundRejected) as caught:
        channel.receive(body, headers)
    return caught.value


# -- events -----------------------------------------------------------------------------------


def test_the_channel_takes_inbound_events(channel: PagerDutyChannel) -> None:
    assert isinstance(channel, InboundChannel)


def test_a_signed_acknowledge_names_our_incident_and_the_person(
    channel: PagerDutyChannel,
) -> None:
    assert receive(channel, ours()) == [
        InboundEvent(
            action="acknowledge",
            dedup_key="remediator-7",
            actor="Tenex Engineer",
            note="PagerDuty incident #2 https://acme.pagerduty.com/incidents/PGR0VU2",
        )
    ]


def test_a_signed_resolve_resolves_without_inventing_a_resolution(
    channel: PagerDutyChannel,
) -> None:
    body = ours("incident.resolved", status="resolved")
    # PagerDuty sends no "what fixed it" with the resolve, so the note stays empty.
    assert receive(channel, body) == [
        InboundEvent(action="resolve", dedup_key="remediator-7", actor="Tenex Engineer")
    ]


def test_without_an_incident_key_the_title_suffix_names_the_incident(
    channel: PagerDutyChannel,
) -> None:
    body = webhook(incident_key=None, title="db-1: DiskWillFillIn4Hours [remediator-12]")
    [event] = receive(channel, body)
    assert event.dedup_key == "remediator-12"


def test_only_the_end_of_the_title_counts(channel: PagerDutyChannel) -> None:
    # An alert's own title may mention any key; only the suffix we append is trusted.
    body = webhook(incident_key=None, title="[remediator-9] disk full on remediator-9")
    assert receive(channel, body) == []


def test_incidents_that_are_not_ours_carry_no_events(channel: PagerDutyChannel) -> None:
    assert receive(channel, DOCS_SAMPLE) == []  # PagerDuty's own key, a foreign title
    assert receive(channel, webhook(incident_key="remediator-7x")) == []


@pytest.mark.parametrize(
    "event_type",
    [
        "incident.triggered",
        "incident.unacknowledged",
        "incident.reopened",
        "incident.escalated",
        "incident.priority_updated",
    ],
)
def test_other_incident_events_are_left_out(channel: PagerDutyChannel, event_type: str) -> None:
    assert receive(channel, ours(event_type)) == []


def test_other_resources_are_left_out(channel: PagerDutyChannel) -> None:
    note = ours("incident.annotated")
    note["event"]["data"] = {"id": "P2LA89X", "content": "glad", "type": "incident_note"}
    service = ours("service.updated")
    service["event"].update(agent=None, client=None, resource_type="service")
    assert receive(channel, note) == []
    assert receive(channel, service) == []


@pytest.mark.parametrize(
    "agent",
    [
        None,  # a timeout
        {"id": "PINTEG1", "type": "inbound_integration_reference", "summary": "remediator"},
        {"id": "PF9KMXH", "type": "service_reference", "summary": "API Service"},
    ],
)
def test_only_a_person_acknowledges_or_resolves(
    channel: PagerDutyChannel, agent: dict[str, str] | None
) -> None:
    # Integrations (our own Events API acknowledge echoed back) and timeouts decide nothing.
    for event_type in ("incident.acknowledged", "incident.resolved"):
        body = ours(event_type)
        body["event"]["agent"] = agent
        assert receive(channel, body) == []


def test_a_person_without_a_name_is_still_named(channel: PagerDutyChannel) -> None:
    body = ours()
    body["event"]["agent"] = {"id": "PLH1HKV", "type": "user_reference"}
    [event] = receive(channel, body)
    assert event.actor == "PLH1HKV"


def test_a_merge_does_not_resolve(channel: PagerDutyChannel) -> None:
    reason = {
        "type": "merge_resolve_reason",
        "incident": {"id": "PXYZ123", "type": "incident_reference"},
    }
    assert receive(channel, ours("incident.resolved", resolve_reason=reason)) == []


# -- signatures -------------------------------------------------------------------------------


def test_a_tampered_body_is_rejected(channel: PagerDutyChannel) -> None:
    body = encode(ours())
    tampered = body.replace(b"Tenex Engineer", b"Mallory Engineer")
    error = rejected(channel, tampered, signed(body))
    assert error.status == 401
    assert "does not match" in error.message


def test_a_wrong_secret_is_rejected(channel: PagerDutyChannel) -> None:
    body = encode(ours())
    assert rejected(channel, body, signed(body, "another secret")).status == 401


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-PagerDuty-Signature": ""}, {"X-Other": "v1=00"}],
)
def test_a_missing_signature_is_rejected(
    channel: PagerDutyChannel, headers: dict[str, str]
) -> None:
    error = rejected(channel, encode(ours()), headers)
    assert (error.status, error.message) == (401, "missing X-PagerDuty-Signature header")


def test_only_v1_signatures_count(channel: PagerDutyChannel) -> None:
    body = encode(ours())
    digest = sign(body, SECRET).removeprefix("v1=")
    assert rejected(channel, body, {"X-PagerDuty-Signature": f"v0={digest}"}).status == 401
    assert rejected(channel, body, {"X-PagerDuty-Signature": digest}).status == 401


def test_rotation_sends_two_signatures_and_one_suffices(channel: PagerDutyChannel) -> None:
    body = encode(ours())
    assert channel.receive(body, signed(body, OLD_SECRET, SECRET))
    assert channel.receive(body, signed(body, SECRET, OLD_SECRET))
    spaced = {"X-PagerDuty-Signature": f"{sign(body, OLD_SECRET)}, {sign(body, SECRET)}"}
    assert channel.receive(body, spaced)
    assert rejected(channel, body, signed(body, OLD_SECRET, "third")).status == 401


def test_the_header_name_is_case_insensitive(channel: PagerDutyChannel) -> None:
    body = encode(ours())
    assert channel.receive(body, {"x-pagerduty-signature": sign(body, SECRET)})


def test_the_signature_is_over_the_raw_bytes(channel: PagerDutyChannel) -> None:
    # Re-serialising would change the bytes; unicode is signed as the UTF-8 PagerDuty sent.
    body = json.dumps(ours(title="Überlauf ✓"), ensure_ascii=False, indent=1).encode()
    assert channel.receive(body, signed(body))


# -- malformed --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not JSON"),
        (b"\xff\xfe", "body is not JSON"),
        (b"[]", "not a V3 webhook: no 'event' object"),
        (b'{"messages": []}', "not a V3 webhook: no 'event' object"),
        (b'{"event": {"id": "x"}}', "not a V3 webhook: 'event.event_type' is missing"),
        (
            b'{"event": {"event_type": "incident.acknowledged", "data": []}}',
            "incident.acknowledged: 'event.data' is not an incident",
        ),
    ],
)
def test_a_malformed_body_is_rejected(channel: PagerDutyChannel, body: bytes, message: str) -> None:
    error = rejected(channel, body, signed(body))
    assert (error.status, error.message) == (400, message)


def test_the_signature_is_checked_before_the_body_is_read(channel: PagerDutyChannel) -> None:
    assert rejected(channel, b"{not json", {}).status == 401


# -- settings ---------------------------------------------------------------------------------


def test_without_a_secret_webhooks_are_refused() -> None:
    channel = PagerDutyChannel(PagerDutySettings.model_validate({"routing_key": ROUTING_KEY}))
    body = encode(ours())
    error = rejected(channel, body, signed(body))
    assert error.status == 404
    assert "not configured: set webhook_secret" in error.message


def test_an_empty_secret_file_is_refused_not_trusted(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("\n")
    settings = {"routing_key": ROUTING_KEY, "webhook_secret_file": str(secret)}
    channel = PagerDutyChannel(PagerDutySettings.model_validate(settings))
    body = encode(ours())
    assert rejected(channel, body, signed(body, "")).status == 404


def test_a_rotated_secret_file_takes_effect(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(OLD_SECRET + "\n")
    settings = {"routing_key": ROUTING_KEY, "webhook_secret_file": str(secret)}
    channel = PagerDutyChannel(PagerDutySettings.model_validate(settings))
    body = encode(ours())
    assert channel.receive(body, signed(body, OLD_SECRET))
    secret.write_text(SECRET)
    assert channel.receive(body, signed(body, SECRET))
    assert rejected(channel, body, signed(body, OLD_SECRET)).status == 401


def test_a_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = {"routing_key": ROUTING_KEY, "webhook_secret_env": "PD_WEBHOOK_SECRET"}
    channel = PagerDutyChannel(PagerDutySettings.model_validate(settings))
    body = encode(ours())
    # Gone at run time: 503, so that PagerDuty retries once the deployment is fixed.
    error = rejected(channel, body, signed(body))
    assert error.status == 503
    assert "PD_WEBHOOK_SECRET is not set" in error.message
    monkeypatch.setenv("PD_WEBHOOK_SECRET", SECRET)
    assert channel.receive(body, signed(body))


def test_a_missing_secret_stops_the_service_at_start() -> None:
    settings = PagerDutySettings.model_validate(
        {"routing_key": ROUTING_KEY, "webhook_secret_env": "PD_NOT_SET_ANYWHERE"}
    )
    with pytest.raises(PluginError, match="PD_NOT_SET_ANYWHERE"):
        PLUGIN.create(settings)


def test_one_webhook_secret_at_most() -> None:
    with pytest.raises(ValidationError, match="at most one of webhook_secret"):
        PagerDutySettings.model_validate(
            {"routing_key": ROUTING_KEY, "webhook_secret": "a", "webhook_secret_env": "B"}
        )


# -- the trigger's summary --------------------------------------------------------------------


async def test_with_webhooks_the_summary_ends_with_our_key(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    channel = make_channel(webhook_secret=SECRET)
    await channel.send(notification())
    await channel.send(notification(title="é" * 5000))
    short, long = (event["payload"]["summary"] for event in pagerduty.accepted)
    assert short == "web-1: HighErrorRate [remediator-7]"
    assert len(long) == 1024
    assert long.endswith("é… [remediator-7]")


async def test_without_webhooks_the_summary_is_the_title(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    await make_channel().send(notification())
    assert pagerduty.accepted[0]["payload"]["summary"] == "web-1: HighErrorRate"


async def test_acknowledge_and_resolve_events_stay_minimal(
    pagerduty: PagerDuty, make_channel: MakeChannel
) -> None:
    await make_channel(webhook_secret=SECRET).send(notification(event="acknowledge"))
    assert set(pagerduty.accepted[0]) == {"routing_key", "event_action", "dedup_key"}
