"""The policy snapshot: every tenant and API key the router enforces, in one document.

Two writers feed it, and the router merges them into one immutable `Policy` it swaps whole:
- the operator compiles the ``Tenant`` resources into a `PolicySnapshot` and publishes it as JSON
  under the key ``policy.json`` of the ConfigMap ``inferflux-policy`` in its own namespace (in local
  mode, ``inferctl up`` reads Tenant YAML into the same document);
- the admin API writes tenants of its own and every API key to the policy store (Redis, shared by
  all router replicas, or memory for a single local router).

A tenant declared by a resource wins over one of the same name in the store: Git is the source of
truth for what it declares, and the admin API refuses to edit it.

Keys are never stored in plain text: an `ApiKeyRecord` holds a keyed hash (HMAC-SHA-256 under the
router's hashing secret), plus the key id and last four characters that logs and the admin API show.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import Field

from inferflux.crds.audit import AuditPolicy
from inferflux.crds.budget import Budget, RateLimits
from inferflux.crds.guardrails import GuardrailPolicy
from inferflux.crds.meta import KubeModel
from inferflux.crds.scheduling import Scheduling
from inferflux.crds.tenant import ANY_MODEL, DEFAULT_SCOPES, TENANT_NAME, Scope

CONFIGMAP_NAME = "inferflux-policy"
CONFIGMAP_KEY = "policy.json"
FORMAT_VERSION = 1
KEY_ID = r"^[a-z2-7]{16}$"


class PolicySource(StrEnum):
    """Who declared a tenant: a Tenant resource (read-only through the admin API) or the admin API."""

    RESOURCE = "resource"
    ADMIN = "admin"


class TenantPolicy(KubeModel):
    """What one tenant may do, as the router enforces it."""

    name: str = Field(pattern=TENANT_NAME)
    display_name: str = ""
    scopes: list[Scope] = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    models: list[str] = Field(default_factory=lambda: [ANY_MODEL])
    suspended: bool = False
    certificate_subjects: list[str] = Field(default_factory=list)
    oidc_values: list[str] = Field(default_factory=list, description="Tenant-claim values meaning it.")
    budget: Budget | None = None
    rate_limits: RateLimits | None = None
    guardrails: GuardrailPolicy = Field(default_factory=GuardrailPolicy)
    source: PolicySource = PolicySource.ADMIN
    audit: AuditPolicy | None = None  # None: the defaults (90 days, no prompt text)
    scheduling: Scheduling = Field(default_factory=Scheduling)


class ApiKeyRecord(KubeModel):
    """One API key as stored: its hash and its limits, never the key itself."""

    id: str = Field(pattern=KEY_ID, description="Public key id, embedded in the key after its prefix.")
    tenant: str = Field(pattern=TENANT_NAME)
    digest: str = Field(description="hex HMAC-SHA-256 of the whole key under the hashing secret.")
    last4: str = Field(min_length=4, max_length=4)
    name: str = Field(default="", max_length=128, description="What the key is for, as its creator said.")
    scopes: list[Scope] | None = Field(default=None, description="Narrower scopes; None: the tenant's.")
    models: list[str] | None = Field(default=None, description="Narrower models; None: the tenant's.")
    created_at: dt.datetime
    expires_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    replaced_by: str | None = Field(default=None, description="The key that rotated this one out.")
    budget: Budget | None = Field(default=None, description="Limits of this key within its tenant's.")
    rate_limits: RateLimits | None = None


class PolicySnapshot(KubeModel):
    """The operator's half of the policy: the tenants declared by resources."""

    version: int = FORMAT_VERSION
    tenants: dict[str, TenantPolicy] = Field(default_factory=dict)
