"""The ledger on a real redis-server: reserve/settle, idempotency, budgets, GCRA, windows, round trips."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from inferflux.router.budgets.ledger import Admission, CostRecord, Ledger, Limits, Refusal, ScopeLimits

CHECKSUM = "sha256:" + "ab" * 32


class Clock:
    """Simulated time handed to the script instead of Redis TIME (microseconds)."""

    def __init__(self, at: dt.datetime) -> None:
        self.now = int(at.timestamp() * 1_000_000)

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1_000_000)


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)  # type: ignore[misc]


@pytest.fixture
def clock() -> Clock:
    return Clock(utc(2027, 1, 31, 12, 0, 0))


@pytest.fixture
async def timed(redis: Any, clock: Clock) -> AsyncIterator[Ledger]:
    """A ledger whose script runs at the simulated time."""
    ledger = Ledger.from_url(redis.url, clock=clock, reservation_ttl=30)
    await ledger.load()
    try:
        yield ledger
    finally:
        await ledger.close()


async def admit(ledger: Ledger, rid: str, cost: int, limits: Limits, key: str | None = None) -> Admission:
    return await ledger.admit(rid, "acme", key, cost, limits, pricing_checksum=CHECKSUM)


async def test_a_callers_new_limits_apply_to_its_next_admission(ledger: Ledger) -> None:
    """The arguments a caller's admissions share are kept per limits object: new limits (a policy
    change) take effect at once, for the same tenant and key."""
    roomy = Limits(ScopeLimits(total=10_000), ScopeLimits(total=10_000))
    assert (await admit(ledger, "before", 800, roomy, key="k1")).admitted
    assert (await admit(ledger, "again", 800, roomy, key="k1")).admitted
    tight = Limits(ScopeLimits(total=10_000), ScopeLimits(total=2_000))
    refused = await admit(ledger, "after", 800, tight, key="k1")
    assert (refused.refusal, refused.refused_scope) == (Refusal.BUDGET, "key")
    assert (await admit(ledger, "roomy-again", 800, roomy, key="k1")).admitted


async def test_reserve_then_settle_then_release(ledger: Ledger) -> None:
    limits = Limits(ScopeLimits(daily=10_000), ScopeLimits(total=5_000))
    first = await admit(ledger, "r1", 1_000, limits, key="k1")
    assert first.admitted
    assert (first.attempt, first.reserved, first.pricing_checksum) == (1, 1_000, CHECKSUM)
    spend = await ledger.spend("acme", "k1", limits)
    assert spend.day == dt.datetime.now(dt.UTC).strftime("%Y-%m-%d") or spend.day  # Redis time
    assert spend.tenant["daily"].reserved == 1_000
    assert spend.tenant["daily"].limit == 10_000
    assert spend.key is not None
    assert (spend.key["total"].reserved, spend.key["total"].limit) == (1_000, 5_000)

    record = await ledger.settle(first, 640, 120)
    assert (record.outcome, record.charged, record.total_charged, record.reserved) == (
        "settled",
        640,
        640,
        1_000,
    )
    assert record.pricing_checksum == CHECKSUM
    second = await admit(ledger, "r2", 2_000, limits, key="k1")
    released = await ledger.release(second)
    assert (released.outcome, released.charged) == ("released", 0)
    spend = await ledger.spend("acme", "k1", limits)
    for windows in (spend.tenant, spend.key):
        assert windows is not None
        assert {w: (s.spent, s.reserved) for w, s in windows.items()} == {
            "daily": (640, 0),
            "monthly": (640, 0),
            "total": (640, 0),
        }


async def test_a_budget_refusal_names_the_scope_and_window(timed: Ledger, clock: Clock) -> None:
    limits = Limits(ScopeLimits(daily=2_500), ScopeLimits(monthly=10_000))
    assert (await admit(timed, "a", 1_000, limits, key="k1")).admitted
    assert (await admit(timed, "b", 1_000, limits, key="k1")).admitted
    refused = await admit(timed, "c", 1_000, limits, key="k1")
    assert refused.refusal is Refusal.BUDGET
    assert (refused.refused_scope, refused.refused_window) == ("tenant", "daily")
    assert refused.retry_after == 12 * 3600  # until 2027-02-01T00:00:00Z, by the script's clock
    assert (await admit(timed, "c", 500, limits, key="k1")).admitted  # what fits still goes in
    key_refused = await admit(timed, "d", 9_000, Limits(ScopeLimits(), ScopeLimits(monthly=10_000)), key="k1")
    assert (key_refused.refusal, key_refused.refused_scope, key_refused.refused_window) == (
        Refusal.BUDGET,
        "key",
        "monthly",
    )
    total = await admit(timed, "e", 1, Limits(ScopeLimits(total=0)))
    assert (total.refusal, total.refused_window, total.retry_after) == (Refusal.BUDGET, "total", None)


async def test_without_the_pipelined_connection_a_burst_shares_pipelines(redis: Any) -> None:
    """redis-py's pool (no `fast` connection): calls made while 8 are in flight go out together."""
    ledger = Ledger(Redis.from_url(redis.url))
    limits = Limits(ScopeLimits(daily=10**9))
    try:
        await ledger.load()
        before = ledger.round_trips
        admissions = await asyncio.gather(*(admit(ledger, f"b-{i}", 10, limits) for i in range(300)))
        assert all(a.admitted for a in admissions)
        assert ledger.round_trips - before < 300
    finally:
        await ledger.close()


async def test_one_thousand_concurrent_admissions_never_overspend(ledger: Ledger) -> None:
    """A budget that fits 100 requests at their maximum: settled spend never exceeds it."""
    budget, max_cost = 100_000, 1_000
    limits = Limits(ScopeLimits(daily=budget, monthly=budget * 10, total=budget * 100))
    rng = random.Random(17)
    costs = {f"req-{i}": rng.randint(600, max_cost) for i in range(1_000)}

    async def one(rid: str) -> tuple[Refusal | None, int]:
        admission = await admit(ledger, rid, max_cost, limits)
        if not admission.admitted:
            return admission.refusal, 0
        await asyncio.sleep(rng.random() / 100)
        record = await ledger.settle(admission, costs[rid], 50)
        assert record.outcome == "settled"
        return None, record.charged

    results = await asyncio.gather(*(one(rid) for rid in costs))
    outcomes = Counter(refusal for refusal, _ in results)
    assert set(outcomes) <= {None, Refusal.BUDGET}
    assert outcomes[None] >= budget // max_cost  # at least as many as fit at the maximum
    assert outcomes[Refusal.BUDGET] > 0
    spend = await ledger.spend("acme", limits=limits)
    charged = sum(amount for _, amount in results)
    assert spend.tenant["daily"].spent == charged <= budget
    assert spend.tenant["daily"].reserved == 0
    assert ledger.pending_settles == 0


async def test_the_same_request_id_ten_times_is_charged_once(ledger: Ledger) -> None:
    limits = Limits(ScopeLimits(daily=1_000_000))
    # Three at once: one goes in, the others find it in flight.
    first = await asyncio.gather(*(admit(ledger, "same", 1_000, limits) for _ in range(3)))
    admitted = [a for a in first if a.admitted]
    assert len(admitted) == 1
    assert [a.refusal for a in first if not a.admitted] == [Refusal.DUPLICATE_IN_FLIGHT] * 2
    await ledger.settle(admitted[0], 700, 10)
    # Seven more: three pairs, then one. Each retry reserves only what could exceed the charge.
    refusals: list[Refusal | None] = []
    for size in (2, 2, 2, 1):
        group = await asyncio.gather(*(admit(ledger, "same", 1_000, limits) for _ in range(size)))
        for admission in group:
            refusals.append(admission.refusal)
            if admission.admitted:
                assert admission.reserved == 300
                assert admission.previously_charged == 700
                assert (await ledger.settle(admission, 700, 10)).charged == 0
    assert Counter(refusals) == {None: 4, Refusal.DUPLICATE_IN_FLIGHT: 3}
    # Five attempts used: the eleventh is refused for good.
    assert (await admit(ledger, "same", 1_000, limits)).refusal is Refusal.DUPLICATE_EXHAUSTED
    spend = await ledger.spend("acme", limits=limits)
    assert (spend.tenant["daily"].spent, spend.tenant["daily"].reserved) == (700, 0)


async def test_a_retry_costing_more_is_charged_the_difference_only(ledger: Ledger) -> None:
    limits = Limits(ScopeLimits(total=10_000))
    first = await admit(ledger, "grow", 1_000, limits)
    assert (await ledger.settle(first, 400, 1)).total_charged == 400
    second = await admit(ledger, "grow", 1_000, limits)
    record = await ledger.settle(second, 900, 1)
    assert (record.charged, record.total_charged) == (500, 900)
    assert (await ledger.settle(second, 900, 1)).outcome == "duplicate"
    assert (await ledger.spend("acme")).tenant["total"].spent == 900


async def test_expired_reservations_are_reclaimed_and_late_settles_count_once(
    timed: Ledger, clock: Clock
) -> None:
    limits = Limits(ScopeLimits(daily=2_000))
    held = await admit(timed, "slow", 1_500, limits)
    assert not (await admit(timed, "other", 1_000, limits)).admitted
    clock.advance(31)  # past the 30 s reservation ttl: released at the next call
    spend = await timed.spend("acme", limits=limits)
    assert (spend.tenant["daily"].spent, spend.tenant["daily"].reserved) == (0, 0)
    other = await admit(timed, "other", 1_000, limits)
    assert other.admitted
    # The slow request finally settles: its real cost is charged (once), even past the limit.
    late = await timed.settle(held, 1_200, 5)
    assert (late.outcome, late.charged, late.reserved) == ("settled", 1_200, 0)
    assert (await timed.settle(held, 1_200, 5)).outcome == "duplicate"
    # A retry of the expired id is admitted again only for what it could add.
    spend = await timed.spend("acme", limits=limits)
    assert (spend.tenant["daily"].spent, spend.tenant["daily"].reserved) == (1_200, 1_000)


async def test_gcra_600_rpm_lets_ten_per_second_through(timed: Ledger, clock: Clock) -> None:
    """Simulated minute on the script's clock: exact counts, no wall-clock dependence."""
    limits = Limits(ScopeLimits(requests_per_minute=600))
    # A client offering 20 requests/s for 60 s gets 600 plus the burst (one second's worth).
    accepted = 0
    for i in range(1_200):
        admission = await admit(timed, f"fast-{i}", 0, limits)
        if admission.admitted:
            accepted += 1
            await timed.release(admission)
        else:
            assert admission.refusal is Refusal.REQUESTS_RATE
            assert admission.retry_after is not None
            assert 0 < admission.retry_after <= 0.1
        clock.advance(0.05)
    assert 600 <= accepted <= 610
    # A client at 10/s (jittered by up to 50 ms) is never refused.
    clock.advance(60)
    rng = random.Random(3)
    for i in range(600):
        admission = await admit(timed, f"steady-{i}", 0, limits)
        assert admission.admitted, i
        assert admission.requests is not None
        assert admission.requests.limit == 600
        assert 0 <= admission.requests.remaining <= 10
        await timed.release(admission)
        clock.advance(0.1 + rng.uniform(-0.05, 0.05))


async def test_rate_headers_report_the_tighter_of_tenant_and_key(timed: Ledger) -> None:
    limits = Limits(
        ScopeLimits(requests_per_minute=600, tokens_per_minute=100_000),
        ScopeLimits(requests_per_minute=60, request_burst=3, tokens_per_minute=5_000),
    )
    admissions = [await admit(timed, f"h{i}", 0, limits, key="k1") for i in range(4)]
    assert [a.admitted for a in admissions] == [True, True, True, False]
    assert admissions[0].requests is not None
    assert (admissions[0].requests.limit, admissions[0].requests.remaining) == (60, 2)
    assert admissions[0].requests.reset_seconds == pytest.approx(1.0)
    assert admissions[0].tokens is not None
    assert (admissions[0].tokens.limit, admissions[0].tokens.remaining) == (5_000, 5_000)
    refused = admissions[3]
    assert (refused.refusal, refused.refused_scope) == (Refusal.REQUESTS_RATE, "key")
    assert refused.retry_after == pytest.approx(1.0)


async def test_tokens_per_minute_counts_settled_usage(timed: Ledger, clock: Clock) -> None:
    limits = Limits(ScopeLimits(tokens_per_minute=1_000))
    first = await admit(timed, "t1", 0, limits)
    await timed.settle(first, 0, 1_200)  # real usage may overdraw: the bucket is in debt
    refused = await admit(timed, "t2", 0, limits)
    assert refused.refusal is Refusal.TOKENS_RATE
    # Out of debt once 201 tokens are back: 201 * 60 ms.
    assert refused.retry_after == pytest.approx(12.06)
    assert refused.tokens is not None
    assert refused.tokens.remaining == 0
    clock.advance(12.06)
    admitted = await admit(timed, "t2", 0, limits)
    assert admitted.admitted
    assert admitted.tokens is not None
    assert admitted.tokens.remaining == 1
    assert admitted.tokens.reset_seconds == pytest.approx(59.94)


async def test_rates_are_read_without_taking_a_slot_or_counting_a_token(
    timed: Ledger, clock: Clock, redis: Any
) -> None:
    limits = Limits(
        ScopeLimits(requests_per_minute=600, tokens_per_minute=1_000),
        ScopeLimits(requests_per_minute=60, request_burst=3),
    )
    fresh = await timed.rates("acme", "k1", limits)
    assert fresh.tenant.requests is not None
    assert (fresh.tenant.requests.limit, fresh.tenant.requests.capacity) == (600, 10)
    assert fresh.tenant.requests.remaining == 10
    assert fresh.tenant.requests.reset_seconds == 0
    assert fresh.tenant.tokens is not None
    assert (fresh.tenant.tokens.limit, fresh.tenant.tokens.remaining) == (1_000, 1_000)
    assert fresh.key is not None
    assert fresh.key.requests is not None
    assert (fresh.key.requests.capacity, fresh.key.requests.remaining) == (3, 3)
    assert fresh.key.tokens is None  # the key declares no tokens per minute

    admitted = [await admit(timed, f"u{i}", 0, limits, key="k1") for i in range(2)]
    assert all(admission.admitted for admission in admitted)
    await timed.settle(admitted[0], 0, 300)
    before = await _contents(redis.url)
    for _ in range(3):  # reading changes nothing, however often
        now = await timed.rates("acme", "k1", limits)
        assert now.tenant.requests is not None
        assert now.tenant.requests.remaining == 10 - 2
        assert now.tenant.requests.reset_seconds == pytest.approx(0.2)
        assert now.tenant.tokens is not None
        assert now.tenant.tokens.remaining == 1_000 - 300
        assert now.key is not None
        assert now.key.requests is not None
        assert now.key.requests.remaining == 3 - 2
    assert await _contents(redis.url) == before

    # The headers of the next admission agree with what was read (one slot fewer: it took one).
    third = await admit(timed, "u2", 0, limits)
    assert third.requests is not None
    assert third.requests.remaining == 10 - 3
    clock.advance(60)  # a minute later every bucket is full again
    rested = await timed.rates("acme", None, limits)
    assert rested.key is None
    assert rested.tenant.requests is not None
    assert rested.tenant.requests.remaining == 10
    assert rested.tenant.tokens is not None
    assert rested.tenant.tokens.remaining == 1_000
    unlimited = await timed.rates("acme")
    assert (unlimited.tenant.requests, unlimited.tenant.tokens) == (None, None)


async def _contents(url: str) -> dict[bytes, Any]:
    """Every key of the Redis and its value (hashes, sorted sets and strings: what the ledger keeps)."""
    client = Redis.from_url(url)
    contents: dict[bytes, Any] = {}
    try:
        for key in await client.keys("*"):
            kind = await client.type(key)
            if kind == b"hash":
                contents[key] = await client.hgetall(key)
            elif kind == b"zset":
                contents[key] = await client.zrange(key, 0, -1, withscores=True)
            else:
                contents[key] = await client.get(key)
    finally:
        await client.aclose()
    return contents


async def test_daily_and_monthly_windows_roll_over_at_utc_boundaries(
    timed: Ledger, clock: Clock, redis: Any
) -> None:
    limits = Limits(ScopeLimits(daily=1_000, monthly=2_500))
    clock.now = int(utc(2027, 1, 30, 23, 59, 59).timestamp() * 1_000_000)
    await timed.settle(await admit(timed, "jan30", 1_000, limits), 1_000, 1)
    assert (await admit(timed, "jan30b", 1, limits)).refused_window == "daily"
    clock.advance(2)  # 2027-01-31T00:00:01Z
    await timed.settle(await admit(timed, "jan31", 1_000, limits), 1_000, 1)
    clock.advance(3600)
    assert (await admit(timed, "jan31b", 1_000, limits)).refused_window == "daily"
    clock.now = int(utc(2027, 1, 31, 23, 0).timestamp() * 1_000_000)
    spend = await timed.spend("acme", limits=limits)
    assert (spend.day, spend.month) == ("2027-01-31", "2027-01")
    assert spend.tenant["monthly"].spent == 2_000
    clock.now = int(utc(2027, 2, 1, 0, 0, 1).timestamp() * 1_000_000)
    feb = await admit(timed, "feb1", 1_000, limits)
    assert feb.admitted
    spend = await timed.spend("acme", limits=limits)
    assert (spend.day, spend.month) == ("2027-02-01", "2027-02")
    assert (spend.tenant["monthly"].reserved, spend.tenant["total"].spent) == (1_000, 2_000)
    # One hash per scope: a field per day and month charged, the total, the open reservations.
    client = Redis.from_url(redis.url)
    try:
        spend_hash = "inferflux:ledger:t:acme"
        assert await client.hgetall(spend_hash) == {
            b"d:2027-01-30": b"1000",
            b"d:2027-01-31": b"1000",
            b"m:2027-01": b"2000",
            b"all": b"2000",
            b"reserved": b"1000",
        }
        # A day's and a month's fields are dropped 35 days after their window ends, when a new day
        # is first charged: 2027-01-30 ended on 01-31, so on 03-07 it goes; 01-31 and January stay.
        await timed.release(feb)
        clock.now = int(utc(2027, 3, 7, 12).timestamp() * 1_000_000)
        await timed.settle(await admit(timed, "mar7", 10, limits), 10, 1)
        assert set(await client.hkeys(spend_hash)) == {
            b"d:2027-01-31", b"m:2027-01", b"d:2027-03-07", b"m:2027-03", b"all", b"reserved"
        }  # fmt: skip
        clock.now = int(utc(2027, 3, 8, 12).timestamp() * 1_000_000)
        await timed.settle(await admit(timed, "mar8", 10, limits), 10, 1)
        assert set(await client.hkeys(spend_hash)) == {
            b"d:2027-03-07", b"d:2027-03-08", b"m:2027-03", b"all", b"reserved"
        }  # fmt: skip
        assert (await timed.spend("acme", limits=limits)).tenant["total"].spent == 2_020
    finally:
        await client.aclose()


async def test_one_round_trip_per_operation_and_the_script_reloads_itself(ledger: Ledger, redis: Any) -> None:
    limits = Limits(ScopeLimits(daily=10_000, requests_per_minute=600, tokens_per_minute=10_000))
    before = ledger.round_trips
    admission = await admit(ledger, "rt", 100, limits, key="k1")
    assert ledger.round_trips == before + 1
    await ledger.settle(admission, 80, 10)
    assert ledger.round_trips == before + 2
    client = Redis.from_url(redis.url)
    try:
        await client.script_flush()  # as after a Redis restart
    finally:
        await client.aclose()
    assert (await admit(ledger, "rt2", 100, limits, key="k1")).admitted
    assert ledger.round_trips == before + 5  # NOSCRIPT, SCRIPT LOAD, EVALSHA
    # The same inside a pipeline: 30 calls at once, 8 go alone, the rest in one pipeline.
    client = Redis.from_url(redis.url)
    try:
        await client.script_flush()
    finally:
        await client.aclose()
    budget_only = Limits(ScopeLimits(daily=10_000_000))
    many = await asyncio.gather(*(admit(ledger, f"p{i}", 100, budget_only, key="k1") for i in range(30)))
    assert all(admission.admitted for admission in many)
    assert len({admission.request_id for admission in many}) == 30
    # A pipeline that meets NOSCRIPT loads the script and runs again only what failed.
    client = Redis.from_url(redis.url)
    try:
        await client.script_flush()
    finally:
        await client.aclose()
    before = ledger.round_trips
    replies = await ledger._pipeline([("spend", ledger.prefix, "", "acme", "")] * 3)
    assert [len(reply) for reply in replies] == [8, 8, 8]
    assert ledger.round_trips == before + 3  # pipeline (NOSCRIPT), SCRIPT LOAD, pipeline


@pytest.mark.parametrize(
    ("rid", "tenant", "key"),
    [("", "acme", None), ("x" * 201, "acme", None), ("r", "a:b", None), ("r", "acme", "k:1")],
)
async def test_malformed_arguments_are_refused_before_redis(
    ledger: Ledger, rid: str, tenant: str, key: str | None
) -> None:
    before = ledger.round_trips
    with pytest.raises(ValueError, match="characters"):
        await ledger.admit(rid, tenant, key, 1, Limits(), pricing_checksum=CHECKSUM)
    assert ledger.round_trips == before


async def test_settle_soon_lands_in_the_background_before_a_retry_of_the_same_id(
    ledger: Ledger, redis: Any
) -> None:
    limits = Limits(ScopeLimits(total=10_000))
    records: list[CostRecord] = []
    first = await admit(ledger, "bg", 1_000, limits)
    ledger.settle_soon(first, 600, 10, records.append)
    assert records == []  # not waited for
    retry = await admit(ledger, "bg", 1_000, limits)  # waits for the settle, then is a retry
    assert (retry.refusal, retry.attempt, retry.previously_charged) == (None, 2, 600)
    assert [(r.outcome, r.charged) for r in records] == [("settled", 600)]
    other = await admit(ledger, "bg2", 1_000, limits)
    ledger.release_soon(retry)
    ledger.settle_soon(other, 300, 10)
    await ledger.close()  # waits for both
    check = Ledger.from_url(redis.url)
    try:
        total = (await check.spend("acme")).tenant["total"]
        assert (total.spent, total.reserved) == (900, 0)
    finally:
        await check.close()


async def evalsha_calls(url: str) -> int:
    """EVALSHA calls the Redis at ``url`` has served (its own count, not the ledger's)."""
    client = Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return int(stats.get("cmdstat_evalsha", {"calls": 0})["calls"])


async def test_a_background_settle_rides_along_with_the_next_admission(ledger: Ledger, redis: Any) -> None:
    """Admit, settle without waiting, admit the next: one script call per request, spend exact."""
    ledger.settle_delay = 60.0  # nothing goes alone within this test: only admissions carry
    limits = Limits(ScopeLimits(total=100_000, requests_per_minute=6_000, tokens_per_minute=100_000))
    records: list[CostRecord] = []
    before = await evalsha_calls(redis.url)
    previous = None
    for i in range(20):
        admission = await admit(ledger, f"ride-{i}", 1_000, limits, key="k1")
        assert admission.admitted
        if previous is not None:
            previous_count = len(records)
            ledger.settle_soon(previous, 400, 10, records.append)
            assert len(records) == previous_count  # waits for the next admission
        previous = admission
    assert await evalsha_calls(redis.url) - before == 20  # 20 admissions carried 18 settles
    assert [r.outcome for r in records] == ["settled"] * 18
    assert previous is not None
    ledger.settle_soon(previous, 400, 10, records.append)
    await ledger.settled()  # sends the last one alone, at once
    assert await evalsha_calls(redis.url) - before == 21
    spend = await ledger.spend("acme", "k1")
    assert spend.key is not None
    for windows in (spend.tenant, spend.key):
        assert (windows["total"].spent, windows["total"].reserved) == (20 * 400, 0)


async def test_settles_queued_while_an_admission_is_out_ride_with_a_later_one_once(
    ledger: Ledger, redis: Any
) -> None:
    """Concurrent requests: settles queued while an admission's call is out are not that call's;
    each is sent once (carried by a later admission, or alone) and reported once."""
    ledger.settle_delay = 60.0
    limits = Limits(ScopeLimits(total=10_000_000, requests_per_minute=600_000))
    records: list[CostRecord] = []
    before = await evalsha_calls(redis.url)

    async def client(name: str) -> None:
        previous = None  # settled once the next is admitted: always a request open, as in a router
        for i in range(25):
            admission = await admit(ledger, f"{name}-{i}", 1_000, limits, key="k1")
            assert admission.admitted
            if previous is not None:
                ledger.settle_soon(previous, 400, 10, records.append)
            previous = admission
        assert previous is not None
        ledger.settle_soon(previous, 400, 10, records.append)

    await asyncio.gather(*(client(f"c{n}") for n in range(8)))
    await ledger.settled()
    assert collections.Counter(r.outcome for r in records) == {"settled": 200}
    assert len({r.request_id for r in records}) == 200
    # 200 admissions, and a settle alone only when no other admission was open (the last ones)
    assert await evalsha_calls(redis.url) - before <= 200 + 8
    total = (await ledger.spend("acme", "k1")).tenant["total"]
    assert (total.spent, total.reserved) == (200 * 400, 0)


async def test_a_quiet_ledger_still_settles_within_the_delay(ledger: Ledger) -> None:
    """With no admission to ride along with, a settle goes alone after ``settle_delay``."""
    limits = Limits(ScopeLimits(total=10_000))
    records: list[CostRecord] = []
    first = await admit(ledger, "quiet", 1_000, limits)
    second = await admit(ledger, "quiet2", 1_000, limits)
    assert (await admit(ledger, "still-open", 1_000, limits)).admitted  # so neither goes at once
    ledger.settle_soon(first, 300, 10, records.append)
    ledger.release_soon(second, records.append)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len(records) < 2:  # bounded polling, no ledger call that could carry them
        assert loop.time() < deadline, "the settles were never sent"
        await asyncio.sleep(0.01)
    assert [(r.outcome, r.charged) for r in records] == [("settled", 300), ("released", 0)]
    total = (await ledger.spend("acme")).tenant["total"]
    assert (total.spent, total.reserved) == (300, 1_000)


async def test_the_last_open_request_settles_at_once(ledger: Ledger, redis: Any) -> None:
    """With no other admitted request open, a settle does not wait for an admission to carry it."""
    ledger.settle_delay = 60.0  # were it waiting for a carrier or the delay, this test would time out
    limits = Limits(ScopeLimits(total=10_000))
    records: list[CostRecord] = []
    only = await admit(ledger, "only", 1_000, limits)
    before = await evalsha_calls(redis.url)
    ledger.settle_soon(only, 300, 10, records.append)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not records:
        assert loop.time() < deadline, "the settle waited for a carrier"
        await asyncio.sleep(0.01)
    assert [(r.outcome, r.charged) for r in records] == [("settled", 300)]
    assert await evalsha_calls(redis.url) - before == 1
    total = (await ledger.spend("acme")).tenant["total"]
    assert (total.spent, total.reserved) == (300, 0)


async def test_a_carried_settle_sent_twice_is_charged_once(ledger: Ledger) -> None:
    limits = Limits(ScopeLimits(total=10_000))
    records: list[CostRecord] = []
    first = await admit(ledger, "twice", 1_000, limits)
    ledger.settle_soon(first, 600, 10, records.append)
    ledger.settle_soon(first, 600, 10, records.append)
    assert (await admit(ledger, "twice-next", 1_000, limits)).admitted
    assert [(r.outcome, r.charged) for r in records] == [("settled", 600), ("duplicate", 0)]
    total = (await ledger.spend("acme")).tenant["total"]
    assert (total.spent, total.reserved) == (600, 1_000)


async def test_a_retry_waits_for_a_settle_already_on_its_way(ledger: Ledger) -> None:
    """A settle carried by another admission still in flight: the retry of its id waits for it."""
    limits = Limits(ScopeLimits(total=10_000))
    first = await admit(ledger, "way", 1_000, limits)
    ledger.settle_soon(first, 700, 10)
    carrier = asyncio.ensure_future(admit(ledger, "carrier", 1_000, limits))
    await asyncio.sleep(0)  # the carrier has taken the settle along and is waiting for Redis
    assert not ledger._carries("acme", "way")
    retry = await admit(ledger, "way", 1_000, limits)
    assert (retry.refusal, retry.attempt, retry.previously_charged) == (None, 2, 700)
    assert (await carrier).admitted


async def test_admissions_of_one_turn_go_in_one_call_checked_in_order(ledger: Ledger, redis: Any) -> None:
    """Admissions made in one turn of the event loop share one script call: each is checked against
    the budget as the ones before it left it, so a burst cannot overspend; two callers, both scopes."""
    ledger.settle_delay = 60.0
    ledger.send_at = 128  # else a batch goes as soon as it holds 8 (the next test)
    acme = Limits(ScopeLimits(total=30_000), key=ScopeLimits(total=25_000))
    other = Limits(ScopeLimits(requests_per_minute=600, request_burst=3))
    before = await evalsha_calls(redis.url)
    burst = [ledger.admit(f"b{i}", "acme", "k1", 1_000, acme, pricing_checksum=CHECKSUM) for i in range(40)]
    burst += [ledger.admit(f"o{i}", "other", None, 1_000, other, pricing_checksum=CHECKSUM) for i in range(5)]
    burst.append(ledger.admit("b0", "acme", "k1", 1_000, acme, pricing_checksum=CHECKSUM))  # the same id
    admissions = await asyncio.gather(*burst)
    assert await evalsha_calls(redis.url) - before == 1
    assert [a.admitted for a in admissions[:40]] == [True] * 25 + [False] * 15  # the key's 25,000 first
    assert {(a.refusal, a.refused_scope, a.refused_window) for a in admissions[25:40]} == {
        (Refusal.BUDGET, "key", "total")
    }
    assert [a.admitted for a in admissions[40:45]] == [True] * 3 + [False] * 2  # a burst of 3
    assert {a.refusal for a in admissions[43:45]} == {Refusal.REQUESTS_RATE}
    assert admissions[45].refusal is Refusal.DUPLICATE_IN_FLIGHT
    spend = await ledger.spend("acme", "k1")
    assert spend.key is not None
    assert (spend.tenant["total"].reserved, spend.key["total"].reserved) == (25_000, 25_000)
    # Their settles ride along with the next burst's call, applied before its admissions.
    for admission in admissions[:25]:
        ledger.settle_soon(admission, 600, 10)
    again = await asyncio.gather(
        *(ledger.admit(f"c{i}", "acme", "k1", 1_000, acme, pricing_checksum=CHECKSUM) for i in range(12))
    )
    assert await evalsha_calls(redis.url) - before == 3  # the burst, the spend read, this burst
    assert [a.admitted for a in again] == [True] * 10 + [False] * 2  # 25 x 600 spent: 10,000 left
    await ledger.settled()
    spend = await ledger.spend("acme", "k1")
    assert spend.key is not None
    assert (spend.key["total"].spent, spend.key["total"].reserved) == (15_000, 10_000)


async def test_a_batch_goes_as_soon_as_it_holds_send_at_admissions(ledger: Ledger, redis: Any) -> None:
    """A full batch is written at once (Redis works on it while the turn goes on), the rest at the
    end of the turn: 20 admissions at 8 a call are 3 calls, still checked in order."""
    assert ledger.send_at == 8
    limits = Limits(ScopeLimits(total=15_000))
    before = await evalsha_calls(redis.url)
    admissions = await asyncio.gather(*(admit(ledger, f"s{i}", 1_000, limits) for i in range(20)))
    assert await evalsha_calls(redis.url) - before == 3
    assert [a.admitted for a in admissions] == [True] * 15 + [False] * 5
    assert (await ledger.spend("acme")).tenant["total"].reserved == 15_000
    with pytest.raises(ValueError, match="send_at"):
        Ledger(Redis.from_url(redis.url), send_at=0)
