"""The queue's exactly-once record, reclaiming, leases and delays, on a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from inferflux.router.batch.queue import BatchQueue, QueueFull
from inferflux.router.batch.records import Owner, new_record
from inferflux.router.batch.validation import Task


@pytest.fixture
async def queue(redis: Any) -> AsyncIterator[BatchQueue]:
    queue = BatchQueue.from_url(redis.url)
    await queue.ensure_group()
    try:
        yield queue
    finally:
        await queue.close()


def tasks(count: int, model: str = "m") -> list[Task]:
    return [Task(index + 1, f"c{index}", model, b'{"model": "m"}') for index in range(count)]


async def create(queue: BatchQueue, batch_id: str, count: int, tenant: str = "t", limit: int = 0) -> None:
    record = new_record(batch_id, Owner(tenant), "/v1/chat/completions", "file-x", None, 1000, 10**10, count)
    await queue.create(record, tasks(count), "/v1/chat/completions", limit)


async def test_a_result_is_recorded_once_however_often_it_is_completed(queue: BatchQueue) -> None:
    await create(queue, "batch_1", 2)
    first, second = await queue.read("w1", 10, 100)
    assert await queue.complete(first, {"n": 1}, "completed")
    assert not await queue.complete(first, {"n": 2}, "failed")  # a redelivery finishing late
    record = await queue.record("batch_1")
    assert record is not None
    assert (record["completed"], record["failed"], record["remaining"]) == ("1", "0", "1")
    assert await queue.finalizable() == []
    assert await queue.start(first.task, 10, 0) == "done"
    assert await queue.complete(second, {"n": 3}, "failed")
    assert await queue.finalizable() == ["batch_1"]
    results = await queue.results("batch_1")
    assert [(item["line"], item["record"]) for item in results] == [(1, {"n": 1}), (2, {"n": 3})]
    assert int(await queue.redis.get(queue.tenant_key("t", "queued")) or 0) == 0
    pending = await queue.redis.xpending(queue.stream, "workers")
    assert pending["pending"] == 0


async def test_a_task_left_unacknowledged_is_reclaimed_by_another_worker(queue: BatchQueue) -> None:
    await create(queue, "batch_1", 1)
    [taken] = await queue.read("dead-worker", 10, 100)
    assert await queue.reclaim("live-worker", 5.0, 10) == []  # not idle long enough yet
    await asyncio.sleep(0.3)
    [again] = await queue.reclaim("live-worker", 0.2, 10)
    assert again.task == taken.task
    await queue.touch("live-worker", [again], 10)  # a heartbeat resets the idle time
    assert await queue.reclaim("third-worker", 0.2, 10) == []


async def test_a_tenants_running_tasks_are_limited(queue: BatchQueue) -> None:
    await create(queue, "batch_1", 3)
    first, second, third = await queue.read("w", 10, 100)
    assert await queue.start(first.task, 10, 2) == "go"
    assert await queue.start(second.task, 10, 2) == "go"
    assert await queue.start(third.task, 10, 2) == "busy"
    await queue.complete(first, {}, "completed")  # releases its lease
    assert await queue.start(third.task, 10, 2) == "go"


async def test_a_tenants_queued_tasks_are_limited(queue: BatchQueue) -> None:
    await create(queue, "batch_1", 3, limit=4)
    with pytest.raises(QueueFull) as refused:
        await create(queue, "batch_2", 2, limit=4)
    assert refused.value.queued == 3
    assert await queue.record("batch_2") is None
    await create(queue, "batch_3", 1, limit=4)


async def test_deferred_tasks_come_back_when_due(queue: BatchQueue) -> None:
    await create(queue, "batch_1", 1)
    [taken] = await queue.read("w", 10, 100)
    await queue.defer(taken, 0.2, attempt=1)
    assert await queue.promote() == 0
    assert await queue.read("w", 10, 10) == []
    await asyncio.sleep(0.25)
    assert await queue.promote() == 1
    [again] = await queue.read("w", 10, 100)
    assert again.task.custom_id == taken.task.custom_id
    assert again.task.attempt == 1


async def test_cancel_stops_tasks_from_starting(queue: BatchQueue) -> None:
    await create(queue, "batch_1", 2)
    first, second = await queue.read("w", 10, 100)
    assert await queue.cancel("batch_1", 2000) == "cancelling"
    assert await queue.start(first.task, 10, 0) == "cancelled"
    assert await queue.cancel("batch_nope", 2000) == ""
    await queue.complete(first, {}, "skipped")
    await queue.complete(second, {}, "skipped")
    assert await queue.finalizable() == ["batch_1"]
    assert await queue.settle("batch_1", "cancelled", "cancelled_at", 2001, 60)
    assert not await queue.settle("batch_1", "completed", "completed_at", 2002, 60)
    record = await queue.record("batch_1")
    assert record is not None
    assert (record["status"], record["completed"]) == ("cancelled", "0")
    assert await queue.redis.ttl(queue.batch_key("batch_1")) > 0


async def test_a_task_past_the_batch_window_is_expired(queue: BatchQueue) -> None:
    record = new_record("batch_1", Owner("t"), "/v1/chat/completions", "file-x", None, 1000, 10, 1)
    await queue.create(record, tasks(1), "/v1/chat/completions", 0)
    [taken] = await queue.read("w", 10, 100)
    assert await queue.start(taken.task, 10, 0) == "expired"
