"""Tenant status and the policy publisher's bookkeeping (the I/O half runs in e2e/test_tenants.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from inferflux.crds import Tenant, TenantStatus
from inferflux.crds.policy import PolicySnapshot
from inferflux.operator.cache import ClusterCache, Key
from inferflux.operator.policy_service import Outcome, PolicyPublisher
from inferflux.operator.render.policy import INVALID_NAME, SUBJECT_CONFLICT, Problem
from inferflux.operator.tenant_service import (
    INVALID_SPEC,
    PUBLISHED,
    PUBLISHING,
    invalid_status,
    tenant_status,
)

NS = "inferflux-system"
CONFIGMAP = f"{NS}/inferflux-policy"


def body(name: str, generation: int = 1, **spec: Any) -> dict[str, Any]:
    meta = {"name": name, "namespace": NS, "generation": generation, "resourceVersion": str(generation)}
    return {"apiVersion": "inferflux.io/v1alpha1", "kind": "Tenant", "metadata": meta, "spec": spec}


def verdicts(status: TenantStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_published_generation_is_ready() -> None:
    status = tenant_status(TenantStatus(), 3, Outcome(3, None), CONFIGMAP)
    assert verdicts(status)["Ready"] == ("True", PUBLISHED)
    assert verdicts(status)["Stalled"][0] == "False"
    assert verdicts(status)["Progressing"][0] == "False"
    assert status.observed_generation == 3
    assert status.policy_config_map == CONFIGMAP


@pytest.mark.parametrize("outcome", [None, Outcome(2, None)], ids=["never", "older generation"])
def test_an_unpublished_generation_is_progressing(outcome: Outcome | None) -> None:
    status = tenant_status(TenantStatus(), 3, outcome, CONFIGMAP)
    assert verdicts(status)["Ready"] == ("False", PUBLISHING)
    assert verdicts(status)["Progressing"] == ("True", PUBLISHING)
    assert status.policy_config_map is None


def test_left_out_tenant_is_stalled_with_the_reason() -> None:
    problem = Problem(INVALID_NAME, "'team.a' is not a tenant name", published=False)
    status = tenant_status(TenantStatus(), 1, Outcome(1, problem), CONFIGMAP)
    assert verdicts(status)["Ready"] == ("False", INVALID_NAME)
    assert verdicts(status)["Stalled"] == ("True", INVALID_NAME)
    assert status.policy_config_map is None


def test_cut_down_tenant_is_stalled_but_still_published() -> None:
    problem = Problem(SUBJECT_CONFLICT, "subject also claimed", published=True)
    status = tenant_status(TenantStatus(), 1, Outcome(1, problem), CONFIGMAP)
    assert verdicts(status)["Stalled"] == ("True", SUBJECT_CONFLICT)
    assert status.policy_config_map == CONFIGMAP


def test_unchanged_outcome_gives_an_equal_status() -> None:
    """An equal status is not written again (report_status compares), so the loop settles."""
    first = tenant_status(TenantStatus(), 1, Outcome(1, None), CONFIGMAP)
    assert tenant_status(first, 1, Outcome(1, None), CONFIGMAP) == first


def test_a_spec_the_api_types_refuse_is_stalled_invalid_spec() -> None:
    with pytest.raises(ValidationError) as caught:
        Tenant.from_body(body("t", models=["*", "x"]))
    status = invalid_status(TenantStatus(), 4, caught.value)
    assert verdicts(status)["Stalled"] == ("True", INVALID_SPEC)
    ready = next(c for c in status.conditions if c.type == "Ready")
    assert "stands alone" in ready.message
    assert status.observed_generation == 4


def publisher(cache: ClusterCache, requeued: list[Key]) -> PolicyPublisher:
    return PolicyPublisher(None, cache, NS, on_outcome=requeued.append)  # type: ignore[arg-type]


def build_and_record(publisher: PolicyPublisher) -> PolicySnapshot:
    document = publisher.documents()[0]
    publisher.published([document])
    return PolicySnapshot.model_validate_json(document["data"]["policy.json"])


def test_publisher_waits_for_the_first_list() -> None:
    cache = ClusterCache()
    assert not publisher(cache, []).ready()
    ready = publisher(cache, [])
    ready.mark_synced()
    assert ready.ready()


def test_publisher_hands_over_only_the_tenants_whose_outcome_changed() -> None:
    cache, requeued = ClusterCache(), []
    for name in ("a", "b"):
        cache.tenants.observe("ADDED", body(name))
    policy = publisher(cache, requeued)
    snapshot = build_and_record(policy)
    assert set(snapshot.tenants) == {"a", "b"}
    assert sorted(requeued) == [(NS, "a"), (NS, "b")]
    assert policy.outcomes["a"] == Outcome(1, None)

    requeued.clear()
    build_and_record(policy)  # nothing changed: nobody's status needs a look
    assert requeued == []

    cache.tenants.observe("MODIFIED", body("a", generation=2, suspended=True))
    cache.tenants.observe("DELETED", body("b"))
    snapshot = build_and_record(policy)
    assert snapshot.tenants["a"].suspended is True
    assert "b" not in snapshot.tenants
    assert sorted(requeued) == [(NS, "a"), (NS, "b")]
    assert policy.outcomes == {"a": Outcome(2, None)}


def test_publisher_leaves_out_tenants_that_do_not_parse() -> None:
    cache = ClusterCache()
    cache.tenants.observe("ADDED", body("good"))
    cache.tenants.observe("ADDED", body("bad", models=["*", "x"]))
    assert set(build_and_record(publisher(cache, [])).tenants) == {"good"}
