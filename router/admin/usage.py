"""A tenant's usage as the admin API shows it, from what the ledger read: pure functions.

Spend comes from `Ledger.spend` (settled and reserved micro-units per window) and is written in the
pricing file's currency with `from_micros`; the lead window and the percentages are report.py's
(`budget_status`, `ratio`), the same figures ``kubectl get tenants`` shows for resource tenants.
Rate-limit use comes from `Ledger.rates`, read without taking a slot or counting a token.
"""

from __future__ import annotations

import datetime as dt

from inferflux.crds.budget import from_micros
from inferflux.crds.policy import TenantPolicy
from inferflux.router.admin.models import RateLimitsUse, RateUseView, TenantUsage, UsageWindow
from inferflux.router.budgets.ledger import Rates, RateUse, Spend
from inferflux.router.budgets.pricing import Pricing
from inferflux.router.budgets.report import budget_status, period_of, ratio

OFF = "budgets and rate limits are off on this router (INFERFLUX_REDIS_URL is not set): nothing is metered"
UNMETERED = (
    "this tenant declares no budget and no rate limit: its requests are counted only when their key "
    "declares limits of its own"
)
UNPRICED = "no pricing file (INFERFLUX_PRICING_FILE): every model costs 0, so spend stays 0"
KEYS_LEFT_OUT = "key-level budgets and rate limits are not shown here"


def usage_off(tenant: str, now: dt.datetime) -> TenantUsage:
    """The answer when this router keeps no ledger: says so, with no figure that could mislead."""
    return TenantUsage(tenant=tenant, budgets="off", notes=[OFF], read_at=now)


def rate_view(use: RateUse | None) -> RateUseView | None:
    """One rate limit's use for the admin API."""
    if use is None:
        return None
    return RateUseView(
        limit_per_minute=use.limit,
        capacity=use.capacity,
        remaining=use.remaining,
        used=max(use.capacity - use.remaining, 0),
        reset_seconds=round(use.reset_seconds, 3),
    )


def usage_view(
    tenant: TenantPolicy, spend: Spend, rates: Rates, pricing: Pricing, now: dt.datetime
) -> TenantUsage:
    """The tenant's windows, lead window and rate-limit use, with notes on what they leave out."""
    notes = []
    if tenant.budget is None and tenant.rate_limits is None:
        notes.append(UNMETERED)
    if pricing.checksum is None:  # a pricing file is always sealed; the built-in "unpriced" is not
        notes.append(UNPRICED)
    notes.append(KEYS_LEFT_OUT)
    windows = [
        UsageWindow(
            window=window,
            period=period_of(window, spend),
            spent=from_micros(amounts.spent),
            reserved=from_micros(amounts.reserved),
            limit=from_micros(amounts.limit) if amounts.limit else None,
            used_percent=int(ratio(amounts) * 100) if amounts.limit else None,
        )
        for window, amounts in spend.tenant.items()
    ]
    return TenantUsage(
        tenant=tenant.name,
        budgets="on",
        notes=notes,
        currency=pricing.currency,
        pricing_version=pricing.version,
        windows=windows,
        status=budget_status(spend, pricing.currency, now),
        rate_limits=RateLimitsUse(
            requests=rate_view(rates.tenant.requests), tokens=rate_view(rates.tenant.tokens)
        ),
        read_at=now.replace(microsecond=0),
    )
