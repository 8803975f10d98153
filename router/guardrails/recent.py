"""The most recent guardrail verdicts of this router, kept in memory for the admin console.

A bounded ring buffer: each entry is one request's verdicts with its time and tenant, the same
types, rules, topics and actions the audit record and the metrics carry, never any text, request
body or key. The oldest entries fall out once ``capacity`` is reached; a router restart empties it.
``sequence`` grows with every entry, so a reader can tell whether anything new arrived.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass

from inferflux.router.guardrails.verdicts import Verdict

CAPACITY = 200


@dataclass(frozen=True)
class RecentEntry:
    """One request's verdicts: when, for which tenant (None without authentication), what."""

    sequence: int
    time: dt.datetime
    tenant: str | None
    verdicts: tuple[Verdict, ...]

    def view(self) -> dict[str, object]:
        """The entry as the admin API answers it."""
        return {
            "sequence": self.sequence,
            "time": self.time.isoformat(),
            "tenant": self.tenant,
            "verdicts": [verdict.record() for verdict in self.verdicts],
        }


class RecentVerdicts:
    """The last ``capacity`` requests that had at least one verdict."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._entries: deque[RecentEntry] = deque(maxlen=capacity)
        self.sequence = 0

    def add(self, tenant: str | None, verdicts: list[Verdict], when: dt.datetime | None = None) -> None:
        """Keep one request's verdicts; a request without any leaves no entry."""
        if not verdicts:
            return
        self.sequence += 1
        moment = when or dt.datetime.now(dt.UTC)
        self._entries.append(RecentEntry(self.sequence, moment, tenant, tuple(verdicts)))

    def entries(self) -> list[RecentEntry]:
        """Newest first."""
        return list(reversed(self._entries))
