"""Money as decimal strings in, integer micro-units inside, and the windows a budget declares."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from inferflux.crds.budget import Budget, Window, from_micros, to_micros
from inferflux.crds.tenant import TenantSpec


def test_amounts_convert_exactly() -> None:
    assert to_micros("0.10") == 100_000
    assert to_micros("12") == 12_000_000
    assert to_micros("0.000001") == 1
    assert from_micros(100_000) == "0.10"
    assert from_micros(1) == "0.000001"
    assert from_micros(12_345_000) == "12.345"


def test_limits_lists_only_declared_windows() -> None:
    assert Budget(daily="1.5", total="100").limits() == {Window.DAILY: 1_500_000, Window.TOTAL: 100_000_000}


@pytest.mark.parametrize("amount", ["-1", "1.0000001", "1e3", "ten", ""])
def test_a_bad_amount_is_refused(amount: str) -> None:
    with pytest.raises(ValidationError):
        TenantSpec.model_validate({"budget": {"daily": amount}})


def test_rate_limits_are_positive() -> None:
    with pytest.raises(ValidationError):
        TenantSpec.model_validate({"rateLimits": {"requestsPerMinute": 0}})
    spec = TenantSpec.model_validate({"rateLimits": {"requestsPerMinute": 600}, "budget": {"failOpen": True}})
    assert spec.rate_limits is not None
    assert spec.rate_limits.requests_per_minute == 600
    assert spec.budget is not None
    assert spec.budget.fail_open
