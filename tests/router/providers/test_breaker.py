"""The circuit breaker's states, on an injected clock."""

from __future__ import annotations

from inferflux.router.errors import ErrorCode
from inferflux.router.providers.breaker import Breaker, State


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_consecutive_failures() -> None:
    clock = Clock()
    breaker = Breaker(threshold=3, cooldown_seconds=10, clock=clock)
    for _ in range(2):
        breaker.failure(ErrorCode.UPSTREAM_ERROR)
    assert breaker.allow()
    breaker.success()  # a success resets the count
    for _ in range(2):
        breaker.failure(ErrorCode.TIMEOUT)
    assert breaker.state is State.CLOSED
    breaker.failure(ErrorCode.OVERLOADED)
    assert breaker.state is State.OPEN
    assert not breaker.allow()


def test_client_errors_and_rate_limits_do_not_count() -> None:
    breaker = Breaker(threshold=1, clock=Clock())
    for code in (ErrorCode.BAD_REQUEST, ErrorCode.AUTH, ErrorCode.RATE_LIMITED, ErrorCode.CONTEXT_LENGTH):
        breaker.failure(code)
    assert breaker.state is State.CLOSED


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = Clock()
    breaker = Breaker(threshold=1, cooldown_seconds=10, clock=clock)
    breaker.failure(ErrorCode.UNAVAILABLE)
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state is State.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # a second caller waits for the probe's verdict
    breaker.success()
    assert breaker.state is State.CLOSED
    assert breaker.allow()


def test_a_failed_probe_reopens_for_a_full_cooldown() -> None:
    clock = Clock()
    breaker = Breaker(threshold=5, cooldown_seconds=10, clock=clock)
    for _ in range(5):
        breaker.failure(ErrorCode.UNAVAILABLE)
    clock.now += 10
    assert breaker.allow()
    breaker.failure(ErrorCode.TIMEOUT)  # one probe failure is enough
    assert breaker.state is State.OPEN
    clock.now += 9
    assert not breaker.allow()


def test_a_cancelled_probe_frees_the_slot() -> None:
    clock = Clock()
    breaker = Breaker(threshold=1, cooldown_seconds=1, clock=clock)
    breaker.failure(ErrorCode.UNAVAILABLE)
    clock.now += 1
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


def test_hold_refuses_calls_without_opening() -> None:
    clock = Clock()
    breaker = Breaker(clock=clock)
    breaker.hold(5)
    assert not breaker.allow()
    assert breaker.state is State.CLOSED
    clock.now += 5
    assert breaker.allow()
