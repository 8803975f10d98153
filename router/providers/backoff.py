"""When to try the same upstream again, and how long to wait first.

Exponential backoff with full jitter (each wait is uniform in ``[0, base * factor**attempt]``,
capped) spreads retries from many router replicas so they do not hammer a recovering upstream in
lock-step. An upstream's own ``retry-after`` always wins over the computed wait. A retry is only
worth it when the wait fits the budget (``max_wait``); otherwise the chain falls through to the next
link at once instead of holding the client.

Groq's "aggressive rate-limit mode" (seeds S6c) treats a 429 more severely: ``retry-after`` is a
hard floor (never earlier, never shortened by jitter), the computed wait starts higher and grows
faster, and the upstream is held out of rotation until the wait has passed (see `breaker.py`).

Only failures where the upstream did not do the work are retried on the same upstream: rate
limits, overload and unavailability. A timeout may have been billed and half-done, so it is never
retried on the same upstream; it only falls through to the next link.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from inferflux.router.errors import ErrorCode, UpstreamError

# Safe to send again to the same upstream: the request was refused before any work was done.
SAME_UPSTREAM_RETRYABLE = frozenset({ErrorCode.RATE_LIMITED, ErrorCode.OVERLOADED, ErrorCode.UNAVAILABLE})
# Worth trying on the next link of a fallback chain: the request itself was not at fault.
FALLTHROUGH = frozenset(
    {
        ErrorCode.RATE_LIMITED,
        ErrorCode.TIMEOUT,
        ErrorCode.UNAVAILABLE,
        ErrorCode.OVERLOADED,
        ErrorCode.UPSTREAM_ERROR,
    }
)


@dataclass(frozen=True)
class Backoff:
    """A retry policy for one upstream."""

    retries: int = 1
    base_seconds: float = 0.2
    factor: float = 2.0
    cap_seconds: float = 8.0
    max_wait_seconds: float = 2.0
    aggressive_rate_limits: bool = False

    def computed(self, attempt: int, code: ErrorCode, rng: random.Random | None = None) -> float:
        """The jittered exponential wait before retry number ``attempt`` (0-based)."""
        base, factor = self.base_seconds, self.factor
        if self.aggressive_rate_limits and code is ErrorCode.RATE_LIMITED:
            base, factor = base * 4, factor * 1.5
        ceiling = min(self.cap_seconds, base * factor**attempt)
        if self.aggressive_rate_limits and code is ErrorCode.RATE_LIMITED:
            # Never less than half the ceiling: a rate-limited Groq key needs real rest.
            return (rng or random).uniform(ceiling / 2, ceiling)
        return (rng or random).uniform(0.0, ceiling)

    def delay(self, attempt: int, error: UpstreamError, rng: random.Random | None = None) -> float:
        """How long to wait before retry ``attempt``: the upstream's ``retry-after`` wins when given."""
        computed = self.computed(attempt, error.code, rng)
        if error.retry_after is None:
            return computed
        if self.aggressive_rate_limits:
            return max(error.retry_after, computed)
        return error.retry_after

    def should_retry(self, attempt: int, error: UpstreamError, streamed: bool) -> bool:
        """True when retry ``attempt`` on the same upstream is safe and allowed at all."""
        return not streamed and attempt < self.retries and error.code in SAME_UPSTREAM_RETRYABLE

    def next_delay(self, attempt: int, error: UpstreamError, remaining_seconds: float) -> float | None:
        """The wait before retry ``attempt`` on the same upstream, or None when it must not be retried.

        A retry whose wait exceeds ``max_wait_seconds`` or the time left is not worth holding the
        client for: the chain falls through to its next link instead.
        """
        if not self.should_retry(attempt, error, streamed=False):
            return None
        delay = self.delay(attempt, error)
        if delay > self.max_wait_seconds or delay >= remaining_seconds:
            return None
        return delay

    def hold_seconds(self, error: UpstreamError) -> float:
        """How long an upstream stays out of rotation after ``error`` (aggressive mode, 429 only)."""
        if not self.aggressive_rate_limits or error.code is not ErrorCode.RATE_LIMITED:
            return 0.0
        return error.retry_after if error.retry_after is not None else self.base_seconds * 4


def falls_through(error: UpstreamError) -> bool:
    """True when a fallback chain may try its next link after ``error``."""
    return error.code in FALLTHROUGH


GROQ = Backoff(retries=2, aggressive_rate_limits=True)
DEFAULT = Backoff()
