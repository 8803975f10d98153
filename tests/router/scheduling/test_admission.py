"""The fair queue's asyncio side: waiting, waking, refusing with 429, and cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.scheduling.admission import FairAdmission
from inferflux.router.scheduling.demand import Demand
from inferflux.router.scheduling.metrics import SchedulingMetrics


def demand(tenant: str, priority: int = 0, estimate: int = 10) -> Demand:
    return Demand(tenant, tenant, 1, priority, estimate)


def admission(slots: int, places: int, **options: float) -> tuple[FairAdmission, CollectorRegistry]:
    registry = CollectorRegistry()
    return FairAdmission("m", slots, places, SchedulingMetrics(registry), **options), registry


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value("inferflux_router_fairness_" + name + "_total", labels) or 0.0


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait, bounded, until ``condition()`` holds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - the state polled has no event to wait on
            await asyncio.sleep(0.005)


async def test_waiters_start_fairly_as_slots_free() -> None:
    gate, registry = admission(1, 10)
    first = await gate.acquire(demand("a"))
    order: list[str] = []

    async def wait(tenant: str) -> None:
        entry = await gate.acquire(demand(tenant))
        order.append(tenant)
        gate.release(entry, 10)

    tasks = [asyncio.ensure_future(wait(t)) for t in ("a", "a", "a", "b", "b", "b")]
    await until(lambda: gate.queued >= 6)
    gate.release(first, 10)
    await asyncio.gather(*tasks)
    assert order == ["b", "a", "b", "a", "b", "a"]
    assert gate.active == 0
    assert sample(registry, "queued", model="m", priority="0", tenant="a") == 3
    assert sample(registry, "admitted", model="m", priority="0", tenant="a") == 4


async def test_a_displaced_waiter_gets_429_with_retry_after() -> None:
    gate, registry = admission(1, 2, retry_after=2.0)
    await gate.acquire(demand("hog"))
    first = asyncio.ensure_future(gate.acquire(demand("hog")))
    newest = asyncio.ensure_future(gate.acquire(demand("hog")))
    await until(lambda: gate.queued >= 2)
    with pytest.raises(UpstreamError) as refused:
        await gate.acquire(demand("hog"))
    assert refused.value.status == 429
    assert refused.value.headers() == [(b"retry-after", b"2")]
    polite = asyncio.ensure_future(gate.acquire(demand("polite")))
    with pytest.raises(UpstreamError) as displaced:
        async with asyncio.timeout(5):
            await newest
    assert displaced.value.code is ErrorCode.OVERLOADED
    assert "another tenant" in displaced.value.message
    assert not first.done()
    assert sample(registry, "shed", model="m", priority="0", tenant="hog", reason="queue_full") == 1
    assert sample(registry, "shed", model="m", priority="0", tenant="hog", reason="displaced") == 1
    first.cancel()
    polite.cancel()


async def test_sheddable_requests_are_refused_when_the_queue_is_busy() -> None:
    gate, registry = admission(1, 2, sheddable_share=0.5)
    await gate.acquire(demand("bulk", priority=-1))
    waiting = asyncio.ensure_future(gate.acquire(demand("bulk", priority=-1)))
    await until(lambda: gate.queued >= 1)
    with pytest.raises(UpstreamError) as shed:
        await gate.acquire(demand("bulk", priority=-1))
    assert "sheddable" in shed.value.message
    assert sample(registry, "shed", model="m", priority="-1", tenant="bulk", reason="shed") == 1
    waiting.cancel()


async def test_a_cancelled_waiter_frees_its_place_at_once() -> None:
    gate, _ = admission(1, 1)
    running = await gate.acquire(demand("a"))
    waiter = asyncio.ensure_future(gate.acquire(demand("b")))
    await until(lambda: gate.queued >= 1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert gate.queued == 0
    replacement = asyncio.ensure_future(gate.acquire(demand("c")))  # no refusal: the place is free
    await until(lambda: gate.queued >= 1)
    gate.release(running)
    async with asyncio.timeout(5):
        entry = await replacement
    gate.release(entry)
    assert gate.active == 0


async def test_a_waiter_cancelled_as_it_is_woken_gives_the_slot_on() -> None:
    gate, _ = admission(1, 5)
    running = await gate.acquire(demand("a"))
    woken = asyncio.ensure_future(gate.acquire(demand("b")))
    after = asyncio.ensure_future(gate.acquire(demand("c")))
    await until(lambda: gate.queued >= 2)
    gate.release(running)  # resolves b's future; b is cancelled before it runs
    woken.cancel()
    with pytest.raises(asyncio.CancelledError):
        await woken
    async with asyncio.timeout(5):
        entry = await after
    assert gate.active == 1
    gate.release(entry)


async def test_growing_the_limits_wakes_waiters() -> None:
    gate, _ = admission(1, 5)
    await gate.acquire(demand("a"))
    waiter = asyncio.ensure_future(gate.acquire(demand("b")))
    await until(lambda: gate.queued >= 1)
    gate.resize(2, 5)
    async with asyncio.timeout(5):
        await waiter
    assert gate.active == 2


async def test_a_waiter_displaced_and_cancelled_at_once_holds_nothing() -> None:
    gate, _ = admission(1, 1)
    running = await gate.acquire(demand("a"))
    waiter = asyncio.ensure_future(gate.acquire(demand("a")))
    await until(lambda: gate.queued >= 1)
    newcomer = asyncio.ensure_future(gate.acquire(demand("b", priority=1)))  # displaces a's waiter
    await until(lambda: waiter.done() or newcomer.done() or gate.queue.bands.get(1) is not None)
    waiter.cancel()
    with pytest.raises((asyncio.CancelledError, UpstreamError)):
        await waiter
    gate.release(running)
    async with asyncio.timeout(5):
        entry = await newcomer
    gate.release(entry)
    assert (gate.active, gate.queued) == (0, 0)
