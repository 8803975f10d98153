"""The ``Tenant`` API: who may use the router, with which scopes, on which models.

A tenant is the unit of policy. Its requests are identified by an API key the admin API issued to
it, by an OIDC token whose tenant claim names it, or by a client certificate whose subject it lists.
The credential can narrow what the tenant may do (a key restricted to some models, a token with
fewer scopes) but never widen it.

Tenants are read from the operator's namespace only: whoever can write a Tenant grants scopes, so
that right stays with whoever administers the InferFlux installation.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import Field, model_validator

from inferflux.crds.audit import AuditPolicy
from inferflux.crds.budget import Budget, BudgetStatus, RateLimits
from inferflux.crds.guardrails import GuardrailPolicy
from inferflux.crds.meta import API_VERSION, Condition, KubeModel, ObjectMeta, Rule, broken_rules
from inferflux.crds.scheduling import Scheduling

KIND: Final = "Tenant"
PLURAL = "tenants"
TENANT_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
ANY_MODEL = "*"


class Scope(StrEnum):
    """What a credential may do; each router route requires one (docs/identity.md lists them)."""

    INFERENCE = "inference"
    MODELS_READ = "models:read"
    BATCH = "batch"
    AUDIT_READ = "audit:read"
    ADMIN = "admin"


DEFAULT_SCOPES = (Scope.INFERENCE, Scope.MODELS_READ)


class CertificateIdentity(KubeModel):
    """Client certificates that identify this tenant when the router requires mTLS."""

    subjects: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="RFC 4514 subject names (e.g. CN=team-a,O=Example) mapped to this tenant.",
    )


class OidcIdentity(KubeModel):
    """OIDC tokens that identify this tenant, besides those whose tenant claim is its name."""

    values: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Values of the router's tenant claim (INFERFLUX_OIDC_TENANT_CLAIM) that mean this "
        "tenant, e.g. an identity provider's group or client id.",
    )


SPEC_RULES: tuple[Rule, ...] = (
    Rule(
        cel="!has(self.models) || !self.models.exists(m, m == '*') || size(self.models) == 1",
        message="models: '*' (every model) stands alone",
        holds=lambda s: ANY_MODEL not in s.models or len(s.models) == 1,
    ),
)


class TenantSpec(KubeModel):
    """Desired policy of one tenant."""

    display_name: str = Field(default="", max_length=256, description="Human-readable name.")
    scopes: list[Scope] = Field(
        default_factory=lambda: list(DEFAULT_SCOPES),
        max_length=8,
        description="Scopes the tenant's credentials may carry (inference, models:read, batch, "
        "audit:read, admin).",
    )
    models: list[str] = Field(
        default_factory=lambda: [ANY_MODEL],
        max_length=256,
        description="Served model names the tenant may call; ['*'] means every model.",
    )
    suspended: bool = Field(
        default=False, description="Refuse every credential of this tenant (401), without deleting it."
    )
    certificates: CertificateIdentity = Field(default_factory=CertificateIdentity)
    oidc: OidcIdentity = Field(default_factory=OidcIdentity)
    audit: AuditPolicy | None = Field(
        default=None, description="Audit retention and prompt text (docs/audit.md); unset: 90 days, no text."
    )
    budget: Budget | None = Field(
        default=None, description="Spending limits per UTC day, month and in total (docs/budgets.md)."
    )
    rate_limits: RateLimits | None = Field(default=None, description="Requests and tokens per minute.")
    guardrails: GuardrailPolicy = Field(default_factory=GuardrailPolicy)
    scheduling: Scheduling = Field(
        default_factory=Scheduling,
        description="Weight and priority band in the router's fair queue (docs/scheduling.md).",
    )

    @model_validator(mode="after")
    def _cross_field_rules(self) -> TenantSpec:
        problems = broken_rules(SPEC_RULES, self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class TenantStatus(KubeModel):
    """Observed state of a Tenant, following the Kubernetes API conventions."""

    observed_generation: int | None = Field(default=None, ge=0)
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    policy_config_map: str | None = Field(
        default=None, max_length=253, description="The ConfigMap the router reads this tenant from."
    )
    budget: BudgetStatus | None = Field(
        default=None, description="Spend against spec.budget, written by the router (docs/budgets.md)."
    )


class Tenant(KubeModel):
    """A tenant of the router."""

    model_config = KubeModel.model_config | {"extra": "ignore"}

    api_version: Literal["inferflux.io/v1alpha1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["Tenant"] = KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: TenantSpec = Field(default_factory=TenantSpec)
    status: TenantStatus = Field(default_factory=TenantStatus)

    @classmethod
    def from_body(cls, body: Any) -> Tenant:
        """Parse an object as the API server (or a YAML file) hands it over."""
        return cls.model_validate(dict(body))
