"""The blue/green state machine of one model, as a pure function of what the cluster shows.

Each revision runs in its own Deployment (``<model>-<revision>``). The *active* revision is the
one ``status.activeRevision`` names — the routing table lists only its Ready pods. A new revision
is a *candidate*: it comes up beside the active one, and only once all its pods are Ready does the
plan move ``activeRevision`` (one status write, hence one routing-table write). Revisions that are
neither active nor wanted are *retired*: annotated with the time traffic left them, and deleted
after the drain delay. A candidate that misses its progress deadline or whose pods fail is deleted
(auto-rollback) or kept for inspection; either way traffic never left the active revision.

An in-place swap (``operator/inplace.py``) needs no candidate: the active revision's Deployment
is re-labelled as serving the new one (``swapped_from`` the old), and the plan takes it as active.

Nothing is remembered in memory: the plan reads the Deployments (by revision label), their
retirement annotations and the model's status, so a restarted operator converges the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

CANDIDATE_STARTING: Final = "CandidateStarting"
TRAFFIC_SWITCHED: Final = "TrafficSwitched"
DRAINING: Final = "Draining"
COMPLETED: Final = "Completed"
ROLLED_BACK: Final = "RolledBack"
CANDIDATE_FAILED: Final = "CandidateFailed"


@dataclass(frozen=True)
class RevisionState:
    """What one revision's Deployment shows."""

    revision: str
    ready: bool  # every desired pod of this revision is Ready and up to date
    failure: str = ""  # why it cannot become Ready (deadline missed, pods Failed), if so
    retired_at: float | None = None  # when traffic left it (epoch seconds), if it did
    swapped_from: str = ""  # the revision its pods served before an in-place swap to this one


@dataclass(frozen=True)
class Plan:
    """What to do now, and what status to report."""

    active: str | None
    candidate: str | None
    phase: str
    apply_wanted: bool
    retire: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    failure: str = ""  # the candidate's failure, for Degraded and the Event


def _cleanup(
    revisions: dict[str, RevisionState], keep: set[str], now: float, drain_seconds: float
) -> tuple[list[str], list[str]]:
    """(revisions to mark retired now, revisions drained long enough to delete) outside ``keep``."""
    retire, delete = [], []
    for name, state in sorted(revisions.items()):
        if name in keep:
            continue
        if state.retired_at is None:
            retire.append(name)
        elif now - state.retired_at >= drain_seconds:
            delete.append(name)
    return retire, delete


def plan(
    wanted: str,
    active: str | None,
    revisions: dict[str, RevisionState],
    now: float,
    drain_seconds: float,
    auto_rollback: bool,
    rolled_back: bool = False,
) -> Plan:
    """The next step from ``active`` (status.activeRevision) towards the ``wanted`` revision.

    ``rolled_back`` says the status already records that this generation's candidate was rolled
    back, so it is not started again until the spec changes.
    """
    if active not in revisions:
        # The active revision's pods were swapped in place (operator/inplace.py): the same pods
        # serve another revision now, which is active; no candidate, no switch, nothing to drain.
        moved = sorted(name for name, state in revisions.items() if active and state.swapped_from == active)
        active = moved[0] if moved else None  # else its Deployment is gone (deleted by hand)
    if active is None:
        # The spec changed before a first revision was recorded active, or the active one's
        # Deployment went: a revision that is all Ready keeps serving while the wanted one starts.
        serving = sorted(name for name, state in revisions.items() if state.ready and name != wanted)
        wanted_ready = wanted in revisions and revisions[wanted].ready
        if serving and not wanted_ready:
            active = serving[0]
    candidate = revisions.get(wanted)
    failure = candidate.failure if candidate else ""
    if active is not None and active != wanted and (rolled_back or failure):
        keep = {active} | ({wanted} if candidate is not None and not auto_rollback else set())
        retire, delete = _cleanup(revisions, keep, now, drain_seconds)
        if auto_rollback and candidate is not None:
            retire = [name for name in retire if name != wanted]
            delete = sorted({*delete, wanted})
        phase = ROLLED_BACK if auto_rollback else CANDIDATE_FAILED
        return Plan(active, wanted, phase, False, retire, delete, failure or "rolled back")
    if candidate is not None and candidate.ready and active != wanted:
        retire, delete = _cleanup(revisions, {wanted}, now, drain_seconds)
        return Plan(wanted, None, TRAFFIC_SWITCHED, True, retire, delete)
    if active == wanted:
        retire, delete = _cleanup(revisions, {wanted}, now, drain_seconds)
        draining = len(revisions) > 1
        return Plan(wanted, None, DRAINING if draining else COMPLETED, True, retire, delete)
    keep = {wanted} | ({active} if active else set())
    retire, delete = _cleanup(revisions, keep, now, drain_seconds)
    return Plan(active, wanted, CANDIDATE_STARTING, True, retire, delete, failure)
