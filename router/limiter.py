"""A per-model concurrency limit with a bounded FIFO queue.

Up to ``max_concurrency`` requests run; the next ``max_queue`` wait in order; anything beyond is
refused at once with 429 and ``retry-after`` rather than queued without bound, which is what keeps
latency honest under overload and gives autoscaling a queue-depth signal.
"""

from __future__ import annotations

import asyncio
from collections import deque

from inferflux.router.errors import ErrorCode, UpstreamError


class Limiter:
    """Slots and a waiting line for one model."""

    def __init__(self, max_concurrency: int, max_queue: int, retry_after: float = 1.0) -> None:
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.retry_after = retry_after
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        """Requests waiting for a slot."""
        return len(self._waiters)

    def resize(self, max_concurrency: int, max_queue: int) -> None:
        """Apply new limits from a new routing table; waiters get freed slots at once."""
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        while self._waiters and self.active < self.max_concurrency:
            self._hand_over()

    async def acquire(self) -> None:
        """Take a slot, waiting in line if needed; a full line raises `UpstreamError` (overloaded)."""
        if self.active < self.max_concurrency and not self._waiters:
            self.active += 1
            return
        if len(self._waiters) >= self.max_queue:
            raise UpstreamError(
                ErrorCode.OVERLOADED,
                "too many requests queued for this model; retry later",
                retry_after=self.retry_after,
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give a slot back, straight to the first waiter if there is one."""
        if self._waiters and self.active <= self.max_concurrency:
            self._hand_over(from_release=True)
        else:
            self.active -= 1

    def _hand_over(self, from_release: bool = False) -> None:
        waiter = self._waiters.popleft()
        if not from_release:
            self.active += 1
        waiter.set_result(None)
