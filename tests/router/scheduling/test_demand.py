"""A request's demand: tenant policy, the priority header (lower only), and the token estimate."""

from __future__ import annotations

import pytest

from inferflux.crds.policy import PolicySnapshot, PolicySource, TenantPolicy
from inferflux.crds.scheduling import Scheduling
from inferflux.crds.tenant import Scope
from inferflux.router.errors import UpstreamError
from inferflux.router.identity.principal import Principal
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.scheduling.demand import Demands, estimate_tokens, lowered_priority


def principal(tenant: str) -> Principal:
    return Principal(tenant, "api_key", "k", frozenset({Scope.INFERENCE}), None)


@pytest.fixture
def demands() -> Demands:
    holder = PolicyHolder()
    holder.set_snapshot(
        PolicySnapshot(
            tenants={"gold": TenantPolicy(name="gold", scheduling=Scheduling(weight=3, priority=5))}
        )
    )
    holder.put_tenant("adhoc", TenantPolicy(name="adhoc", source=PolicySource.ADMIN))
    return Demands(holder, default_max_tokens=100)


def test_the_tenant_policy_sets_weight_and_band(demands: Demands) -> None:
    found = demands.of(principal("gold"), 400, {"max_tokens": 50})
    assert (found.tenant, found.label, found.weight, found.priority, found.estimate) == (
        "gold",
        "gold",
        3,
        5,
        150,
    )


def test_tenants_not_declared_by_a_resource_are_labelled_other(demands: Demands) -> None:
    found = demands.of(principal("adhoc"), 40, {})
    assert (found.tenant, found.label, found.weight, found.priority) == ("adhoc", "other", 1, 0)
    assert demands.of(None, 40, {}).label == "-"


def test_the_header_lowers_the_band_but_never_raises_it() -> None:
    assert lowered_priority(5, b"-3") == -3
    assert lowered_priority(5, b"9") == 5
    assert lowered_priority(0, b"-99") == -10
    assert lowered_priority(2, None) == 2
    with pytest.raises(UpstreamError) as bad:
        lowered_priority(0, b"high")
    assert bad.value.status == 400
    assert bad.value.param == "x-inferflux-priority"


def test_the_estimate_counts_body_and_completion() -> None:
    assert estimate_tokens(4000, {"max_completion_tokens": 10, "max_tokens": 99}, True, 256) == 1010
    assert estimate_tokens(4000, {"max_tokens": "many"}, True, 256) == 1256
    assert estimate_tokens(4000, {"max_tokens": 99}, False, 256) == 1000
    assert estimate_tokens(0, {}, False, 256) == 1
