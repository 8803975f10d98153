"""The batch queue on Redis: batch records, one Streams entry per task, a consumer group of workers.

Keys (all under one prefix, default ``inferflux:batch:``):

- ``tasks``: the stream of tasks, read by the consumer group ``workers``; an entry is one line of a
  batch (`TaskMessage` as JSON). ``delayed``: a sorted set of tasks waiting for their time (retries
  after backoff, tasks of a tenant at its concurrency limit), moved back to the stream when due.
- ``b:<batch>``: the batch record (records.py); ``b:<batch>:results``: custom_id to result, written
  once with HSETNX; ``b:<batch>:attempts``: failed attempts per custom_id.
- ``t:<tenant>:batches`` (the tenant's batches, in creation order), ``t:<tenant>:queued`` (tasks
  not yet recorded), ``t:<tenant>:running`` (leases of tasks running now, expiring by themselves).
- ``finalize``: batches with no task left, whose output files are still to be written; ``dead``: a
  capped stream of dead-lettered tasks for the admin API.

Exactly once: a task's outcome is recorded by one Lua script (scripts.lua ``complete``) that writes
the result with HSETNX and counts it only if that write won, then acknowledges the stream entry. A
task delivered twice (its worker died, or was slow past the visibility timeout) is recorded once;
the worker also asks ``start`` before running it, which answers ``done`` once it was recorded.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any, cast

import orjson
import redis.asyncio as aioredis

from inferflux.router.batch.records import TERMINAL
from inferflux.router.batch.validation import Task

GROUP = "workers"
_SOURCE = resources.files("inferflux.router.batch").joinpath("scripts.lua").read_text(encoding="utf-8")


def _scripts(source: str) -> dict[str, str]:
    """The named scripts of scripts.lua (split on its ``--- name`` lines)."""
    found: dict[str, str] = {}
    name = ""
    for line in source.splitlines():
        if line.startswith("--- "):
            name = line[4:].strip()
            found[name] = ""
        elif name:
            found[name] += line + "\n"
    return found


class QueueFull(Exception):
    """The tenant has too many tasks queued to add this batch."""

    def __init__(self, queued: int, limit: int) -> None:
        super().__init__(f"{queued} tasks queued; the tenant's limit is {limit}")
        self.queued = queued
        self.limit = limit


@dataclass(frozen=True, slots=True)
class TaskMessage:
    """One task as it travels through the stream."""

    batch: str
    custom_id: str
    line: int
    model: str
    tenant: str
    url: str
    body: str
    attempt: int = 0

    def encode(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def decode(cls, raw: str | bytes) -> TaskMessage:
        return cls(**orjson.loads(raw))

    @property
    def member(self) -> str:
        """The task's name in its tenant's running leases."""
        return f"{self.batch}:{self.custom_id}"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A task handed to this worker: its stream entry, and how often it was delivered."""

    entry_id: str
    task: TaskMessage


def ms(seconds: float) -> int:
    return int(seconds * 1000)


class BatchQueue:
    """Batch records and tasks on one Redis (not a cluster: the scripts touch several keys)."""

    def __init__(self, client: aioredis.Redis, prefix: str = "inferflux:batch:") -> None:
        self.redis = client
        self.prefix = prefix
        self.stream = prefix + "tasks"
        self.delayed = prefix + "delayed"
        self.finalize_set = prefix + "finalize"
        self.dead = prefix + "dead"
        self._scripts = {name: client.register_script(body) for name, body in _scripts(_SOURCE).items()}

    @classmethod
    def from_url(cls, url: str, prefix: str = "inferflux:batch:") -> BatchQueue:
        """A queue on the Redis at ``url`` (socket timeout above the blocking read's)."""
        client = aioredis.from_url(
            url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5, health_check_interval=5
        )
        return cls(client, prefix)

    async def close(self) -> None:
        await self.redis.aclose()

    def batch_key(self, batch_id: str) -> str:
        return f"{self.prefix}b:{batch_id}"

    def tenant_key(self, tenant: str, what: str) -> str:
        return f"{self.prefix}t:{tenant}:{what}"

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self._scripts[name](keys=keys, args=args)

    async def ensure_group(self) -> None:
        """Create the stream and its consumer group unless they exist (after a Redis restart too)."""
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except aioredis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    # --- batches -------------------------------------------------------------------------------

    async def create(self, record: dict[str, str], tasks: list[Task], url: str, queued_limit: int) -> None:
        """Store the batch and queue its tasks, all or nothing; `QueueFull` over the tenant's limit."""
        tenant = record["tenant"]
        queued_key = self.tenant_key(tenant, "queued")
        if tasks:
            over = int(await self._run("reserve", [queued_key], [len(tasks), queued_limit]))
            if over >= 0:
                raise QueueFull(over, queued_limit)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(self.batch_key(record["id"]), mapping=cast(Any, record))
                pipe.zadd(self.tenant_key(tenant, "batches"), {record["id"]: time.time()})
                for task in tasks:
                    message = TaskMessage(
                        record["id"], task.custom_id, task.line, task.model, tenant, url, task.body.decode()
                    )
                    pipe.xadd(self.stream, {"task": message.encode()})
                await pipe.execute()
        except Exception:
            if tasks:
                await self.redis.decrby(queued_key, len(tasks))
            raise

    async def record(self, batch_id: str) -> dict[str, str] | None:
        found = cast(dict[str, str], await self.redis.hgetall(self.batch_key(batch_id)))
        return found or None

    async def batches(self, tenant: str, after: str | None, limit: int) -> tuple[list[dict[str, str]], bool]:
        """The tenant's batches, newest first, after the batch ``after``; and whether more follow."""
        key = self.tenant_key(tenant, "batches")
        start = 0
        if after:
            rank = cast(int | None, await self.redis.zrevrank(key, after))
            if rank is None:
                return [], False
            start = int(rank) + 1
        ids = cast(list[str], await self.redis.zrevrange(key, start, start + limit))
        found: list[dict[str, str]] = []
        for batch_id in ids[:limit]:
            record = await self.record(batch_id)
            if record is None:  # past retention: forget it
                await self.redis.zrem(key, batch_id)
            else:
                found.append(record)
        return found, len(ids) > limit

    async def cancel(self, batch_id: str, now: int) -> str:
        """Ask for the batch to stop; the status after the call ('' when there is no such batch)."""
        return str(await self._run("cancel", [self.batch_key(batch_id), self.finalize_set], [now, batch_id]))

    # --- tasks ---------------------------------------------------------------------------------

    def _deliveries(self, entries: Any) -> list[Delivery]:
        found = []
        for entry_id, fields in entries:
            if fields and "task" in fields:  # XAUTOCLAIM may name entries deleted meanwhile
                found.append(Delivery(entry_id, TaskMessage.decode(fields["task"])))
        return found

    async def read(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        """New tasks for ``consumer`` (blocking up to ``block_ms``)."""
        answer: Any = await self.redis.xreadgroup(
            GROUP, consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        return [delivery for _, entries in answer or () for delivery in self._deliveries(entries)]

    async def reclaim(self, consumer: str, idle_seconds: float, count: int) -> list[Delivery]:
        """Tasks whose worker has not touched them for ``idle_seconds`` (it died), now ``consumer``'s."""
        answer = await self.redis.xautoclaim(
            self.stream, GROUP, consumer, ms(idle_seconds), "0-0", count=count
        )
        return self._deliveries(answer[1])

    async def touch(self, consumer: str, deliveries: list[Delivery], lease_seconds: float) -> None:
        """Keep running tasks from being reclaimed: reset their idle time and renew their leases."""
        if not deliveries:
            return
        expiry = ms(time.time() + lease_seconds)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xclaim(self.stream, GROUP, consumer, 0, [d.entry_id for d in deliveries], justid=True)
            for delivery in deliveries:
                key = self.tenant_key(delivery.task.tenant, "running")
                pipe.zadd(key, {delivery.task.member: expiry}, xx=True)
            await pipe.execute()

    async def start(self, task: TaskMessage, lease_seconds: float, concurrency: int) -> str:
        """``go`` (a lease is taken), ``done``, ``cancelled``, ``expired``, ``gone`` or ``busy``."""
        keys = [
            self.batch_key(task.batch),
            self.batch_key(task.batch) + ":results",
            self.tenant_key(task.tenant, "running"),
        ]
        now = ms(time.time())
        return str(
            await self._run("start", keys, [task.custom_id, task.member, now, ms(lease_seconds), concurrency])
        )

    async def complete(
        self, delivery: Delivery, result: dict[str, Any], outcome: str, dead: dict[str, Any] | None = None
    ) -> bool:
        """Record the task's outcome (``completed``, ``failed`` or ``skipped``) unless it was already;
        True when this call recorded it. ``dead`` also dead-letters it."""
        task = delivery.task
        keys = [
            self.stream,
            self.batch_key(task.batch),
            self.batch_key(task.batch) + ":results",
            self.tenant_key(task.tenant, "queued"),
            self.tenant_key(task.tenant, "running"),
            self.finalize_set,
            self.dead,
        ]
        stored = orjson.dumps({"line": task.line, "outcome": outcome, "record": result}).decode()
        args = [
            GROUP,
            delivery.entry_id,
            task.custom_id,
            stored,
            outcome,
            task.member,
            task.batch,
            orjson.dumps(dead).decode() if dead is not None else "",
        ]
        return bool(await self._run("complete", keys, args))

    async def drop(self, delivery: Delivery) -> None:
        """Acknowledge and delete a task whose batch no longer exists."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, GROUP, delivery.entry_id)
            pipe.xdel(self.stream, delivery.entry_id)
            await pipe.execute()

    async def attempt(self, task: TaskMessage) -> int:
        """Count a failed attempt; the attempts so far (0 when the task was recorded meanwhile)."""
        key = self.batch_key(task.batch)
        return int(await self._run("attempt", [key + ":results", key + ":attempts"], [task.custom_id]))

    async def defer(self, delivery: Delivery, delay_seconds: float, attempt: int) -> None:
        """Put the task back in ``delay_seconds`` (its entry is acknowledged; a new one will come)."""
        task = delivery.task
        again = TaskMessage(
            task.batch, task.custom_id, task.line, task.model, task.tenant, task.url, task.body, attempt
        )
        keys = [self.stream, self.delayed, self.tenant_key(task.tenant, "running")]
        due = ms(time.time() + delay_seconds)
        await self._run("defer", keys, [GROUP, delivery.entry_id, due, again.encode(), task.member])

    async def promote(self, count: int = 500) -> int:
        """Move due delayed tasks to the stream; how many moved."""
        return int(await self._run("promote", [self.stream, self.delayed], [ms(time.time()), count]))

    # --- finalising ----------------------------------------------------------------------------

    async def finalizable(self) -> list[str]:
        """Batches with no task left whose output files are not written yet."""
        return sorted(cast(set[str], await self.redis.smembers(self.finalize_set)))

    async def results(self, batch_id: str) -> list[dict[str, Any]]:
        """Every recorded result of the batch, in input line order."""
        raw = cast(dict[str, str], await self.redis.hgetall(self.batch_key(batch_id) + ":results"))
        return sorted((orjson.loads(value) for value in raw.values()), key=lambda item: int(item["line"]))

    async def mark(self, batch_id: str, fields: dict[str, str]) -> None:
        """Set fields of a batch record that is not final yet (the finaliser's progress)."""
        record = await self.record(batch_id)
        if record is not None and record["status"] not in TERMINAL:
            await self.redis.hset(self.batch_key(batch_id), mapping=cast(Any, fields))

    async def settle(self, batch_id: str, status: str, stamp: str, now: int, retention_seconds: int) -> bool:
        """Give the batch its final status once; True for the call that did. Its keys then expire
        after ``retention_seconds``, and it leaves the finalize set."""
        key = self.batch_key(batch_id)
        won = bool(await self._run("settle", [key], [status, stamp, now]))
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in (key, key + ":results", key + ":attempts"):
                pipe.expire(name, retention_seconds)
            pipe.srem(self.finalize_set, batch_id)
            await pipe.execute()
        return won

    async def dead_letters(self, count: int = 100) -> list[dict[str, Any]]:
        """The latest dead-lettered tasks, newest first."""
        entries: Any = await self.redis.xrevrange(self.dead, count=count)
        return [{"id": entry_id, **orjson.loads(fields["entry"])} for entry_id, fields in entries]
