"""The coalescing work queue, on a real event loop."""

from __future__ import annotations

import asyncio

from inferflux.operator.workqueue import WorkQueue, backoff


async def wait_idle(queue: WorkQueue[str]) -> None:
    async with asyncio.timeout(5):
        while not queue.idle:  # noqa: ASYNC110 - polling the queue's state is the point
            await asyncio.sleep(0.01)


async def test_a_burst_of_adds_reconciles_once() -> None:
    seen: list[str] = []

    async def reconcile(key: str) -> None:
        seen.append(key)

    queue: WorkQueue[str] = WorkQueue("t", reconcile, workers=2)
    for _ in range(50):
        queue.add("a")
    queue.add("b")
    queue.start()
    await wait_idle(queue)
    await queue.stop()
    assert sorted(seen) == ["a", "b"]


async def test_an_add_during_reconcile_runs_again_afterwards_never_concurrently() -> None:
    running = 0
    peak = 0
    calls = 0
    release = asyncio.Event()

    async def reconcile(key: str) -> None:
        nonlocal running, peak, calls
        running += 1
        calls += 1
        peak = max(peak, running)
        if calls == 1:
            await release.wait()
        running -= 1

    queue: WorkQueue[str] = WorkQueue("t", reconcile, workers=4)
    queue.start()
    queue.add("k")
    await asyncio.sleep(0.05)
    queue.add("k")
    queue.add("k")
    release.set()
    await asyncio.sleep(0.05)
    await wait_idle(queue)
    await queue.stop()
    assert (calls, peak) == (2, 1)


async def test_failures_are_retried_and_requeue_delays_honoured() -> None:
    attempts: list[float] = []

    async def reconcile(key: str) -> float | None:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) == 1:
            raise RuntimeError("transient")
        return 0.05 if len(attempts) == 2 else None

    queue: WorkQueue[str] = WorkQueue("t", reconcile, workers=1)
    queue.start()
    queue.add("k")
    async with asyncio.timeout(5):
        while len(attempts) < 3:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await queue.stop()
    assert attempts[1] - attempts[0] >= backoff(1) * 0.9
    assert attempts[2] - attempts[1] >= 0.04


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff(100) == 60.0
