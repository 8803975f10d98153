"""The policy snapshot the router enforces, compiled from Tenant resources (a pure function).

The operator publishes it as canonical (sorted) JSON under ``policy.json`` in the ConfigMap
``inferflux-policy`` of its own namespace; ``inferctl up`` writes the same document to a file. Equal
Tenants give byte-equal output on any machine, so an unchanged set of Tenants is never rewritten.

Two rules keep the snapshot unambiguous:
- a Tenant whose name the router cannot use as a tenant name (a DNS label: no dots, at most 63
  characters) is left out and reported;
- a certificate subject (or an OIDC tenant-claim value) listed by more than one Tenant identifies
  none of them: it is dropped from every claimant, which are published without it and reported, so
  a client certificate or a token never maps to a tenant by accident of ordering.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from inferflux.crds.policy import CONFIGMAP_KEY, CONFIGMAP_NAME, PolicySnapshot, PolicySource, TenantPolicy
from inferflux.crds.tenant import TENANT_NAME, Tenant
from inferflux.operator.render.labels import published_configmap

INVALID_NAME = "InvalidName"
SUBJECT_CONFLICT = "SubjectConflict"


@dataclass(frozen=True)
class Problem:
    """Why one Tenant is not published as declared; ``published`` says whether it is in at all."""

    reason: str
    message: str
    published: bool


@dataclass(frozen=True)
class CompiledPolicy:
    """The snapshot, and what it had to leave out, by tenant name."""

    snapshot: PolicySnapshot
    problems: dict[str, Problem] = field(default_factory=dict)


def tenant_policy(tenant: Tenant) -> TenantPolicy:
    """One Tenant as the router enforces it (scopes and subjects sorted, duplicates dropped)."""
    spec = tenant.spec
    return TenantPolicy(
        name=tenant.metadata.name,
        display_name=spec.display_name,
        scopes=sorted(set(spec.scopes)),
        models=sorted(set(spec.models)),
        suspended=spec.suspended,
        certificate_subjects=sorted(set(spec.certificates.subjects)),
        oidc_values=sorted(set(spec.oidc.values)),
        audit=spec.audit,
        budget=spec.budget,
        rate_limits=spec.rate_limits,
        guardrails=spec.guardrails,
        scheduling=spec.scheduling,
        source=PolicySource.RESOURCE,
    )


# The identifying fields a Tenant claims for itself, with how a conflict over one is described.
CLAIMED_FIELDS = (
    ("certificate_subjects", "certificate subject"),
    ("oidc_values", "OIDC tenant-claim value"),
)


def _claims(policies: Iterable[TenantPolicy], field_name: str) -> dict[str, list[str]]:
    claimants: dict[str, list[str]] = {}
    for policy in policies:
        for value in getattr(policy, field_name):
            claimants.setdefault(value, []).append(policy.name)
    return claimants


def compile_policy(tenants: Iterable[Tenant]) -> CompiledPolicy:
    """The snapshot of ``tenants``, with every Tenant left out (or cut down) and why."""
    problems: dict[str, Problem] = {}
    policies: dict[str, TenantPolicy] = {}
    for tenant in sorted(tenants, key=lambda t: t.metadata.name):
        name = tenant.metadata.name
        if not re.fullmatch(TENANT_NAME, name):
            problems[name] = Problem(
                INVALID_NAME, f"{name!r} is not a tenant name: use at most 63 of a-z, 0-9 and '-'", False
            )
            continue
        policies[name] = tenant_policy(tenant)
    for field_name, what in CLAIMED_FIELDS:
        contested = {
            v: names for v, names in _claims(policies.values(), field_name).items() if len(names) > 1
        }
        for value, names in sorted(contested.items()):
            for name in names:
                others = ", ".join(n for n in names if n != name)
                kept = [v for v in getattr(policies[name], field_name) if v != value]
                policies[name] = policies[name].model_copy(update={field_name: kept})
                problems[name] = Problem(
                    SUBJECT_CONFLICT,
                    f"{what} {value!r} is also claimed by {others}; it identifies no tenant",
                    True,
                )
    return CompiledPolicy(PolicySnapshot(tenants=policies), problems)


def policy_json(snapshot: PolicySnapshot) -> str:
    """The snapshot as canonical JSON (sorted keys), the form the ConfigMap and the local file hold."""
    return orjson.dumps(snapshot.to_wire(), option=orjson.OPT_SORT_KEYS).decode()


def render_policy_configmap(
    snapshot: PolicySnapshot, namespace: str, name: str = CONFIGMAP_NAME
) -> dict[str, Any]:
    """The ConfigMap the router watches for the tenants the resources declare."""
    return published_configmap(name, namespace, CONFIGMAP_KEY, policy_json(snapshot))
