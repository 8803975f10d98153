"""The budget stage: rate limits and a reservation before a request goes upstream, settlement after.

For a caller whose tenant (or key) declares a budget or a rate limit, `BudgetStage.admit` makes one
ledger call that checks the request id, the rate limits and every budget window, and reserves the
most the request can cost: every byte of the request body counted as a prompt token (a tokenizer
never makes more tokens than bytes, so this bounds the prompt without tokenizing it) plus
``max_tokens`` of output. A request that sets no ``max_tokens`` gets the model's
``maxOutputTokens`` from the pricing file written into it, so that the upstream cannot produce more
than was reserved: overspend is impossible by construction, not by luck.

`BudgetStage.finish` settles the real usage, in the background (the response does not wait). A
stream that ended before its ``usage`` arrived (the client left, the upstream broke off) is charged
an upper estimate: the prompt bound plus one token per relayed event, never more than the
reservation. A request that produced nothing is released.

Callers without limits cost nothing here: no Redis call is made for them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from inferflux.crds.budget import Budget, RateLimits, Window
from inferflux.crds.policy import ApiKeyRecord, TenantPolicy
from inferflux.router.budgets.ledger import (
    Admission,
    Ledger,
    LedgerUnavailable,
    Limits,
    Refusal,
    ScopeLimits,
)
from inferflux.router.budgets.metrics import BudgetMetrics
from inferflux.router.budgets.pricing import ModelPrice, Pricing
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.pipeline import Call, Header, OutputFilter
from inferflux.router.policy.effective import Policy, PolicyHolder

log = logging.getLogger("inferflux.router.budgets")

NOTE = "budget"


def scope_limits(budget: Budget | None, rates: RateLimits | None) -> ScopeLimits | None:
    """One tenant's or key's declared limits for the ledger; None when it declares none."""
    if budget is None and rates is None:
        return None
    windows = budget.limits() if budget is not None else {}
    return ScopeLimits(
        daily=windows.get(Window.DAILY),
        monthly=windows.get(Window.MONTHLY),
        total=windows.get(Window.TOTAL),
        requests_per_minute=rates.requests_per_minute if rates is not None else None,
        tokens_per_minute=rates.tokens_per_minute if rates is not None else None,
    )


def requested_max_tokens(document: dict[str, Any]) -> int | None:
    """The output limit the request sets (``max_completion_tokens`` wins, as in OpenAI's API)."""
    value = document.get("max_completion_tokens")
    if type(value) is int and value > 0:  # not a bool, which is an int too
        return value
    value = document.get("max_tokens")
    return value if type(value) is int and value > 0 else None


def reset_text(seconds: float) -> str:
    """A reset delay as OpenAI writes it in ``x-ratelimit-reset-*``: ``1s``, ``6m0s``, ``20ms``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def rate_headers(admission: Admission) -> list[Header]:
    """OpenAI's ``x-ratelimit-*`` headers for the limits that apply (none when none do)."""
    headers: list[Header] = []
    for (limit, remaining, reset), state in (
        (_REQUESTS_HEADERS, admission.requests),
        (_TOKENS_HEADERS, admission.tokens),
    ):
        if state is not None:
            headers += (
                (limit, b"%d" % state.limit),
                (remaining, b"%d" % state.remaining),  # never below 0 (ledger._rate)
                (reset, reset_text(state.reset_seconds).encode()),
            )
    return headers


# Built once: these go on every response to a caller with rate limits.
_REQUESTS_HEADERS = (
    b"x-ratelimit-limit-requests",
    b"x-ratelimit-remaining-requests",
    b"x-ratelimit-reset-requests",
)
_TOKENS_HEADERS = (b"x-ratelimit-limit-tokens", b"x-ratelimit-remaining-tokens", b"x-ratelimit-reset-tokens")


def refusal_error(admission: Admission, currency: str) -> UpstreamError:
    """The answer to a refused admission: 409 for a request id in use, 429 for a limit."""
    refusal, retry = admission.refusal, admission.retry_after
    who = "this key" if admission.refused_scope == "key" else "this tenant"
    if refusal is Refusal.DUPLICATE_IN_FLIGHT:
        return UpstreamError(
            ErrorCode.CONFLICT, "a request with this x-request-id is still in progress", retry_after=1
        )
    if refusal is Refusal.DUPLICATE_EXHAUSTED:
        return UpstreamError(ErrorCode.CONFLICT, "this x-request-id was used too often; send a new one")
    if refusal is Refusal.REQUESTS_RATE:
        return UpstreamError(
            ErrorCode.RATE_LIMITED, f"requests per minute of {who} exceeded", retry_after=retry
        )
    if refusal is Refusal.TOKENS_RATE:
        return UpstreamError(
            ErrorCode.RATE_LIMITED, f"tokens per minute of {who} exceeded", retry_after=retry
        )
    window = admission.refused_window or "total"
    return UpstreamError(
        ErrorCode.INSUFFICIENT_QUOTA,
        f"the {window} budget of {who} ({currency}) cannot cover this request",
        retry_after=retry,
    )


_UNKNOWN = object()


def _limits_of(tenant: TenantPolicy | None, key: ApiKeyRecord | None) -> tuple[Limits, Budget | None] | None:
    """A tenant's and a key's declared limits for the ledger, and the tenant's budget; None if none."""
    if tenant is None:
        return None
    tenant_limits = scope_limits(tenant.budget, tenant.rate_limits)
    key_limits = scope_limits(key.budget, key.rate_limits) if key is not None else None
    if tenant_limits is None and key_limits is None:
        return None
    return Limits(tenant_limits or ScopeLimits(), key_limits), tenant.budget


@dataclass(slots=True)
class Reserved:
    """What `finish` needs: the admission, the model's price it was priced with (None: the model is
    free), and the prompt bound."""

    admission: Admission
    price: ModelPrice | None
    prompt_bound: int
    strip_usage: bool

    def cost(self, input_tokens: int, output_tokens: int) -> int:
        """What this usage costs at the admission's prices, in micro-units."""
        return 0 if self.price is None else self.price.cost(input_tokens, output_tokens)


class BudgetStage:
    """Rate limits and budgets for every caller that declares them (router/pipeline.py's Stage)."""

    name = "budget"

    def __init__(
        self, ledger: Ledger | None, pricing: PricingHolder, policy: PolicyHolder, metrics: BudgetMetrics
    ) -> None:
        self.ledger = ledger
        self.pricing = pricing
        self.policy = policy
        self.metrics = metrics
        self._policy: Policy | None = None
        self._limits: dict[tuple[str, str | None], tuple[Limits, Budget | None] | None] = {}

    def limits(self, tenant: str, key_id: str | None) -> tuple[Limits, Budget | None] | None:
        """The limits that apply to a caller, and its tenant's budget; None when none do.

        Worked out once per caller and policy version (amounts parse as decimals), not per request.
        """
        current = self.policy.current
        if current is not self._policy:
            self._policy, self._limits = current, {}
        found = self._limits.get((tenant, key_id), _UNKNOWN)
        if found is _UNKNOWN:
            found = self._limits[(tenant, key_id)] = _limits_of(
                current.tenants.get(tenant), current.keys.get(key_id) if key_id else None
            )
        return found  # type: ignore[return-value]

    async def admit(self, call: Call) -> None:
        """Reserve the most ``call`` can cost, or refuse it."""
        principal = call.principal
        if principal is None:
            return
        tenant, key_id = principal.tenant, call.key_id
        found = self.limits(tenant, key_id)
        if found is None:
            return
        limits, budget = found
        pricing = self.pricing.current
        price = pricing.price_of(call.model)
        max_tokens = requested_max_tokens(call.document)
        if max_tokens is None and price is not None and call.route != "embeddings":
            # Cap what the upstream may produce at what is reserved (the model's default limit).
            call.replace_document({**call.document, "max_tokens": price.max_output_tokens})
            max_tokens = price.max_output_tokens
        strip_usage = self._ask_for_usage(call)
        prompt_bound = len(call.body)
        try:
            if self.ledger is None:  # no Redis configured: limits cannot be kept, like Redis being down
                raise LedgerUnavailable("INFERFLUX_REDIS_URL is not set")
            admission = await self.ledger.admit(
                call.request_id,
                tenant,
                key_id,
                0 if price is None else price.max_cost(prompt_bound, max_tokens),
                limits,
                pricing_checksum=pricing.checksum or "",
            )
        except LedgerUnavailable:
            if budget is not None and budget.fail_open:
                self.metrics.unavailable.labels("fail_open").inc()
                return
            self.metrics.unavailable.labels("refused").inc()
            raise UpstreamError(
                ErrorCode.UNAVAILABLE, "the budget store cannot be reached; retry later", retry_after=1
            ) from None
        call.headers.extend(rate_headers(admission))
        if admission.refusal is not None:
            self.metrics.refusals.labels(admission.refusal.value).inc()
            raise refusal_error(admission, pricing.currency)
        call.notes[NOTE] = Reserved(admission, price, prompt_bound, strip_usage)

    @staticmethod
    def _ask_for_usage(call: Call) -> bool:
        """Make a stream end with its usage (to settle on); True when the client did not ask for it."""
        if not call.stream or call.route == "messages":  # /v1/messages asks for it already
            return False
        options = call.document.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage") is True:
            return False
        options = options if isinstance(options, dict) else {}
        call.replace_document({**call.document, "stream_options": {**options, "include_usage": True}})
        return True

    async def finish(self, call: Call) -> None:
        """Settle the real cost, or an upper estimate, or release when nothing was produced.

        In the background: the response does not wait for its own accounting (a retry of the same
        request id does wait for it, in the ledger).
        """
        reserved: Reserved | None = call.notes.get(NOTE)
        if reserved is None or self.ledger is None:
            return
        admission = reserved.admission
        usage = call.usage
        if usage is not None:
            cost = reserved.cost(usage.prompt_tokens, usage.completion_tokens)
            call.notes["cost_micros"] = cost  # for the audit record (router/audit/stage.py)
            self.ledger.settle_soon(admission, cost, usage.total, self.metrics.count_settle)
        elif call.status == 200 or call.notes.get("events"):
            events = int(call.notes.get("events", 0))
            estimate = min(reserved.cost(reserved.prompt_bound, events), admission.reserved)
            call.notes["cost_micros"] = estimate
            self.ledger.settle_soon(admission, estimate, events, self.metrics.count_settle)
            self.metrics.estimated.inc()
        else:
            self.ledger.release_soon(admission, self.metrics.count_settle)

    def output(self, call: Call) -> OutputFilter | None:
        """Hide the usage chunk the stage asked for from a client that did not ask for it."""
        reserved: Reserved | None = call.notes.get(NOTE)
        if reserved is None or not reserved.strip_usage:
            return None
        return UsageChunkStripper()


class UsageChunkStripper:
    """Drops the SSE event that carries only ``usage`` (``"choices":[]``), passing every other one.

    Holds back at most one incomplete event, so no delay is added beyond the relay's own chunks.
    """

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._partial + chunk
        end = data.rfind(b"\n\n")
        if end < 0:
            self._partial = data
            return b""
        complete, self._partial = data[: end + 2], data[end + 2 :]
        if b'"usage"' not in complete:
            return complete
        events = complete.split(b"\n\n")
        kept = [event for event in events[:-1] if not _usage_only(event)]
        return b"".join(event + b"\n\n" for event in kept)

    def close(self) -> bytes:
        rest, self._partial = self._partial, b""
        return rest


def _usage_only(event: bytes) -> bool:
    return b'"usage"' in event and b'"choices":[]' in event.replace(b" ", b"")


class PricingHolder:
    """The pricing in force; a new valid file replaces it for new requests only."""

    def __init__(self, pricing: Pricing) -> None:
        self.current = pricing

    def replace(self, pricing: Pricing) -> None:
        """Price every request admitted from now on with ``pricing``."""
        if pricing.checksum != self.current.checksum:
            log.info("pricing %s (%s) in force", pricing.version, pricing.checksum)
        self.current = pricing
