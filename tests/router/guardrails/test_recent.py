"""The console's ring buffer of recent verdicts: bounded, newest first, types and actions only."""

from __future__ import annotations

import datetime as dt

import pytest

from inferflux.router.guardrails.recent import RecentVerdicts
from inferflux.router.guardrails.verdicts import Check, Direction, Verdict

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CARD = Verdict(Direction.INPUT, Check.PII, "card", "redact", 2)


def test_entries_come_newest_first_and_the_oldest_fall_out() -> None:
    recent = RecentVerdicts(capacity=3)
    for number in range(5):
        recent.add(f"tenant-{number}", [CARD], T0 + dt.timedelta(seconds=number))
    assert [entry.tenant for entry in recent.entries()] == ["tenant-4", "tenant-3", "tenant-2"]
    assert [entry.sequence for entry in recent.entries()] == [5, 4, 3]
    assert recent.sequence == 5


def test_a_request_without_verdicts_leaves_no_entry() -> None:
    recent = RecentVerdicts()
    recent.add("team-a", [], T0)
    assert recent.entries() == []
    assert recent.sequence == 0


def test_the_view_names_types_and_actions_and_when() -> None:
    recent = RecentVerdicts()
    recent.add(None, [CARD], T0)
    assert [entry.view() for entry in recent.entries()] == [
        {
            "sequence": 1,
            "time": "2026-01-01T00:00:00+00:00",
            "tenant": None,
            "verdicts": [
                {"direction": "input", "check": "pii", "subject": "card", "action": "redact", "count": 2}
            ],
        }
    ]


def test_a_capacity_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RecentVerdicts(capacity=0)
