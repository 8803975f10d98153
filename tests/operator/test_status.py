"""Status conditions computed from a Deployment, as kstatus, Helm and Argo CD read them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from inferflux.crds import InferenceModel
from inferflux.crds.meta import find_condition
from inferflux.operator.bluegreen import CANDIDATE_STARTING, ROLLED_BACK, Plan, RevisionState, plan
from inferflux.operator.render.labels import revision_hash
from inferflux.operator.status import Stall, compute_status
from tests.operator.conftest import ModelFactory, sample

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)


def deployment(
    m: InferenceModel, ready: int, updated: int | None = None, revision: str | None = None, **status: Any
) -> dict[str, Any]:
    """A Deployment as the API server reports it, for ``m`` at ``revision``."""
    desired = m.spec.replicas
    updated = desired if updated is None else updated
    rolled_out = updated == desired and (ready == desired or "conditions" not in status)
    progressing = [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]
    labels = {"inferflux.io/revision": revision or revision_hash(m)}
    return {
        "metadata": {"generation": 2},
        "spec": {"replicas": desired, "template": {"metadata": {"labels": labels}}},
        "status": {
            "observedGeneration": 2,
            "replicas": desired,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": progressing if rolled_out else [],
            **status,
        },
    }


def conditions(status: Any) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_ready_is_unknown_at_creation(model: ModelFactory) -> None:
    m = model()
    status = compute_status(m, revision_hash(m), None, at=T0)
    assert conditions(status) == {
        "Ready": ("Unknown", "Initializing"),
        "Stalled": ("False", "AsExpected"),
        "Progressing": ("True", "RollingOut"),
        "Reconciling": ("True", "RollingOut"),
        "Degraded": ("False", "AsExpected"),
    }
    assert status.observed_generation == 1
    assert status.endpoint == "http://gemma3-270m.team-a.svc:8080"
    assert status.served_name == "gemma3-270m"
    assert status.selector.startswith("app.kubernetes.io/name=inferflux-runtime,")


def test_ready_when_every_pod_of_the_revision_is_ready(model: ModelFactory) -> None:
    m = model()
    status = compute_status(m, revision_hash(m), deployment(m, ready=2), at=T0)
    assert conditions(status)["Ready"] == ("True", "Serving")
    assert conditions(status)["Progressing"] == ("False", "RolloutComplete")
    assert (status.replicas, status.ready_replicas, status.updated_replicas) == (2, 2, 2)
    assert status.active_revision == revision_hash(m)
    assert status.candidate_revision is None


def test_a_new_revision_is_a_candidate_until_rolled_out(model: ModelFactory) -> None:
    old = model()
    settled = old.model_copy(
        update={"status": compute_status(old, "old", deployment(old, 2, revision="old"))}
    )
    changed = settled.model_copy(update={"spec": model(spec={"engineArgs": {"contextSize": 2048}}).spec})
    new = revision_hash(changed)
    rolling = compute_status(changed, new, deployment(changed, ready=2, updated=1, revision=new))
    assert rolling.active_revision == "old"
    assert rolling.candidate_revision == new
    assert conditions(rolling)["Ready"] == ("True", "Serving")  # old pods keep serving
    assert conditions(rolling)["Progressing"] == ("True", "RollingOut")
    done = compute_status(changed, new, deployment(changed, ready=2, revision=new))
    assert done.active_revision == new
    assert done.candidate_revision is None


def test_serving_with_missing_replicas_is_degraded(model: ModelFactory) -> None:
    m = model()
    status = compute_status(m, revision_hash(m), deployment(m, ready=1))
    assert conditions(status)["Ready"] == ("True", "Serving")
    assert conditions(status)["Degraded"] == ("True", "ReplicasUnavailable")


def test_a_missed_deadline_without_serving_pods_stalls(model: ModelFactory) -> None:
    m = model()
    stuck = deployment(
        m,
        ready=0,
        conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}],
    )
    status = compute_status(m, revision_hash(m), stuck)
    assert conditions(status)["Stalled"] == ("True", "ProgressDeadlineExceeded")
    assert conditions(status)["Degraded"] == ("True", "ProgressDeadlineExceeded")
    assert conditions(status)["Progressing"] == ("False", "ProgressDeadlineExceeded")


def test_ready_false_after_having_been_ready(model: ModelFactory) -> None:
    m = model()
    ready = m.model_copy(update={"status": compute_status(m, revision_hash(m), deployment(m, ready=2))})
    status = compute_status(ready, revision_hash(m), deployment(m, ready=0))
    assert conditions(status)["Ready"] == ("False", "NoReadyReplicas")


def test_scaled_to_zero_is_ready(model: ModelFactory) -> None:
    m = model(spec={"replicas": 0})
    status = compute_status(m, revision_hash(m), deployment(m, ready=0))
    assert conditions(status)["Ready"] == ("True", "ScaledToZero")
    assert status.conditions[0].message == "spec.replicas is 0", "no activation promised without scaleToZero"
    assert conditions(status)["Progressing"] == ("False", "RolloutComplete")


def test_an_idle_model_scaled_to_zero_says_a_request_wakes_it(model: ModelFactory) -> None:
    idle = model(spec={"replicas": 0, "scaleToZero": {"enabled": True}})  # replicas as decided
    status = compute_status(idle, revision_hash(idle), deployment(idle, ready=0))
    ready = next(c for c in status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("True", "ScaledToZero")
    assert "the first request activates it" in ready.message


def test_a_stall_is_reported_on_ready_and_stalled(model: ModelFactory) -> None:
    m = model()
    status = compute_status(m, revision_hash(m), None, Stall("SecretNotFound", "Secret team-a/x not found"))
    ready = find_condition(status.conditions, "Ready")
    assert ready is not None
    assert (ready.status, ready.reason) == ("False", "SecretNotFound")
    assert ready.message == "Secret team-a/x not found"
    assert conditions(status)["Stalled"] == ("True", "SecretNotFound")
    assert conditions(status)["Reconciling"][0] == "False"


def test_provider_models_are_ready_without_pods(model: ModelFactory) -> None:
    status = compute_status(model("provider-model"), "r", None)
    assert conditions(status)["Ready"] == ("True", "ProviderConfigured")
    assert status.endpoint is None
    assert status.active_revision is None
    assert status.selector == ""


def test_transition_time_moves_only_when_the_status_changes(model: ModelFactory) -> None:
    m = model()
    first = compute_status(m, revision_hash(m), deployment(m, ready=1), at=T0)
    again = m.model_copy(update={"status": first})
    second = compute_status(again, revision_hash(m), deployment(m, ready=2), at=T1)
    before, after = find_condition(first.conditions, "Ready"), find_condition(second.conditions, "Ready")
    assert before is not None
    assert after is not None
    assert after.last_transition_time == before.last_transition_time == T0  # message changed, status did not
    assert after.message != before.message
    degraded = find_condition(second.conditions, "Degraded")
    assert degraded is not None
    assert degraded.last_transition_time == T1


def test_status_is_idempotent(model: ModelFactory) -> None:
    m = model()
    first = compute_status(m, revision_hash(m), deployment(m, ready=2), at=T0)
    settled = m.model_copy(update={"status": first})
    assert compute_status(settled, revision_hash(m), deployment(m, ready=2), at=T1) == first


def test_new_pods_not_yet_ready_are_progressing(model: ModelFactory) -> None:
    m = model()
    starting = deployment(
        m, ready=0, conditions=[{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]
    )
    status = compute_status(m, revision_hash(m), starting)
    assert conditions(status)["Progressing"] == ("True", "RollingOut")
    assert conditions(status)["Ready"] == ("Unknown", "Initializing")


def test_a_swap_step_is_reported_on_progressing_while_the_active_revision_serves() -> None:
    m = InferenceModel.from_body(sample("llamacpp-model"))
    step = Plan("old", "new", CANDIDATE_STARTING, apply_wanted=True)
    status = compute_status(m, "new", deployment(m, ready=2, revision="old"), plan=step, at=T0)
    assert (status.active_revision, status.candidate_revision) == ("old", "new")
    got = conditions(status)
    assert got["Progressing"] == ("True", "CandidateStarting")
    assert got["Reconciling"] == ("True", "CandidateStarting")
    assert got["Ready"] == ("True", "Serving")
    assert got["Degraded"][0] == "False"


def test_the_first_revision_is_not_ready_before_it_is_active_even_with_some_pods_ready() -> None:
    m = InferenceModel.from_body(sample("llamacpp-model"))
    assert m.spec.replicas == 2
    first = plan("rev1", None, {"rev1": RevisionState("rev1", ready=False)}, 0.0, 10.0, True)
    assert (first.active, first.candidate) == (None, "rev1")
    rolling = [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]
    one_of_two = deployment(m, ready=1, revision="rev1", conditions=rolling)
    status = compute_status(m, "rev1", one_of_two, plan=first, at=T0)
    assert status.active_revision is None  # so the routing table lists none of its pods
    got = conditions(status)
    assert got["Ready"] == ("False", "FirstRevisionStarting")
    assert got["Progressing"][0] == "True"
    m = m.model_copy(update={"status": status})
    switched = plan("rev1", None, {"rev1": RevisionState("rev1", ready=True)}, 0.0, 10.0, True)
    status = compute_status(m, "rev1", deployment(m, ready=2, revision="rev1"), plan=switched, at=T1)
    assert status.active_revision == "rev1"
    assert conditions(status)["Ready"] == ("True", "Serving")


def test_a_rolled_back_candidate_degrades_but_the_active_revision_stays_ready() -> None:
    m = InferenceModel.from_body(sample("llamacpp-model"))
    step = Plan("old", "new", ROLLED_BACK, False, delete=["new"], failure="ProgressDeadlineExceeded")
    status = compute_status(m, "new", deployment(m, ready=2, revision="old"), plan=step, at=T0)
    got = conditions(status)
    assert got["Degraded"] == ("True", "ProgressDeadlineExceeded")
    assert got["Progressing"] == ("True", "RolledBack")
    assert got["Ready"] == ("True", "Serving")
    assert got["Stalled"][0] == "False"
    degraded = find_condition(status.conditions, "Degraded")
    assert degraded is not None
    assert "new" in degraded.message
    assert "old" in degraded.message


def test_after_an_in_place_swap_the_same_deployment_reports_the_new_revision_rolled_out() -> None:
    m = InferenceModel.from_body(sample("llamacpp-model"))
    swapped = deployment(m, ready=2, revision="old")
    swapped["metadata"]["annotations"] = {"inferflux.io/serves-revision": "new"}
    previous = compute_status(m, "old", deployment(m, ready=2, revision="old"), at=T0)
    m = m.model_copy(update={"status": previous})
    step = plan("new", "old", {"new": RevisionState("new", True, swapped_from="old")}, 0.0, 10.0, True)
    status = compute_status(m, "new", swapped, plan=step, at=T1)
    assert (status.active_revision, status.candidate_revision) == ("new", None)
    got = conditions(status)
    assert got["Progressing"] == ("False", "RolloutComplete")
    assert got["Ready"] == ("True", "Serving")
    assert (status.ready_replicas, status.updated_replicas) == (2, 2)
