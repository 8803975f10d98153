"""Which Kubernetes Events a status change deserves, as a pure function.

Users read Events in ``kubectl describe``; they should see each change of what matters once
(Ready, Stalled, Degraded, an update rolling out and done), not a line per reconcile. So an
Event is emitted only when one of those conditions changes its status or reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inferflux.crds.meta import Condition, ConditionType, find_condition

NORMAL = "Normal"
WARNING = "Warning"
ROLLOUT_REASONS = frozenset({"RollingOut", "RolloutComplete", "CandidateStarting", "TrafficSwitched"})


@dataclass(frozen=True)
class Event:
    """One Event to post about the object whose status changed."""

    type: str
    reason: str
    note: str


def _transition(old: Sequence[Condition], new: Sequence[Condition], type_: str) -> Condition | None:
    """The new condition of ``type_`` when its status or reason changed, else None."""
    before, after = find_condition(old, type_), find_condition(new, type_)
    if after is None or (before and (before.status, before.reason) == (after.status, after.reason)):
        return None
    return after


def transition_events(old: Sequence[Condition], new: Sequence[Condition]) -> list[Event]:
    """Events for conditions that changed from ``old`` to ``new``."""
    events = []
    stalled = _transition(old, new, ConditionType.STALLED)
    if stalled and stalled.status == "True":
        events.append(Event(WARNING, stalled.reason, stalled.message))
    degraded = _transition(old, new, ConditionType.DEGRADED)
    if degraded and degraded.status == "True":
        events.append(Event(WARNING, degraded.reason, degraded.message))
    progressing = _transition(old, new, ConditionType.PROGRESSING)
    was_ready = find_condition(old, ConditionType.READY)
    if progressing and progressing.reason in ROLLOUT_REASONS and was_ready and was_ready.status == "True":
        events.append(Event(NORMAL, progressing.reason, progressing.message))
    ready = _transition(old, new, ConditionType.READY)
    now_stalled = find_condition(new, ConditionType.STALLED)
    if ready and ready.status == "True":
        events.append(Event(NORMAL, ready.reason, ready.message))
    elif ready and ready.status == "False" and not (now_stalled and now_stalled.status == "True"):
        events.append(Event(WARNING, ready.reason, ready.message))  # a stall was reported above
    return events
