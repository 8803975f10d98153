"""Backoff: exponential full jitter, retry-after, Groq's aggressive mode, what is safe to retry."""

from __future__ import annotations

import random

import pytest

from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.providers.backoff import DEFAULT, GROQ, Backoff, falls_through


def error(code: ErrorCode, retry_after: float | None = None) -> UpstreamError:
    return UpstreamError(code, "x", retry_after=retry_after)


def test_waits_grow_exponentially_within_the_jitter_range() -> None:
    policy = Backoff(base_seconds=0.1, factor=2, cap_seconds=1.0)
    rng = random.Random(7)
    for attempt, ceiling in enumerate([0.1, 0.2, 0.4, 0.8, 1.0, 1.0]):
        waits = [policy.delay(attempt, error(ErrorCode.UNAVAILABLE), rng) for _ in range(200)]
        assert all(0 <= wait <= ceiling for wait in waits)
        assert max(waits) > ceiling * 0.8  # full jitter spreads over the whole range
        assert min(waits) < ceiling * 0.2


def test_retry_after_wins_over_the_computed_wait() -> None:
    assert DEFAULT.delay(0, error(ErrorCode.RATE_LIMITED, retry_after=1.25)) == 1.25


def test_aggressive_mode_never_waits_less_than_retry_after_and_backs_off_harder() -> None:
    rng = random.Random(1)
    for _ in range(100):
        assert GROQ.delay(0, error(ErrorCode.RATE_LIMITED, retry_after=0.5), rng) >= 0.5
    plain = max(DEFAULT.delay(1, error(ErrorCode.RATE_LIMITED), rng) for _ in range(200))
    groq = min(GROQ.delay(1, error(ErrorCode.RATE_LIMITED), rng) for _ in range(200))
    assert groq > plain / 2  # Groq's smallest wait is near plain's largest
    assert GROQ.hold_seconds(error(ErrorCode.RATE_LIMITED, retry_after=9)) == 9
    assert DEFAULT.hold_seconds(error(ErrorCode.RATE_LIMITED, retry_after=9)) == 0
    assert GROQ.hold_seconds(error(ErrorCode.UNAVAILABLE)) == 0


@pytest.mark.parametrize(
    ("code", "same_upstream", "next_link"),
    [
        (ErrorCode.RATE_LIMITED, True, True),
        (ErrorCode.OVERLOADED, True, True),
        (ErrorCode.UNAVAILABLE, True, True),
        (ErrorCode.TIMEOUT, False, True),  # may have been billed: only the next link
        (ErrorCode.UPSTREAM_ERROR, False, True),
        (ErrorCode.BAD_REQUEST, False, False),
        (ErrorCode.AUTH, False, False),
        (ErrorCode.CONTEXT_LENGTH, False, False),
        (ErrorCode.CONTENT_FILTERED, False, False),
        (ErrorCode.NOT_FOUND, False, False),
    ],
)
def test_only_safe_failures_are_retried(code: ErrorCode, same_upstream: bool, next_link: bool) -> None:
    assert DEFAULT.should_retry(0, error(code), streamed=False) is same_upstream
    assert falls_through(error(code)) is next_link


def test_no_retry_after_streaming_started_or_beyond_the_budget() -> None:
    assert not DEFAULT.should_retry(0, error(ErrorCode.UNAVAILABLE), streamed=True)
    assert not DEFAULT.should_retry(1, error(ErrorCode.UNAVAILABLE), streamed=False)  # retries=1 used up
    assert DEFAULT.next_delay(0, error(ErrorCode.RATE_LIMITED, retry_after=30), 60) is None  # > max_wait
    assert DEFAULT.next_delay(0, error(ErrorCode.RATE_LIMITED, retry_after=1), 0.5) is None  # > time left
    assert DEFAULT.next_delay(0, error(ErrorCode.RATE_LIMITED, retry_after=1), 60) == 1
