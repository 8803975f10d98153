"""Budgets and rate limits: checksummed pricing (pricing.py) and the Redis ledger (ledger.py)."""

from inferflux.router.budgets.ledger import (
    Admission,
    CostRecord,
    Ledger,
    LedgerUnavailable,
    Limits,
    RateState,
    Refusal,
    ScopeLimits,
    Spend,
    WindowSpend,
)
from inferflux.router.budgets.pricing import ModelPrice, Pricing, PricingError, load_pricing

__all__ = [
    "Admission",
    "CostRecord",
    "Ledger",
    "LedgerUnavailable",
    "Limits",
    "ModelPrice",
    "Pricing",
    "PricingError",
    "RateState",
    "Refusal",
    "ScopeLimits",
    "Spend",
    "WindowSpend",
    "load_pricing",
]
