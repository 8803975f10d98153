"""The replay buffer behind resumable streams: every chunk of a stream, kept for a while, by offset.

A stream's producer appends chunks and finally one terminal entry (``done`` or ``error``); readers
wait for entries from an offset. A reader that reconnects with a resume token reads from the
offset the token names, so it gets exactly the chunks it has not seen. `ReplayStore` is the
interface; `MemoryReplayStore` serves one router process, and `RedisReplayStore`
(router/replay_redis.py) serves every router process that shares one Redis. The router picks
the Redis store when ``INFERFLUX_REDIS_URL`` is set, else the memory store.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Protocol

DATA = "data"
TERMINAL = frozenset({"done", "error"})


class Evicted(Exception):
    """The stream, or the part of it a reader asked for, is no longer buffered."""


class StoreUnavailable(Evicted):
    """The store holding the stream cannot be reached (Redis is down): to its readers it is gone."""


class ProducerGone(Evicted):
    """The process producing the stream stopped before its end: no more entries will come."""


@dataclass(frozen=True)
class Entry:
    """One buffered event: its offset, kind (``data``, ``done`` or ``error``) and JSON payload."""

    offset: int
    kind: str
    payload: bytes


class ReplayStore(Protocol):
    """Where streams are buffered; async throughout so that a network store fits the same shape."""

    async def create(self, stream_id: str) -> None:
        """Start an empty stream."""

    async def append(self, stream_id: str, kind: str, payload: bytes) -> int:
        """Add an entry; returns its offset."""

    async def read(self, stream_id: str, offset: int, wait: float) -> list[Entry]:
        """Entries from ``offset`` on, waiting up to ``wait`` seconds for one; raises `Evicted`."""

    async def exists(self, stream_id: str) -> bool:
        """True while the stream is buffered."""

    def shared(self, stream_id: str) -> bool:
        """True when every router process sharing the store can resume the stream, not only this one."""

    async def close(self) -> None:
        """Release connections (router shutdown)."""


@dataclass
class _Stream:
    entries: deque[Entry]
    next_offset: int = 0
    finished_at: float | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryReplayStore:
    """Bounded in-process buffer: at most ``max_streams`` streams of ``max_chunks`` entries each.

    The oldest stream is evicted when a new one would exceed the bound, and a finished stream is
    dropped ``linger`` seconds after its end; both make late resumes answer 410 instead of growing
    memory without limit.
    """

    def __init__(self, max_streams: int = 1024, max_chunks: int = 8192, linger: float = 300.0) -> None:
        self.max_streams = max_streams
        self.max_chunks = max_chunks
        self.linger = linger
        self._streams: OrderedDict[str, _Stream] = OrderedDict()

    def _expire(self) -> None:
        now = time.monotonic()
        for stream_id in [
            key for key, s in self._streams.items() if s.finished_at and now - s.finished_at > self.linger
        ]:
            del self._streams[stream_id]
        while len(self._streams) > self.max_streams:
            self._streams.popitem(last=False)

    async def create(self, stream_id: str) -> None:
        """Start an empty stream, evicting the oldest ones beyond the bound."""
        self._streams[stream_id] = _Stream(entries=deque(maxlen=self.max_chunks))
        self._expire()

    async def append(self, stream_id: str, kind: str, payload: bytes) -> int:
        """Add an entry and wake the readers; appending to an evicted stream raises `Evicted`."""
        stream = self._streams.get(stream_id)
        if stream is None:
            raise Evicted(stream_id)
        offset = stream.next_offset
        stream.entries.append(Entry(offset, kind, payload))
        stream.next_offset += 1
        if kind in TERMINAL:
            stream.finished_at = time.monotonic()
        stream.changed.set()
        stream.changed = asyncio.Event()
        return offset

    async def read(self, stream_id: str, offset: int, wait: float) -> list[Entry]:
        """Entries from ``offset``; an offset older than the oldest kept entry raises `Evicted`."""
        stream = self._streams.get(stream_id)
        if stream is None:
            raise Evicted(stream_id)
        if offset >= stream.next_offset and stream.finished_at is None:
            changed = stream.changed
            try:
                await asyncio.wait_for(changed.wait(), wait)
            except TimeoutError:
                return []
            if self._streams.get(stream_id) is not stream:
                raise Evicted(stream_id)
        if not stream.entries:
            return []
        first = stream.entries[0].offset
        if offset < first:
            raise Evicted(stream_id)
        return list(itertools.islice(stream.entries, offset - first, None))

    async def exists(self, stream_id: str) -> bool:
        """True while the stream is buffered."""
        self._expire()
        return stream_id in self._streams

    def holds(self, stream_id: str) -> bool:
        """True if the stream is (still) here; no expiry pass, so cheap enough for every call."""
        return stream_id in self._streams

    def shared(self, stream_id: str) -> bool:
        """Always False: the buffer is in this process's memory."""
        return False

    async def close(self) -> None:
        """Nothing to release."""
