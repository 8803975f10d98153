"""The blue/green state machine: each step from the cluster's facts, restarts included."""

from __future__ import annotations

from inferflux.operator.bluegreen import (
    CANDIDATE_FAILED,
    CANDIDATE_STARTING,
    COMPLETED,
    DRAINING,
    ROLLED_BACK,
    TRAFFIC_SWITCHED,
    RevisionState,
    plan,
)

NOW = 1000.0
DRAIN = 10.0


def states(*items: RevisionState) -> dict[str, RevisionState]:
    return {item.revision: item for item in items}


def test_first_revision_starts_then_becomes_active_when_ready() -> None:
    starting = plan("a", None, {}, NOW, DRAIN, auto_rollback=True)
    assert (starting.active, starting.candidate, starting.phase) == (None, "a", CANDIDATE_STARTING)
    assert starting.apply_wanted
    ready = plan("a", None, states(RevisionState("a", ready=True)), NOW, DRAIN, True)
    assert (ready.active, ready.candidate, ready.phase) == ("a", None, TRAFFIC_SWITCHED)


def test_traffic_stays_on_the_active_revision_until_the_candidate_is_all_ready() -> None:
    revisions = states(RevisionState("a", ready=True), RevisionState("b", ready=False))
    step = plan("b", "a", revisions, NOW, DRAIN, True)
    assert (step.active, step.candidate, step.phase) == ("a", "b", CANDIDATE_STARTING)
    assert (step.retire, step.delete) == ([], [])


def test_switch_retires_the_old_revision_then_drains_then_deletes_it() -> None:
    revisions = states(RevisionState("a", ready=True), RevisionState("b", ready=True))
    switched = plan("b", "a", revisions, NOW, DRAIN, True)
    assert (switched.active, switched.candidate, switched.phase) == ("b", None, TRAFFIC_SWITCHED)
    assert (switched.retire, switched.delete) == (["a"], [])
    retired = states(RevisionState("a", True, retired_at=NOW), RevisionState("b", True))
    draining = plan("b", "b", retired, NOW + DRAIN / 2, DRAIN, True)
    assert (draining.phase, draining.retire, draining.delete) == (DRAINING, [], [])
    drained = plan("b", "b", retired, NOW + DRAIN, DRAIN, True)
    assert (drained.phase, drained.delete) == (DRAINING, ["a"])
    done = plan("b", "b", states(RevisionState("b", True)), NOW + DRAIN, DRAIN, True)
    assert (done.active, done.candidate, done.phase, done.delete) == ("b", None, COMPLETED, [])


def test_a_failed_candidate_is_deleted_and_traffic_stays() -> None:
    revisions = states(
        RevisionState("a", True), RevisionState("b", False, failure="ProgressDeadlineExceeded")
    )
    step = plan("b", "a", revisions, NOW, DRAIN, auto_rollback=True)
    assert (step.active, step.phase, step.failure) == ("a", ROLLED_BACK, "ProgressDeadlineExceeded")
    assert (step.delete, step.retire, step.apply_wanted) == (["b"], [], False)


def test_without_auto_rollback_the_failed_candidate_is_kept() -> None:
    revisions = states(RevisionState("a", True), RevisionState("b", False, failure="pods Failed"))
    step = plan("b", "a", revisions, NOW, DRAIN, auto_rollback=False)
    assert (step.active, step.candidate, step.phase) == ("a", "b", CANDIDATE_FAILED)
    assert (step.delete, step.retire, step.apply_wanted) == ([], [], False)


def test_a_rolled_back_generation_is_not_started_again() -> None:
    step = plan("b", "a", states(RevisionState("a", True)), NOW, DRAIN, True, rolled_back=True)
    assert (step.active, step.phase, step.apply_wanted, step.delete) == ("a", ROLLED_BACK, False, [])


def test_restart_mid_swap_converges_to_one_active_revision() -> None:
    # The operator died after the switch was written but before anything was retired.
    revisions = states(RevisionState("a", True), RevisionState("b", True), RevisionState("c", False))
    step = plan("b", "b", revisions, NOW, DRAIN, True)
    assert (step.active, step.candidate, step.retire) == ("b", None, ["a", "c"])
    # Or it died before the switch: the same facts give the same switch again.
    again = plan("b", "a", states(RevisionState("a", True), RevisionState("b", True)), NOW, DRAIN, True)
    assert (again.active, again.retire) == ("b", ["a"])


def test_an_active_revision_whose_deployment_vanished_is_replaced_by_the_wanted_one() -> None:
    step = plan("b", "a", states(RevisionState("b", False)), NOW, DRAIN, True)
    assert (step.active, step.candidate, step.phase) == (None, "b", CANDIDATE_STARTING)


def test_reverting_the_spec_retires_the_abandoned_candidate() -> None:
    revisions = states(RevisionState("a", True), RevisionState("b", False))
    step = plan("a", "a", revisions, NOW, DRAIN, True)
    assert (step.active, step.candidate, step.retire, step.phase) == ("a", None, ["b"], DRAINING)


def test_a_ready_revision_never_recorded_active_keeps_serving_while_the_new_one_starts() -> None:
    # The spec changed after the first revision's pods were Ready but before its status said so.
    revisions = states(RevisionState("a", True), RevisionState("b", False))
    step = plan("b", None, revisions, NOW, DRAIN, True)
    assert (step.active, step.candidate, step.phase, step.retire) == ("a", "b", CANDIDATE_STARTING, [])
    done = plan("b", None, states(RevisionState("a", True), RevisionState("b", True)), NOW, DRAIN, True)
    assert (done.active, done.retire) == ("b", ["a"])


def test_after_an_in_place_swap_the_same_pods_are_the_active_revision_with_no_candidate() -> None:
    # The active revision "a"'s Deployment now serves "b", swapped in place from "a".
    swapped = states(RevisionState("b", ready=True, swapped_from="a"))
    step = plan("b", "a", swapped, NOW, DRAIN, True)
    assert (step.active, step.candidate, step.phase) == ("b", None, COMPLETED)
    assert (step.retire, step.delete, step.failure) == ([], [], "")
    assert step.apply_wanted
    # An older revision still draining is left to drain, as after a blue/green switch.
    draining = states(RevisionState("b", ready=True, swapped_from="a"), RevisionState("z", True, "", NOW - 1))
    step = plan("b", "a", draining, NOW, DRAIN, True)
    assert (step.active, step.candidate, step.phase, step.delete) == ("b", None, DRAINING, [])


def test_a_revision_swapped_from_elsewhere_does_not_take_over_an_active_revision_that_still_runs() -> None:
    revisions = states(RevisionState("a", ready=True), RevisionState("b", ready=False, swapped_from="c"))
    step = plan("b", "a", revisions, NOW, DRAIN, True)
    assert (step.active, step.candidate, step.phase) == ("a", "b", CANDIDATE_STARTING)
