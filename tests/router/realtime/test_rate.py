"""The token bucket: a steady rate passes, ten times the rate does not."""

from __future__ import annotations

from typing import Any

from inferflux.router.realtime.rate import TokenBucket


def test_the_allowed_rate_passes_and_ten_times_it_is_refused(clock: Any) -> None:
    bucket = TokenBucket(rate=30, burst=30, clock=clock)
    for _ in range(300):  # 30 Hz for ten seconds
        clock.now += 1 / 30
        assert bucket.take()
    refused = 0
    for _ in range(300):  # 300 Hz for one second
        clock.now += 1 / 300
        refused += not bucket.take()
    assert refused >= 240


def test_a_burst_is_bounded_and_refills(clock: Any) -> None:
    bucket = TokenBucket(rate=10, burst=10, clock=clock)
    assert sum(bucket.take() for _ in range(25)) == 10
    clock.now += 0.5
    assert sum(bucket.take() for _ in range(25)) == 5
