"""A coalescing work queue of object keys, as in controller-runtime.

Watch events only say "look at this object again"; a worker then reconciles the object's *latest*
state from the cache. A key waits in the queue at most once, a key being reconciled is never
reconciled twice at the same time (an event meanwhile re-queues it afterwards), and a failed
reconcile is retried with exponential backoff. This is what makes the handlers level-based.

A reconcile may also ask to run again at once but *later* than everything events queued
(``REQUEUE_LATER``): work that can wait (a model's Service and status after its Deployment) then
never delays work that cannot (the Deployments of models created in the same burst).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Final, Generic, TypeVar

log = logging.getLogger(__name__)


class Later:
    """The type of ``REQUEUE_LATER``."""


REQUEUE_LATER: Final = Later()
"""A reconcile's answer: queue the key again now, behind every key an event queued."""

K = TypeVar("K", bound=Hashable)
Reconcile = Callable[[K], Awaitable[float | Later | None]]
BASE_BACKOFF = 0.5
MAX_BACKOFF = 60.0


def backoff(failures: int) -> float:
    """Seconds before retry number ``failures``: 0.5, 1, 2, ... capped at a minute."""
    return float(min(MAX_BACKOFF, BASE_BACKOFF * 2 ** max(0, failures - 1)))


class WorkQueue(Generic[K]):
    """Run ``reconcile(key)`` for queued keys on ``workers`` concurrent tasks.

    ``reconcile`` returns seconds after which to look again, ``REQUEUE_LATER`` or None, and
    raises to be retried. Keys queued by events (``add``) go before keys queued ``REQUEUE_LATER``.
    """

    def __init__(self, name: str, reconcile: Reconcile[K], workers: int = 16) -> None:
        self.name = name
        self._reconcile = reconcile
        self._workers = workers
        self._urgent: deque[K] = deque()
        self._later: deque[K] = deque()
        self._available = asyncio.Semaphore(0)  # one release per queued key
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._failures: dict[K, int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, key: K) -> None:
        """Ask for ``key`` to be reconciled soon (a no-op when it already waits)."""
        if key in self._processing:
            self._dirty.add(key)
        elif key not in self._queued:
            self._put(key, self._urgent)

    def _put(self, key: K, lane: deque[K]) -> None:
        self._queued.add(key)
        lane.append(key)
        self._available.release()

    async def _next(self) -> K:
        await self._available.acquire()
        return self._urgent.popleft() if self._urgent else self._later.popleft()

    def add_after(self, key: K, delay: float) -> None:
        """Reconcile ``key`` again after ``delay`` seconds."""
        asyncio.get_running_loop().call_later(delay, self.add, key)

    @property
    def idle(self) -> bool:
        """Nothing waiting and nothing running."""
        return not self._queued and not self._processing

    def start(self) -> None:
        """Start the worker tasks on the running loop."""
        self._tasks = [
            asyncio.create_task(self._work(), name=f"{self.name}-worker-{i}") for i in range(self._workers)
        ]

    async def stop(self) -> None:
        """Cancel the workers and wait for them to finish."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _work(self) -> None:
        while True:
            key = await self._next()
            self._queued.discard(key)
            self._processing.add(key)
            delay: float | Later | None
            try:
                delay = await self._reconcile(key)
                self._failures.pop(key, None)
            except Exception as error:
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                delay = backoff(failures)
                log.warning("%s: reconcile of %s failed (%s), retry in %.1fs", self.name, key, error, delay)
            finally:
                self._processing.discard(key)
            dirty = key in self._dirty
            self._dirty.discard(key)
            if isinstance(delay, Later):  # an event meanwhile changes nothing: the pass reads all
                self._put(key, self._later)
            elif dirty:
                self.add(key)
            elif delay is not None:
                self.add_after(key, delay)
