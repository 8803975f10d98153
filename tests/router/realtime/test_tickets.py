"""Tickets: one connection each, for a short time."""

from __future__ import annotations

import time

from inferflux.router.realtime.tickets import TicketBook


def test_a_ticket_is_spent_by_its_first_use() -> None:
    book = TicketBook(ttl=30)
    ticket = book.issue("session-1")
    assert len(ticket) >= 40
    assert book.redeem(ticket) == "session-1"
    assert book.redeem(ticket) is None
    assert book.redeem("guess") is None


def test_an_expired_ticket_admits_nothing() -> None:
    book = TicketBook(ttl=0.01)
    ticket = book.issue("session-1")
    deadline = time.monotonic() + 0.011
    while time.monotonic() < deadline:
        pass
    assert book.redeem(ticket) is None


def test_outstanding_tickets_are_bounded() -> None:
    book = TicketBook(ttl=30, limit=3)
    tickets = [book.issue(f"s{i}") for i in range(5)]
    assert book.redeem(tickets[0]) is None  # the oldest went to make room
    assert book.redeem(tickets[4]) == "s4"
