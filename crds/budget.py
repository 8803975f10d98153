"""Budgets and rate limits: what a tenant (or one of its keys) may spend, and how fast it may call.

Amounts are decimal strings in the currency of the router's pricing file (``pricing.yaml``),
because a float cannot hold 0.10 exactly; the router counts in integer micro-units (1e-6). Windows
reset on UTC calendar boundaries: ``daily`` at 00:00 UTC, ``monthly`` on the first of the month,
``total`` never.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Final

from pydantic import Field

from inferflux.crds.meta import KubeModel

MONEY: Final = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"
MICROS: Final = 1_000_000


class Window(StrEnum):
    """A budget period, reset on UTC boundaries."""

    DAILY = "daily"
    MONTHLY = "monthly"
    TOTAL = "total"


def to_micros(amount: str) -> int:
    """A decimal amount (at most 6 decimals, as `MONEY` allows) in integer micro-units."""
    return int(Decimal(amount) * MICROS)


def from_micros(micros: int) -> str:
    """Micro-units as a decimal string, without trailing zeros beyond the cents."""
    text = f"{Decimal(micros) / MICROS:.6f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


class Budget(KubeModel):
    """Most that may be spent per window; a window left out has no limit."""

    daily: str | None = Field(
        default=None, pattern=MONEY, description="Most per UTC day, in the pricing file's currency."
    )
    monthly: str | None = Field(
        default=None,
        pattern=MONEY,
        description="Most per UTC calendar month, in the pricing file's currency.",
    )
    total: str | None = Field(
        default=None, pattern=MONEY, description="Most ever, in the pricing file's currency."
    )
    fail_open: bool = Field(
        default=False,
        description="When the budget store (Redis) cannot be reached: serve without counting (true) or "
        "refuse with 503 (false, the default).",
    )

    def limits(self) -> dict[Window, int]:
        """The declared windows and their limits in micro-units."""
        declared = {Window.DAILY: self.daily, Window.MONTHLY: self.monthly, Window.TOTAL: self.total}
        return {window: to_micros(amount) for window, amount in declared.items() if amount is not None}


class RateLimits(KubeModel):
    """Requests and tokens per minute; a limit left out is not enforced."""

    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    tokens_per_minute: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000_000,
        description="Prompt and completion tokens, as the model counted.",
    )


class WindowSpend(KubeModel):
    """One window's spend as the router last read it."""

    window: Window
    spent: str = Field(description="Settled spend in this window.")
    reserved: str = Field(default="0.00", description="Held for requests in flight.")
    limit: str


class BudgetStatus(KubeModel):
    """The tenant's spend, written by the router at a bounded rate (not by the operator)."""

    currency: str = Field(default="", max_length=3)
    window: Window | None = Field(default=None, description="The window closest to its limit.")
    spent: str = Field(default="", description="Spend in that window.")
    limit: str = Field(default="", description="Its limit.")
    used_percent: int = Field(default=0, ge=0, description="spent / limit, in percent.")
    windows: list[WindowSpend] = Field(default_factory=list, max_length=3)
    updated_at: dt.datetime | None = None
