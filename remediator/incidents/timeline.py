"""Timeline entries: the append-only record of everything that happened to an incident."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class ActorType(StrEnum):
    system = "system"
    rule = "rule"
    user = "user"


@dataclass(frozen=True, slots=True)
class Actor:
    type: ActorType
    name: str

    @classmethod
    def system(cls) -> Actor:
        return cls(ActorType.system, "remediator")

    @classmethod
    def rule(cls, name: str) -> Actor:
        return cls(ActorType.rule, name)

    @classmethod
    def user(cls, name: str) -> Actor:
        return cls(ActorType.user, name)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    incident_id: int
    at: datetime
    actor: Actor
    kind: str
    message: str
    from_state: str | None = None
    to_state: str | None = None
    data: dict[str, Any] | None = field(default=None)

    def row(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "at": self.at,
            "actor_type": self.actor.type.value,
            "actor": self.actor.name,
            "kind": self.kind,
            "message": self.message,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "data": self.data,
        }
