"""The replay buffer on Redis Streams, shared by every router process that uses the same Redis.

One Redis stream per buffered stream, ``inferflux:replay:<stream_id>``. The entry id encodes the
offset exactly: offset ``n`` is id ``0-(n+2)`` (``0-1`` is the marker that created the stream, then
trimmed away), so "the entries from offset ``n``" is ``XREAD`` after id ``0-(n+1)`` and a resume
token's offset maps to exactly the chunks after it, on any replica. Each entry holds the kind
(``k``) and the JSON payload (``p``).

Bounds: ``XADD ... MAXLEN max_chunks`` keeps the newest entries of a stream (a reader further
behind gets `Evicted`, as with the memory store), and every write sets the key's TTL to the
resume-token TTL, so a stream lives that long after its last entry. There is no count of streams:
Redis' own ``maxmemory`` bounds them. Only the process that created a stream appends to it (the
next offset is kept in that process); any process reads, blocking in ``XREAD BLOCK``.

While a stream is being produced, its producer holds a lease, ``inferflux:replay:<id>:live``,
renewed every ``lease / 3`` seconds and dropped with the terminal entry. A reader that has read
everything and finds no lease knows the producing process is gone (killed mid-generation) and gets
`ProducerGone` instead of waiting for entries that will never come.

When Redis cannot be reached, `create` keeps the new stream in this process's memory instead, so
the stream is still served and can be resumed on this replica only; a buffered stream whose Redis
becomes unreachable raises `StoreUnavailable` (an `Evicted`: the reader gets an ``error`` event
and a resume gets 410).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from inferflux.router.replay import (
    TERMINAL,
    Entry,
    Evicted,
    MemoryReplayStore,
    ProducerGone,
    StoreUnavailable,
)

log = logging.getLogger("inferflux.router.replay")

PREFIX = "inferflux:replay:"
LEASE_SUFFIX = ":live"
_MARKER = "0-1"
# A blocked XREAD is given this much longer than its BLOCK time before it counts as a dead Redis.
_BLOCK_MARGIN = 2.0


def entry_id(offset: int) -> str:
    """The Redis stream id of the entry at ``offset``."""
    return f"0-{offset + 2}"


def offset_of(entry_id: bytes | str) -> int:
    """The offset a Redis stream id encodes."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[2]) - 2


class RedisReplayStore:
    """`ReplayStore` on Redis Streams, with an in-memory store for streams begun during an outage."""

    def __init__(
        self,
        client: Redis,
        blocking: Redis,
        ttl: float = 300.0,
        max_chunks: int = 8192,
        fallback: MemoryReplayStore | None = None,
        lease: float = 10.0,
    ) -> None:
        self.client = client  # short socket timeouts: XADD, XRANGE, EXISTS
        self.blocking = blocking  # no socket timeout: XREAD BLOCK (bounded by asyncio instead)
        self.ttl_ms = max(int(ttl * 1000), 1)
        self.max_chunks = max_chunks
        self.fallback = fallback or MemoryReplayStore(max_chunks=max_chunks, linger=ttl)
        self.lease_ms = max(int(lease * 1000), 3)
        self._next: dict[str, int] = {}  # streams this process produces: their next offset
        self._outage = False
        self._renewer: asyncio.Task[None] | None = None
        self._closed = False  # redis-py may turn a cancelled command into ConnectionError

    @classmethod
    def from_url(
        cls,
        url: str,
        ttl: float = 300.0,
        max_chunks: int = 8192,
        fallback: MemoryReplayStore | None = None,
        *,
        lease: float = 10.0,
        socket_timeout: float = 1.0,
        connect_timeout: float = 1.0,
        max_connections: int = 1024,
    ) -> RedisReplayStore:
        """A store on the Redis at ``url``; a refused or stalled Redis fails within the timeouts."""
        common: dict[str, Any] = {
            "max_connections": max_connections,
            "timeout": connect_timeout,  # waiting for a free pooled connection
            "socket_connect_timeout": connect_timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        client = Redis(
            connection_pool=BlockingConnectionPool.from_url(url, socket_timeout=socket_timeout, **common)
        )
        blocking = Redis(connection_pool=BlockingConnectionPool.from_url(url, socket_timeout=None, **common))
        return cls(client, blocking, ttl, max_chunks, fallback, lease)

    @staticmethod
    def key(stream_id: str) -> str:
        """The Redis key of a stream."""
        return PREFIX + stream_id

    @staticmethod
    def lease_key(stream_id: str) -> str:
        """The Redis key of a stream's producer lease."""
        return PREFIX + stream_id + LEASE_SUFFIX

    async def _renew(self) -> None:
        """Renew the leases of the streams this process produces, until none is left."""
        while self._next and not self._closed:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for stream_id in list(self._next):
                        pipe.pexpire(self.lease_key(stream_id), self.lease_ms)
                    await pipe.execute()
            except (RedisError, OSError, TimeoutError) as error:
                self._unavailable(error)
        self._renewer = None

    def _unavailable(self, error: BaseException) -> StoreUnavailable:
        if not self._outage:
            log.warning("replay store unreachable: %s", type(error).__name__)
        self._outage = True
        return StoreUnavailable("the replay store is unavailable")

    def _reachable(self) -> None:
        if self._outage:
            log.info("replay store reachable again")
        self._outage = False

    async def create(self, stream_id: str) -> None:
        """An empty stream in Redis, or in this process's memory if Redis cannot be reached."""
        key = self.key(stream_id)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.xadd(key, {"k": "open"}, id=_MARKER)
                pipe.xtrim(key, maxlen=0, approximate=False)  # empty, but the key and its last id stay
                pipe.pexpire(key, self.ttl_ms)
                pipe.set(self.lease_key(stream_id), b"1", px=self.lease_ms)
                await pipe.execute()
        except (RedisError, OSError, TimeoutError) as error:
            self._unavailable(error)
            await self.fallback.create(stream_id)
            return
        self._reachable()
        self._next[stream_id] = 0
        if self._renewer is None:
            self._renewer = asyncio.ensure_future(self._renew())

    async def append(self, stream_id: str, kind: str, payload: bytes) -> int:
        """Add an entry (trimming the stream to ``max_chunks``, renewing its TTL); returns its offset."""
        if self.fallback.holds(stream_id):
            return await self.fallback.append(stream_id, kind, payload)
        offset = self._next.get(stream_id)
        if offset is None:
            raise Evicted(stream_id)
        key = self.key(stream_id)
        terminal = kind in TERMINAL
        try:
            # A transaction with the terminal entry: no reader sees the lease gone before the end.
            async with self.client.pipeline(transaction=terminal) as pipe:
                pipe.xadd(
                    key,
                    {"k": kind, "p": payload},
                    id=entry_id(offset),
                    maxlen=self.max_chunks,
                    approximate=False,
                    nomkstream=True,
                )
                pipe.pexpire(key, self.ttl_ms)
                if terminal:
                    pipe.delete(self.lease_key(stream_id))
                added = (await pipe.execute())[0]
        except (RedisError, OSError, TimeoutError) as error:
            del self._next[stream_id]
            raise self._unavailable(error) from None
        if added is None:  # the key expired: nobody read it for a whole TTL
            del self._next[stream_id]
            raise Evicted(stream_id)
        if terminal:
            del self._next[stream_id]
        else:
            self._next[stream_id] = offset + 1
        return offset

    async def read(self, stream_id: str, offset: int, wait: float) -> list[Entry]:
        """Entries from ``offset``, blocking up to ``wait`` seconds; `Evicted` when gone or trimmed."""
        if self.fallback.holds(stream_id):
            return await self.fallback.read(stream_id, offset, wait)
        key = self.key(stream_id)
        after = f"0-{offset + 1}"
        try:
            async with self.client.pipeline(transaction=True) as pipe:  # one consistent view
                pipe.exists(key)
                pipe.xrange(key, min=entry_id(offset), max="+")
                pipe.exists(self.lease_key(stream_id))
                exists, found, live = await pipe.execute()
            if not exists:
                raise Evicted(stream_id)
            if not found and not live:
                raise ProducerGone("the router producing this stream stopped before its end")
            if not found and wait > 0:
                block_ms = max(int(wait * 1000), 1)
                answer: Any = await asyncio.wait_for(  # RESP2: [[key, entries]]
                    self.blocking.xread({key: after}, block=block_ms), wait + _BLOCK_MARGIN
                )
                found = answer[0][1] if answer else []
        except (RedisError, OSError, TimeoutError) as error:
            raise self._unavailable(error) from None
        entries = [Entry(offset_of(ident), fields[b"k"].decode(), fields[b"p"]) for ident, fields in found]
        if entries and entries[0].offset != offset:
            raise Evicted(stream_id)  # the entries at the reader's offset were trimmed away
        return entries

    async def exists(self, stream_id: str) -> bool:
        """True while the stream is buffered; `StoreUnavailable` when Redis cannot say."""
        if self.fallback.holds(stream_id):
            return True
        try:
            found = bool(await self.client.exists(self.key(stream_id)))
        except (RedisError, OSError, TimeoutError) as error:
            raise self._unavailable(error) from None
        self._reachable()
        return found

    def shared(self, stream_id: str) -> bool:
        """True when the stream is in Redis (any replica resumes it), False when only in memory."""
        return not self.fallback.holds(stream_id)

    async def close(self) -> None:
        """Stop renewing leases and close both connection pools."""
        self._closed = True
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        await self.client.aclose()
        await self.blocking.aclose()
