"""Batch workers: claim tasks from the stream, run them through the request path, record the outcome.

One `Worker` runs up to ``concurrency`` tasks at a time under one consumer name. Beside its reads,
it keeps house every ``housekeeping_seconds``: moves due retries back to the stream, reclaims tasks
that another worker left unacknowledged for ``visibility_seconds`` (it died: XAUTOCLAIM), writes the
output files of batches that have no task left, and removes expired files. A heartbeat renews the
worker's own running tasks well before that timeout, so a slow task is not taken from a live worker.

A task's answer decides its fate:

- 2xx: a line in the output file;
- a retryable failure (no answer, 408, 429 other than a budget refusal, 5xx): tried again after
  ``backoff_seconds * 2^(attempt-1)`` (capped), and after ``max_attempts`` dead-lettered: a line in
  the error file carrying the last answer, and an entry in the dead-letter stream;
- any other status: a line in the error file at once (the request itself is at fault).

Every record goes through `BatchQueue.complete`, which writes a task's result once, however often the
task was delivered. What is *not* guaranteed is that the backend is called once: a worker killed
after the backend answered and before the record is written leaves a task that runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from redis.exceptions import RedisError

from inferflux.router.batch.files import FileMeta, FileStore
from inferflux.router.batch.metrics import BatchMetrics
from inferflux.router.batch.queue import BatchQueue, Delivery, TaskMessage
from inferflux.router.batch.records import TERMINAL, error_line, output_file_id, output_line

log = logging.getLogger("inferflux.router.batch.worker")
_RETRYABLE = frozenset({0, 408, 429, 500, 502, 503, 504})


class Executor(Protocol):
    """What runs a task: the router's request path (executor.py), or a stand-in in unit tests."""

    async def run(self, task: TaskMessage) -> Any:
        """An object with ``status`` and ``body``."""


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker claims, retries and keeps its tasks."""

    concurrency: int = 4
    visibility_seconds: float = 300.0
    max_attempts: int = 3
    backoff_seconds: float = 2.0
    backoff_cap_seconds: float = 60.0
    tenant_concurrency: int = 0  # 0: no limit
    retention_seconds: int = 30 * 86400
    housekeeping_seconds: float = 0.5
    busy_delay_seconds: float = 0.25
    file_sweep_seconds: float = 3600.0
    block_ms: int = 1000


def consumer_name() -> str:
    """A consumer name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def retryable(status: int, body: Any) -> bool:
    """True when another attempt might succeed; a budget refusal (429 insufficient_quota) will not."""
    if status not in _RETRYABLE:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return not (isinstance(error, dict) and error.get("code") == "insufficient_quota")


def backoff(settings: WorkerSettings, attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``."""
    return float(min(settings.backoff_cap_seconds, settings.backoff_seconds * 2 ** (attempt - 1)))


@dataclass
class Worker:
    """One consumer of the task stream."""

    queue: BatchQueue
    files: FileStore
    executor: Executor
    metrics: BatchMetrics
    settings: WorkerSettings = field(default_factory=WorkerSettings)
    name: str = field(default_factory=consumer_name)
    inflight: dict[str, Delivery] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _stopping: bool = False

    async def run(self) -> None:
        """Claim and run tasks until `stop`; Redis outages are waited out, not fatal."""
        await self._retrying(self.queue.ensure_group)
        keeper = asyncio.ensure_future(self._housekeeping())
        beat = asyncio.ensure_future(self._heartbeat())
        try:
            while not self._stopping:
                free = self.settings.concurrency - len(self.inflight)
                if free <= 0:
                    await asyncio.wait(set(self._tasks), return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    deliveries = await self.queue.read(self.name, free, self.settings.block_ms)
                except (RedisError, OSError) as error:
                    await self._redis_down(error)
                    continue
                for delivery in deliveries:
                    self._spawn(delivery)
        finally:
            keeper.cancel()
            beat.cancel()
            await asyncio.wait({keeper, beat}, timeout=5)

    async def stop(self, grace_seconds: float = 30.0) -> None:
        """Stop claiming, and let running tasks finish (bounded); unfinished ones will be reclaimed."""
        self._stopping = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace_seconds)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)

    def _spawn(self, delivery: Delivery) -> None:
        if delivery.entry_id in self.inflight:
            return
        self.inflight[delivery.entry_id] = delivery
        task = asyncio.ensure_future(self._handle(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _redis_down(self, error: Exception) -> None:
        log.warning("batch queue unreachable (%s); retrying", type(error).__name__)
        await asyncio.sleep(0.5)
        with contextlib.suppress(RedisError, OSError):
            await self.queue.ensure_group()  # a Redis restarted without its data lost the group

    async def _retrying(self, action: Any) -> None:
        while True:
            try:
                await action()
                return
            except (RedisError, OSError) as error:
                await self._redis_down(error)

    async def _handle(self, delivery: Delivery) -> None:
        try:
            await self._process(delivery)
        except (RedisError, OSError) as error:  # the entry stays pending and is reclaimed later
            log.warning(
                "task of %s not recorded (%s); it will be retried", delivery.task.batch, type(error).__name__
            )
        except Exception:
            log.exception("task of batch %s failed unexpectedly", delivery.task.batch)
        finally:
            self.inflight.pop(delivery.entry_id, None)

    async def _process(self, delivery: Delivery) -> None:
        task = delivery.task
        settings = self.settings
        verdict = await self.queue.start(task, settings.visibility_seconds, settings.tenant_concurrency)
        if verdict == "busy":
            await self.queue.defer(delivery, settings.busy_delay_seconds, task.attempt)
        elif verdict == "done":
            await self.queue.complete(delivery, {}, "skipped")  # already recorded: only acknowledged
        elif verdict == "gone":
            await self.queue.drop(delivery)
        elif verdict == "cancelled":
            await self.queue.complete(delivery, {}, "skipped")
        elif verdict == "expired":
            line = error_line(task.custom_id, "batch_expired", "the batch expired before this request ran")
            await self._record(delivery, line, "failed")
        else:
            await self._execute(delivery)

    async def _execute(self, delivery: Delivery) -> None:
        task = delivery.task
        gauge = self.metrics.running.labels(task.tenant, task.model)
        gauge.inc()
        try:
            answer = await self.executor.run(task)
            status, body = int(answer.status), answer.body
        except Exception:  # a bug on the path must not lose the task: treat it as retryable
            log.exception("task of batch %s raised", task.batch)
            status, body = 500, {"error": {"message": "internal error", "type": "api_error", "code": None}}
        finally:
            gauge.dec()
        if 200 <= status < 300:
            await self._record(delivery, output_line(task.batch, task.custom_id, status, body), "completed")
        elif not retryable(status, body):
            await self._record(delivery, output_line(task.batch, task.custom_id, status, body), "failed")
        else:
            await self._retry(delivery, status, body)

    async def _retry(self, delivery: Delivery, status: int, body: Any) -> None:
        task = delivery.task
        attempts = await self.queue.attempt(task)
        if attempts == 0:  # recorded meanwhile by another delivery
            await self.queue.complete(delivery, {}, "skipped")
        elif attempts < self.settings.max_attempts:
            self.metrics.retried.labels(task.tenant, task.model).inc()
            await self.queue.defer(delivery, backoff(self.settings, attempts), attempts)
        else:
            line = output_line(task.batch, task.custom_id, status, body)
            line["error"] = {
                "code": "max_attempts_exceeded",
                "message": f"dead-lettered after {attempts} attempts; the last answer is in response",
            }
            dead = {
                "batch_id": task.batch,
                "custom_id": task.custom_id,
                "tenant": task.tenant,
                "model": task.model,
                "attempts": attempts,
                "last_status": status,
                "at": int(time.time()),
            }
            if await self.queue.complete(delivery, line, "failed", dead):
                self.metrics.failed.labels(task.tenant, task.model).inc()
                self.metrics.dead_lettered.labels(task.tenant, task.model).inc()

    async def _record(self, delivery: Delivery, line: dict[str, Any], outcome: str) -> None:
        task = delivery.task
        if await self.queue.complete(delivery, line, outcome):
            counter = self.metrics.done if outcome == "completed" else self.metrics.failed
            counter.labels(task.tenant, task.model).inc()

    # --- background ----------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        period = self.settings.visibility_seconds / 3
        while True:
            await asyncio.sleep(period)
            with contextlib.suppress(RedisError, OSError):
                await self.queue.touch(
                    self.name, list(self.inflight.values()), self.settings.visibility_seconds
                )

    async def _housekeeping(self) -> None:
        swept = 0.0
        while True:
            await asyncio.sleep(self.settings.housekeeping_seconds)
            try:
                await self.queue.promote()
                free = self.settings.concurrency - len(self.inflight)
                if free > 0 and not self._stopping:
                    reclaimed = await self.queue.reclaim(self.name, self.settings.visibility_seconds, free)
                    for delivery in reclaimed:
                        self._spawn(delivery)
                for batch_id in await self.queue.finalizable():
                    await self.finalize(batch_id)
                if time.monotonic() - swept > self.settings.file_sweep_seconds:
                    swept = time.monotonic()
                    await self.files.expire(time.time())
            except (RedisError, OSError) as error:
                log.warning("batch housekeeping skipped a round (%s)", type(error).__name__)
            except Exception:
                log.exception("batch housekeeping failed a round")

    async def finalize(self, batch_id: str) -> None:
        """Write the batch's output and error files and give it its final status (idempotent)."""
        record = await self.queue.record(batch_id)
        if record is None or record["status"] in TERMINAL:
            await self.queue.settle(batch_id, "completed", "completed_at", 0, self.settings.retention_seconds)
            return
        now = int(time.time())
        cancelling = record["status"] == "cancelling"
        if not cancelling:
            await self.queue.mark(batch_id, {"status": "finalizing", "finalizing_at": str(now)})
        results = await self.queue.results(batch_id)
        outputs = [item["record"] for item in results if item["outcome"] == "completed"]
        errors = [item["record"] for item in results if item["outcome"] == "failed"]
        expired = any((item["record"].get("error") or {}).get("code") == "batch_expired" for item in results)
        fields: dict[str, str] = {}
        expires = now + self.settings.retention_seconds
        for kind, lines, name in (("out", outputs, "output_file_id"), ("err", errors, "error_file_id")):
            if not lines:
                continue
            file_id = output_file_id(batch_id, kind)
            content = b"".join(_jsonl(line) for line in lines)
            meta = FileMeta(
                file_id,
                record["tenant"],
                len(content),
                now,
                f"{batch_id}_{name[:-8]}.jsonl",
                "batch_output",
                expires,
            )
            await self.files.put(meta, content)
            fields[name] = file_id
        if fields:
            await self.queue.mark(batch_id, fields)
        status, stamp = "completed", "completed_at"
        if cancelling:
            status, stamp = "cancelled", "cancelled_at"
        elif expired:
            status, stamp = "expired", "expired_at"
        if await self.queue.settle(batch_id, status, stamp, now, self.settings.retention_seconds):
            self.metrics.duration.labels(status).observe(max(0, now - int(record["created_at"])))


def _jsonl(line: dict[str, Any]) -> bytes:
    return orjson.dumps(line) + b"\n"
