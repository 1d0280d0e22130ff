"""The webhook model against bodies captured from a real Alertmanager 0.25."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from remediator.intake.model import WebhookBody, events_from
from tests.conftest import load_fixture


def test_every_field_of_a_real_body_is_parsed() -> None:
    body = WebhookBody.model_validate(load_fixture("diskfill-firing.json"))
    assert body.version == "4"
    assert body.receiver == "remediator"
    assert body.status == "firing"
    assert body.group_labels == {"alertname": "DiskWillFillIn4Hours", "service": "storage"}
    assert body.common_labels["instance"] == "db-1:9100"
    assert body.common_annotations["runbook_url"] == "https://runbooks.example.com/disk-full"
    assert body.external_url == "http://alertmanager:9093"
    assert body.group_key == '{}:{alertname="DiskWillFillIn4Hours", service="storage"}'
    assert body.truncated_alerts == 0
    alert = body.alerts[0]
    assert alert.fingerprint == "fcb0d5338dbe43d7"
    assert alert.generator_url.startswith("http://prometheus:9090/graph?")
    assert alert.starts_at == datetime(2026, 11, 21, 12, 38, 44, 310000, tzinfo=UTC)


def test_nanosecond_starts_at_and_go_zero_ends_at() -> None:
    body = WebhookBody.model_validate(load_fixture("crashloop-two-pods-firing.json"))
    first = body.alerts[0]
    assert first.starts_at == datetime(2026, 11, 21, 12, 39, 37, 336740, tzinfo=UTC)
    assert first.ends_at is None  # 0001-01-01T00:00:00Z means "not ended"


def test_each_alert_keeps_its_own_status_not_the_groups() -> None:
    body = WebhookBody.model_validate(load_fixture("crashloop-one-resolved-one-firing.json"))
    assert body.status == "firing"
    events = events_from(body)
    assert [e.status for e in events] == ["firing", "resolved"]
    assert events[1].ends_at == datetime(2026, 11, 21, 12, 39, 49, tzinfo=UTC)
    assert events[1].group_key == body.group_key


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda b: b["alerts"][0].update(labels={"pod": 3}), "alerts.0.labels.pod"),
        (lambda b: b["alerts"][0].pop("fingerprint"), "alerts.0.fingerprint"),
        (lambda b: b["alerts"][0].update(status="pending"), "alerts.0.status"),
        (lambda b: b["alerts"][0].update(startsAt="yesterday"), "alerts.0.startsAt"),
        (lambda b: b.update(version="3"), "version"),
        (lambda b: b.pop("alerts"), "alerts"),
    ],
)
def test_invalid_bodies_name_the_field_path(mutate, path) -> None:  # type: ignore[no-untyped-def]
    body = load_fixture("diskfill-firing.json")
    mutate(body)
    with pytest.raises(ValidationError) as caught:
        WebhookBody.model_validate(body)
    paths = {".".join(str(p) for p in e["loc"]) for e in caught.value.errors()}
    assert path in paths
