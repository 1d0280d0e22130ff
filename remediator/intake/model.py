"""Alertmanager's webhook body (version 4), as Alertmanager 0.25 sends it.

Nothing outside `remediator.intake` knows this wire shape: the handler turns each alert
into an `AlertEvent`, the plain record the rest of the service works with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Alertmanager writes Go's zero time for "no end yet".
_GO_ZERO_YEAR = 1


class WebhookAlert(BaseModel):
    """One alert inside a notification; its own `status` is the truth."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(None, alias="endsAt")
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: str = Field(min_length=1, max_length=64)

    @field_validator("ends_at")
    @classmethod
    def _zero_is_none(cls, value: datetime | None) -> datetime | None:
        if value is None or value.year == _GO_ZERO_YEAR:
            return None
        return value

    @field_validator("labels")
    @classmethod
    def _has_labels(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError(
                "an alert needs at least one label (Alertmanager always sends alertname)"
            )
        return value


class WebhookBody(BaseModel):
    """The notification: one Alertmanager group, several alerts."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: Literal["4"]
    receiver: str = ""
    status: Literal["firing", "resolved"]
    alerts: list[WebhookAlert]
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field("", alias="externalURL")
    group_key: str = Field("", alias="groupKey")
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0)


# (fingerprint, startsAt, status): deliveries with the same identity are duplicates.
Identity = tuple[str, datetime, str]


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One alert's state as delivered once: what intake stores and incidents consume."""

    fingerprint: str
    status: str
    starts_at: datetime
    ends_at: datetime | None
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str
    receiver: str
    group_key: str
    external_url: str

    @property
    def identity(self) -> Identity:
        """Deliveries with the same identity are duplicates (HA pairs, retries)."""
        return (self.fingerprint, self.starts_at, self.status)


def events_from(body: WebhookBody) -> list[AlertEvent]:
    """Split a notification into one event per alert, in the order Alertmanager sent them."""
    return [
        AlertEvent(
            fingerprint=alert.fingerprint,
            status=alert.status,
            starts_at=_utc(alert.starts_at),
            ends_at=_utc(alert.ends_at) if alert.ends_at else None,
            labels=alert.labels,
            annotations=alert.annotations,
            generator_url=alert.generator_url,
            receiver=body.receiver,
            group_key=body.group_key,
            external_url=body.external_url,
        )
        for alert in body.alerts
    ]


def _utc(value: datetime) -> datetime:
    # Alertmanager always sends a zone; a body without one is read as UTC, not local time.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
