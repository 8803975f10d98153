"""The blue/green plan's facts, read from cached Deployments, pods and status."""

from __future__ import annotations

from typing import Any

from inferflux.crds.meta import set_condition
from inferflux.operator.revisions import (
    DEADLINE_EXCEEDED,
    PODS_FAILED,
    RETIRED_AT,
    model_deployments,
    pod_revision_for,
    revision_state,
    rolled_back_already,
)
from tests.operator.conftest import ModelFactory


def _deployment(name: str, revision: str, namespace: str = "team-a", **extra: Any) -> dict[str, Any]:
    labels = {"inferflux.io/model": "gemma3-270m", "inferflux.io/revision": revision}
    meta = {"name": name, "namespace": namespace, "labels": labels, "generation": 1, **extra}
    return {
        "metadata": meta,
        "spec": {"replicas": 2, "template": {"metadata": {"labels": labels}}},
        "status": {
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 2,
            "conditions": [{"type": "Progressing", "reason": "NewReplicaSetAvailable"}],
        },
    }


def test_deployments_are_grouped_by_revision_for_this_model_only(model: ModelFactory) -> None:
    m = model()
    found, leftovers = model_deployments(
        [_deployment("a", "r1"), _deployment("b", "r2"), _deployment("c", "r3", namespace="team-b")], m
    )
    assert sorted(found) == ["r1", "r2"]
    assert leftovers == []


def test_an_older_deployment_of_the_same_revision_is_a_leftover(model: ModelFactory) -> None:
    m = model()
    legacy, canonical = _deployment("gemma3-270m", "r1"), _deployment("gemma3-270m-r1", "r1")
    for order in ([legacy, canonical], [canonical, legacy]):
        found, leftovers = model_deployments(order, m)
        assert found["r1"]["metadata"]["name"] == "gemma3-270m-r1"
        assert [d["metadata"]["name"] for d in leftovers] == ["gemma3-270m"]
    alone, none = model_deployments([legacy], m)
    assert (alone["r1"]["metadata"]["name"], none) == ("gemma3-270m", [])


def test_a_fully_ready_revision_is_ready_and_a_retired_one_has_its_time(model: ModelFactory) -> None:
    m = model()
    state = revision_state(_deployment("a", "r1", annotations={RETIRED_AT: "12.5"}), "r1", 2, [], m)
    assert (state.ready, state.failure, state.retired_at) == (True, "", 12.5)


def test_a_missed_deadline_or_failed_pods_are_failures(model: ModelFactory) -> None:
    m = model()
    late = _deployment("a", "r1")
    late["status"] |= {
        "readyReplicas": 0,
        "conditions": [{"type": "Progressing", "reason": DEADLINE_EXCEEDED}],
    }
    assert revision_state(late, "r1", 2, [], m).failure == DEADLINE_EXCEEDED
    starting = _deployment("a", "r1")
    starting["status"] |= {"readyReplicas": 0, "conditions": []}
    failed_pod = {
        "metadata": {"namespace": "team-a", "labels": starting["metadata"]["labels"]},
        "status": {"phase": "Failed"},
    }
    state = revision_state(starting, "r1", 2, [failed_pod], m)
    assert (state.ready, state.failure) == (False, PODS_FAILED)
    assert revision_state(starting, "r1", 2, [], m).failure == ""


def test_rolled_back_is_remembered_for_this_generation_only(model: ModelFactory) -> None:
    m = model()
    conditions = set_condition([], "Progressing", "True", "RolledBack", "", generation=1)
    rolled = m.model_copy(update={"status": m.status.model_copy(update={"conditions": conditions})})
    assert rolled_back_already(rolled)
    newer = rolled.model_copy(update={"metadata": rolled.metadata.model_copy(update={"generation": 2})})
    assert not rolled_back_already(newer)
    assert not rolled_back_already(m)


def _swapped(name: str, pods_label: str, serves: str) -> dict[str, Any]:
    """A Deployment whose pods (labelled ``pods_label``) were swapped in place to ``serves``."""
    annotations = {"inferflux.io/serves-revision": serves, "inferflux.io/swapped-from": pods_label}
    return _deployment(name, pods_label, annotations=annotations)


def test_a_deployment_swapped_in_place_counts_for_the_revision_it_serves(model: ModelFactory) -> None:
    m = model()
    found, leftovers = model_deployments([_swapped("gemma3-270m-r1", "r1", "r2")], m)
    assert list(found) == ["r2"]
    assert leftovers == []
    state = revision_state(found["r2"], "r2", 2, [], m)
    assert (state.revision, state.ready, state.swapped_from) == ("r2", True, "r1")
    assert not revision_state(found["r2"], "r1", 2, [], m).ready  # it no longer serves r1


def test_failed_pods_of_a_swapped_deployment_are_found_by_their_own_label(model: ModelFactory) -> None:
    m = model()
    failed = {
        "metadata": {
            "namespace": "team-a",
            "labels": {"inferflux.io/model": "gemma3-270m", "inferflux.io/revision": "r1"},
        },
        "status": {"phase": "Failed"},
    }
    state = revision_state(_swapped("gemma3-270m-r1", "r1", "r2"), "r2", 2, [failed], m)
    assert state.failure == PODS_FAILED


def test_a_new_deployment_never_shares_a_pod_label_with_a_swapped_one(model: ModelFactory) -> None:
    m = model()
    # Back to r1 by blue/green after r1's pods were swapped to r2: r1's label is taken.
    taken = [_swapped("gemma3-270m-r1", "r1", "r2")]
    assert pod_revision_for("r1", taken, m) == "r1-1"
    assert pod_revision_for("r1", [*taken, _deployment("gemma3-270m-r1-1", "r1-1")], m) == "r1-2"
    assert pod_revision_for("r3", taken, m) == "r3"
    other_model = _deployment("x", "r1") | {"metadata": {"namespace": "team-a", "labels": {}}}
    assert pod_revision_for("r1", [other_model], m) == "r1"
