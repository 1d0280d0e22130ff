"""Deliveries this process has already committed, so re-deliveries skip the database.

Alertmanager re-sends every alert of a group with each notification of that group (every
`group_interval` while anything in it changes, every `repeat_interval` otherwise), and an HA
pair sends everything twice. Most deliveries a busy service receives are therefore
deliveries it already stored. Their answer is known without a transaction: nothing
changes, they count as duplicates. Only identities whose commit has finished are
remembered, so "stored before 2xx" still holds for every alert answered from here.

The database's unique (fingerprint, startsAt, status) stays the truth: an identity this
process does not remember (evicted, stored by another replica, stored before a restart)
goes to the database as before and is deduplicated there.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence

from remediator.intake.model import AlertEvent, Identity


class RecentDeliveries:
    """A bounded, least-recently-used set of committed delivery identities."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._identities: OrderedDict[Identity, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._identities)

    def split(self, events: Sequence[AlertEvent]) -> tuple[list[AlertEvent], Counter[str]]:
        """The events not known to be stored, and how many known ones there were by status."""
        if not self._identities:
            return list(events), Counter()
        unknown: list[AlertEvent] = []
        known: Counter[str] = Counter()
        identities = self._identities
        for event in events:
            identity = event.identity
            if identity in identities:
                identities.move_to_end(identity)
                known[event.status] += 1
            else:
                unknown.append(event)
        return unknown, known

    def remember(self, events: Iterable[AlertEvent]) -> None:
        """Note identities whose commit has finished; forget the least recently used."""
        if self.capacity <= 0:
            return
        identities = self._identities
        for event in events:
            identity = event.identity
            identities[identity] = None
            identities.move_to_end(identity)
        while len(identities) > self.capacity:
            identities.popitem(last=False)
