"""What one request asks of the fair queue: whose it is, its weight and band, its estimated tokens.

The tenant's policy (``spec.scheduling`` of its Tenant, or the admin API's tenant) gives the weight
and the priority; the ``x-inferflux-priority`` request header may lower the priority, never raise
it. The cost is an estimate made before anything is sent: the request body's bytes / 4 (about a
token per four bytes of English and JSON) plus the completion it may produce (``max_tokens`` or
``max_completion_tokens``, or the configured default when absent; none for embeddings). The real
usage corrects it when the request finishes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inferflux.crds.policy import PolicySource
from inferflux.crds.scheduling import MIN_PRIORITY, Scheduling
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.identity.principal import Principal
from inferflux.router.policy.effective import PolicyHolder

PRIORITY_HEADER = "x-inferflux-priority"
BYTES_PER_TOKEN = 4
ANONYMOUS = "-"  # the flow of requests with no tenant (auth off, internal calls)
OTHER = "other"  # the metric label of tenants not declared by a Tenant resource


@dataclass(slots=True)
class Demand:
    """One request's claim: ``label`` is the tenant as metrics show it; ``used`` is filled in from
    the upstream's usage when it reports one, before the request releases its slot. The dispatcher
    records ``waited`` (seconds in the model's queue) and ``granted`` (``time.perf_counter()`` when
    the slot came) for the admin console's recent requests."""

    tenant: str
    label: str
    weight: int
    priority: int
    estimate: int
    used: int | None = None
    waited: float = 0.0
    granted: float = 0.0


def estimate_tokens(body_size: int, document: Mapping[str, Any], completes: bool, default_max: int) -> int:
    """Prompt tokens guessed from the body's size, plus the completion the request allows."""
    completion = 0
    if completes:
        limit = document.get("max_completion_tokens", document.get("max_tokens"))
        completion = limit if isinstance(limit, int) and limit > 0 else default_max
    return max(1, body_size // BYTES_PER_TOKEN + completion)


def lowered_priority(policy_priority: int, header: bytes | None) -> int:
    """The request's band: the policy's, or the header's when lower (clamped to the lowest band)."""
    if header is None:
        return policy_priority
    try:
        asked = int(header.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise UpstreamError(
            ErrorCode.BAD_REQUEST, f"{PRIORITY_HEADER} must be an integer", param=PRIORITY_HEADER
        ) from None
    return max(MIN_PRIORITY, min(asked, policy_priority))


class Demands:
    """Turns requests into `Demand` values against the current policy."""

    def __init__(self, policy: PolicyHolder, default_max_tokens: int = 256) -> None:
        self.policy = policy
        self.default_max_tokens = default_max_tokens

    def of(
        self,
        principal: Principal | None,
        body_size: int,
        document: Mapping[str, Any],
        completes: bool = True,
        header: bytes | None = None,
    ) -> Demand:
        """The demand of one request by ``principal`` (None: no tenant, the default policy)."""
        tenant = principal.tenant if principal is not None else ANONYMOUS
        declared = self.policy.current.tenants.get(tenant) if principal is not None else None
        scheduling = declared.scheduling if declared is not None else Scheduling()
        if declared is not None and declared.source is PolicySource.RESOURCE:
            label = tenant  # bounded: Tenant resources are written by the installation's admins
        else:
            label = ANONYMOUS if principal is None else OTHER
        return Demand(
            tenant,
            label,
            scheduling.weight,
            lowered_priority(scheduling.priority, header),
            estimate_tokens(body_size, document, completes, self.default_max_tokens),
        )

    def default(self, body_size: int) -> Demand:
        """The demand of a request that came without one (internal calls): no tenant, band 0."""
        return Demand(
            ANONYMOUS, ANONYMOUS, 1, 0, estimate_tokens(body_size, {}, True, self.default_max_tokens)
        )
