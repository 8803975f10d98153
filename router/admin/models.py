"""What the admin API reads and answers: request bodies and views, camelCase on the wire.

Views never carry a key's digest or a secret's value; a new API key appears in exactly one reply,
the one that created it.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, model_validator

from inferflux.crds.audit import AuditPolicy
from inferflux.crds.budget import Budget, BudgetStatus, RateLimits, Window
from inferflux.crds.guardrails import GuardrailPolicy
from inferflux.crds.meta import KubeModel
from inferflux.crds.policy import ApiKeyRecord, TenantPolicy
from inferflux.crds.scheduling import Scheduling
from inferflux.crds.tenant import ANY_MODEL, DEFAULT_SCOPES, Scope

MAX_OVERLAP_SECONDS = 30 * 24 * 3600


class TenantBody(KubeModel):
    """A tenant as the admin API writes it (its name comes from the path)."""

    display_name: str = Field(default="", max_length=256)
    scopes: list[Scope] = Field(default_factory=lambda: list(DEFAULT_SCOPES), max_length=8)
    models: list[str] = Field(default_factory=lambda: [ANY_MODEL], max_length=256)
    suspended: bool = False
    certificate_subjects: list[str] = Field(default_factory=list, max_length=64)
    audit: AuditPolicy | None = Field(default=None, description="Audit policy (docs/audit.md).")
    budget: Budget | None = Field(default=None, description="Spending limits (docs/budgets.md).")
    rate_limits: RateLimits | None = None
    guardrails: GuardrailPolicy = Field(default_factory=GuardrailPolicy, description="docs/guardrails.md")
    scheduling: Scheduling = Field(default_factory=Scheduling, description="docs/scheduling.md")

    @model_validator(mode="after")
    def _any_model_alone(self) -> TenantBody:
        if ANY_MODEL in self.models and len(self.models) != 1:
            raise ValueError("models: '*' (every model) stands alone")
        return self


class TenantList(KubeModel):
    """Every tenant, resource-declared (``source: resource``, read-only here) and admin-declared."""

    object: str = "list"
    data: list[TenantPolicy]


class KeyCreate(KubeModel):
    """A new API key for a tenant: what it is for, and how it narrows the tenant's rights."""

    name: str = Field(default="", max_length=128)
    scopes: list[Scope] | None = Field(default=None, description="Narrower scopes; absent: the tenant's.")
    models: list[str] | None = Field(default=None, description="Narrower models; absent: the tenant's.")
    expires_at: dt.datetime | None = Field(default=None, description="When the key stops working.")
    budget: Budget | None = Field(
        default=None, description="This key's own spending limits, within its tenant's (docs/budgets.md)."
    )
    rate_limits: RateLimits | None = Field(default=None, description="This key's own rate limits.")

    @model_validator(mode="after")
    def _aware_expiry(self) -> KeyCreate:
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expiresAt needs a time zone (for example 2030-01-01T00:00:00Z)")
        return self


class KeyRotate(KubeModel):
    """Rotation: the old key keeps working ``overlapSeconds`` longer, then expires."""

    overlap_seconds: int = Field(default=3600, ge=0, le=MAX_OVERLAP_SECONDS)


class KeyView(KubeModel):
    """An API key as the admin API shows it: id, last four characters and dates, never the digest."""

    id: str
    tenant: str
    name: str
    last4: str
    scopes: list[Scope] | None
    models: list[str] | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    replaced_by: str | None
    budget: Budget | None = None
    rate_limits: RateLimits | None = None

    @classmethod
    def of(cls, record: ApiKeyRecord) -> KeyView:
        """The view of a stored record."""
        return cls.model_validate(record.model_dump(exclude={"digest"}))


class KeyList(KubeModel):
    """A tenant's keys, revoked and expired ones included."""

    object: str = "list"
    data: list[KeyView]


class KeyCreated(KubeModel):
    """A new key: ``key`` is shown in this reply only and stored nowhere."""

    key: str
    record: KeyView
    previous: KeyView | None = Field(default=None, description="After a rotation: the replaced key.")


class SecretPut(KubeModel):
    """A tenant secret's value (stored encrypted, never shown again)."""

    value: str = Field(min_length=1, max_length=65536)


class SecretView(KubeModel):
    """A tenant secret's name and metadata; its value is never returned."""

    tenant: str
    name: str
    key_version: str
    updated_at: dt.datetime


class SecretList(KubeModel):
    """A tenant's secret names."""

    object: str = "list"
    data: list[SecretView]


class Resealed(KubeModel):
    """The re-encrypt operation: how many secrets moved to the current key version."""

    resealed: int
    key_version: str


class Deleted(KubeModel):
    """A deletion that happened."""

    id: str
    deleted: bool = True


class PolicySummary(KubeModel):
    """The policy this replica enforces: its generation and what it holds."""

    generation: int
    tenants: int
    resource_tenants: int
    admin_tenants: int
    keys: int
    active_keys: int
    snapshot_loaded: bool
    store_loaded: bool


class UsageWindow(KubeModel):
    """One budget window of a tenant now, in the pricing file's currency."""

    window: Window
    period: str = Field(description="The current period: a UTC day (2026-12-06), month (2026-12), or all.")
    spent: str = Field(description="Settled spend in this period.")
    reserved: str = Field(description="Held for requests in flight (released or charged when they end).")
    limit: str | None = Field(description="The tenant's limit for this window; null: none.")
    used_percent: int | None = Field(description="spent / limit in percent (may pass 100); null: no limit.")


class RateUseView(KubeModel):
    """One rate limit's use now, read without taking anything from it."""

    limit_per_minute: int
    capacity: int = Field(
        description="The most that can be left: the request burst (what x-ratelimit-remaining-requests "
        "counts down from) for requests, a minute's worth for tokens."
    )
    remaining: int
    used: int = Field(description="capacity - remaining: taken and not yet back.")
    reset_seconds: float = Field(description="Until the limit is back to full capacity.")


class RateLimitsUse(KubeModel):
    """The tenant's rate limits now; null where it declares no such limit."""

    requests: RateUseView | None
    tokens: RateUseView | None


class TenantUsage(KubeModel):
    """A tenant's spend against its budget and its rate-limit use, as the ledger (Redis) holds them.

    ``budgets: off`` when this router keeps no ledger (no INFERFLUX_REDIS_URL): then nothing is
    metered and no figure is given. Key-level budgets and rate limits are not included.
    """

    tenant: str
    budgets: Literal["on", "off"]
    notes: list[str] = Field(description="What the figures do not cover, or why there are none.")
    currency: str | None = None
    pricing_version: str | None = None
    windows: list[UsageWindow] = Field(default_factory=list)
    status: BudgetStatus | None = Field(
        default=None, description="The window closest to its limit, as a Tenant's status.budget shows it."
    )
    rate_limits: RateLimitsUse | None = None
    read_at: dt.datetime
