"""Who is calling: the tenant, the credential that proved it, and what that credential may do.

A credential narrows its tenant's rights, never widens them: a principal's scopes and models are
the intersection of the credential's and the tenant's. ``models`` None means every model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from inferflux.crds.policy import TenantPolicy
from inferflux.crds.tenant import ANY_MODEL, Scope
from inferflux.router.identity.failures import unauthenticated


def model_set(models: Iterable[str] | None) -> frozenset[str] | None:
    """A model list as a set, None (every model) when absent or when it holds ``'*'``."""
    if models is None:
        return None
    chosen = frozenset(models)
    return None if ANY_MODEL in chosen else chosen


def narrow_models(tenant: Iterable[str], credential: Iterable[str] | None) -> frozenset[str] | None:
    """The models both the tenant and the credential allow (None: every model)."""
    allowed, narrower = model_set(tenant), model_set(credential)
    if allowed is None:
        return narrower
    if narrower is None:
        return allowed
    return allowed & narrower


def narrow_scopes(tenant: Iterable[Scope], credential: Iterable[Scope] | None) -> frozenset[Scope]:
    """The scopes both the tenant and the credential carry (no credential scopes: the tenant's)."""
    allowed = frozenset(tenant)
    return allowed if credential is None else allowed & frozenset(credential)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``subject`` is a key id, a token subject or a certificate subject;
    ``until`` is when the credential stops being valid (epoch seconds; inf: no expiry)."""

    tenant: str
    kind: str  # "api_key", "jwt" or "certificate"
    subject: str
    scopes: frozenset[Scope]
    models: frozenset[str] | None
    until: float = math.inf

    def may_use(self, model: str) -> bool:
        """True when this principal may call ``model``."""
        return self.models is None or model in self.models


def within(
    tenant: TenantPolicy | None,
    kind: str,
    subject: str,
    *,
    scopes: Iterable[Scope] | None = None,
    models: Iterable[str] | None = None,
    until: float = math.inf,
    unknown: str = "unknown_tenant",
) -> Principal:
    """The principal a proven credential gives within ``tenant``, narrowed by the credential's own
    ``scopes`` and ``models``; a 401 when the tenant is unknown (reason ``unknown``) or suspended."""
    if tenant is None:
        raise unauthenticated(unknown)
    if tenant.suspended:
        raise unauthenticated("suspended")
    return Principal(
        tenant.name,
        kind,
        subject,
        narrow_scopes(tenant.scopes, scopes),
        narrow_models(tenant.models, models),
        until,
    )
