"""The coalescing work queue, on a real event loop."""

from __future__ import annotations

import asyncio

from inferflux.operator.workqueue import REQUEUE_LATER, Later, WorkQueue, backoff


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


async def test_a_key_requeued_later_runs_after_every_key_events_queued() -> None:
    order: list[str] = []
    first_pass_done: set[str] = set()

    async def reconcile(key: str) -> Later | None:
        order.append(key)
        await asyncio.sleep(0)
        if key not in first_pass_done:
            first_pass_done.add(key)
            if len(first_pass_done) <= 4:
                queue.add(f"new-{len(first_pass_done) + 2}")  # a burst: more models keep arriving
            return REQUEUE_LATER
        return None

    queue: WorkQueue[str] = WorkQueue("t", reconcile, workers=1)
    queue.add("new-1")
    queue.add("new-2")
    queue.start()
    await wait_idle(queue)
    await queue.stop()
    firsts = [f"new-{i}" for i in range(1, 7)]
    assert order == firsts + firsts  # every first pass before any second one, each lane in order
