"""A circuit breaker per upstream: stop calling what keeps failing, probe it again after a rest.

States: **closed** (calls flow; consecutive failures are counted), **open** (after ``threshold``
consecutive failures; every call is refused for ``cooldown`` seconds so the fallback chain goes
straight to its next link), **half-open** (the cool-down has passed; exactly one probe call is let
through: success closes the breaker, failure opens it for another cool-down).

A breaker can also be *held* for a fixed time without counting a failure: that is how a strict
``retry-after`` (Groq's aggressive rate-limit mode) keeps an upstream out of rotation.

Only upstream faults count as failures (timeouts, 5xx, overload); a client's bad request says
nothing about the upstream's health. The clock is injectable so tests need not sleep.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from inferflux.router.errors import ErrorCode

# Failures that say something about the upstream's health.
COUNTED = frozenset(
    {ErrorCode.TIMEOUT, ErrorCode.UNAVAILABLE, ErrorCode.UPSTREAM_ERROR, ErrorCode.OVERLOADED}
)


class State(enum.IntEnum):
    """Breaker states; the value is what the ``inferflux_router_breaker_state`` gauge shows."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass
class Breaker:
    """The breaker of one upstream."""

    threshold: int = 5
    cooldown_seconds: float = 30.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    held_until: float = 0.0
    probing: bool = field(default=False)

    @property
    def state(self) -> State:
        """The current state, derived from the failure count and the clock."""
        if self.opened_at is None:
            return State.CLOSED
        if self.clock() - self.opened_at >= self.cooldown_seconds:
            return State.HALF_OPEN
        return State.OPEN

    def allow(self) -> bool:
        """True when a call may go out now; in half-open only the first caller gets the probe."""
        if self.clock() < self.held_until:
            return False
        state = self.state
        if state is State.CLOSED:
            return True
        if state is State.HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def success(self) -> None:
        """A call succeeded: close the breaker."""
        self.failures, self.opened_at, self.probing = 0, None, False

    def failure(self, code: ErrorCode) -> None:
        """A call failed with ``code``; an upstream fault counts towards opening."""
        if code not in COUNTED:
            # Not the upstream's fault; a probe that ends this way still proved it answers.
            if self.probing:
                self.success()
            return
        self.failures += 1
        if self.probing or self.failures >= self.threshold:
            self.opened_at, self.probing = self.clock(), False

    def release(self) -> None:
        """A call ended without a verdict (cancelled): let the next caller probe."""
        self.probing = False

    def hold(self, seconds: float) -> None:
        """Refuse calls for ``seconds`` without counting a failure."""
        if seconds > 0:
            self.held_until = max(self.held_until, self.clock() + seconds)
