"""Short-lived, single-use tickets that let a WebSocket join a session.

Browsers cannot put an ``Authorization`` header on a WebSocket, so the client proves itself on an
ordinary HTTP request (``POST /api/v1/voice/session``, with an API key or a JWT, through the
router's identity stage) and gets a ticket: a random 256-bit string that names one session, is
good for ``ttl`` seconds and is spent by the first connection that presents it. Tickets live in
memory and never appear in logs.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a ticket admits: one connection to ``session_id`` before ``expires`` (monotonic)."""

    session_id: str
    expires: float


class TicketBook:
    """Issues and redeems tickets; at most ``limit`` outstanding (the oldest go first)."""

    def __init__(self, ttl: float, limit: int = 10000) -> None:
        self.ttl = ttl
        self.limit = limit
        self._tickets: dict[str, Ticket] = {}

    def issue(self, session_id: str) -> str:
        """A new ticket for ``session_id``."""
        now = time.monotonic()
        if len(self._tickets) >= self.limit:
            self._tickets = {key: t for key, t in self._tickets.items() if t.expires > now}
            while len(self._tickets) >= self.limit:
                del self._tickets[next(iter(self._tickets))]
        ticket = secrets.token_urlsafe(32)
        self._tickets[ticket] = Ticket(session_id, now + self.ttl)
        return ticket

    def redeem(self, ticket: str) -> str | None:
        """The session the ticket admits, spending it; None when unknown, spent or expired."""
        found = self._tickets.pop(ticket, None)
        if found is None or found.expires <= time.monotonic():
            return None
        return found.session_id
