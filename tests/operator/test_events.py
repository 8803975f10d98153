"""Events only on transitions that matter."""

from __future__ import annotations

import datetime as dt

from inferflux.crds.meta import Condition, set_condition
from inferflux.operator.events import NORMAL, WARNING, Event, transition_events

AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def conds(**types: tuple[str, str]) -> list[Condition]:
    result: list[Condition] = []
    for type_, (status, reason) in types.items():
        result = set_condition(result, type_, status, reason, f"{type_} is {reason}", at=AT)  # type: ignore[arg-type]
    return result


def test_becoming_ready_is_one_normal_event() -> None:
    old = conds(Ready=("Unknown", "Initializing"), Stalled=("False", "AsExpected"))
    new = conds(Ready=("True", "Serving"), Stalled=("False", "AsExpected"))
    assert transition_events(old, new) == [Event(NORMAL, "Serving", "Ready is Serving")]


def test_no_change_no_event() -> None:
    same = conds(Ready=("True", "Serving"), Degraded=("False", "AsExpected"))
    assert transition_events(same, same) == []


def test_a_stall_is_one_warning_not_two() -> None:
    old = conds(Ready=("Unknown", "Initializing"), Stalled=("False", "AsExpected"))
    new = conds(Ready=("False", "SecretNotFound"), Stalled=("True", "SecretNotFound"))
    assert transition_events(old, new) == [Event(WARNING, "SecretNotFound", "Stalled is SecretNotFound")]


def test_degradation_and_loss_of_readiness_are_warnings() -> None:
    old = conds(Ready=("True", "Serving"), Degraded=("False", "AsExpected"))
    new = conds(Ready=("False", "NoReadyReplicas"), Degraded=("True", "ReplicasUnavailable"))
    assert [e.reason for e in transition_events(old, new)] == ["ReplicasUnavailable", "NoReadyReplicas"]
    assert {e.type for e in transition_events(old, new)} == {WARNING}


def test_updates_are_reported_when_they_start_and_finish() -> None:
    idle = conds(Ready=("True", "Serving"), Progressing=("False", "RolloutComplete"))
    rolling = conds(Ready=("True", "Serving"), Progressing=("True", "RollingOut"))
    assert transition_events(idle, rolling) == [Event(NORMAL, "RollingOut", "Progressing is RollingOut")]
    done = Event(NORMAL, "RolloutComplete", "Progressing is RolloutComplete")
    assert transition_events(rolling, idle) == [done]
    stalled = conds(Ready=("True", "Serving"), Progressing=("False", "SecretNotFound"))
    assert transition_events(rolling, stalled) == []


def test_a_first_rollout_is_reported_once_by_ready() -> None:
    created = conds(Ready=("Unknown", "Initializing"), Progressing=("True", "RollingOut"))
    assert transition_events([], created) == []
