"""The per-model concurrency limit and its bounded queue."""

from __future__ import annotations

import asyncio

import pytest

from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.limiter import Limiter


async def test_waiters_get_slots_in_order_and_overflow_is_refused() -> None:
    limiter = Limiter(max_concurrency=2, max_queue=2, retry_after=3)
    await limiter.acquire()
    await limiter.acquire()
    order: list[int] = []

    async def wait(tag: int) -> None:
        await limiter.acquire()
        order.append(tag)

    waiters = [asyncio.ensure_future(wait(i)) for i in range(2)]
    await asyncio.sleep(0)
    assert limiter.queued == 2
    with pytest.raises(UpstreamError) as refused:
        await limiter.acquire()
    assert refused.value.code is ErrorCode.OVERLOADED
    assert refused.value.status == 429
    assert refused.value.headers() == [(b"retry-after", b"3")]
    limiter.release()
    limiter.release()
    await asyncio.gather(*waiters)
    assert order == [0, 1]
    assert limiter.active == 2


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    limiter = Limiter(max_concurrency=1, max_queue=5)
    await limiter.acquire()
    waiter = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.queued == 0
    limiter.release()
    assert limiter.active == 0


async def test_resize_frees_waiters() -> None:
    limiter = Limiter(max_concurrency=1, max_queue=5)
    await limiter.acquire()
    waiter = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    limiter.resize(2, 5)
    await asyncio.wait_for(waiter, 1)
    assert limiter.active == 2
