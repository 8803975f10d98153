"""Condition bookkeeping follows apimachinery's SetStatusCondition."""

from __future__ import annotations

import datetime as dt

from inferflux.crds.meta import Rule, broken_rules, find_condition, set_condition

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)


def test_new_condition_is_appended_with_transition_time() -> None:
    conditions = set_condition([], "Ready", "Unknown", "Reconciling", at=T0, generation=1)
    assert [(c.type, c.status, c.last_transition_time) for c in conditions] == [("Ready", "Unknown", T0)]
    assert conditions[0].observed_generation == 1


def test_reason_change_keeps_transition_time() -> None:
    first = set_condition([], "Ready", "False", "Progressing", at=T0)
    second = set_condition(first, "Ready", "False", "Degraded", "pods crash", at=T1)
    ready = find_condition(second, "Ready")
    assert ready is not None
    assert (ready.reason, ready.message, ready.last_transition_time) == ("Degraded", "pods crash", T0)


def test_status_change_moves_transition_time() -> None:
    first = set_condition([], "Ready", "False", "Progressing", at=T0)
    second = set_condition(first, "Ready", "True", "Serving", at=T1)
    assert find_condition(second, "Ready").last_transition_time == T1  # type: ignore[union-attr]


def test_other_conditions_are_kept_in_order() -> None:
    conditions = set_condition([], "Ready", "True", "Serving", at=T0)
    conditions = set_condition(conditions, "Stalled", "False", "Healthy", at=T0)
    conditions = set_condition(conditions, "Ready", "False", "Degraded", at=T1)
    assert [c.type for c in conditions] == ["Ready", "Stalled"]


def test_condition_serialises_in_camel_case() -> None:
    wire = set_condition([], "Ready", "Unknown", "Reconciling", at=T0)[0].to_wire()
    assert wire["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert "observedGeneration" not in wire


def test_broken_rules_lists_messages_in_order() -> None:
    rules = [
        Rule(cel="a", message="needs a", holds=lambda v: "a" in v),
        Rule(cel="b", message="needs b", holds=lambda v: "b" in v),
    ]
    assert broken_rules(rules, "") == ["needs a", "needs b"]
    assert broken_rules(rules, "ab") == []
    assert rules[0].as_validation() == {"rule": "a", "message": "needs a"}
