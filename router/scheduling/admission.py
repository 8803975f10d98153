"""The asyncio side of the fair queue: one `FairAdmission` per model, awaited by the dispatcher.

``acquire`` offers the request to the model's `FairQueue` and, when it has to wait, awaits a
future that the queue's decisions resolve: a slot (another request finished or the limits grew),
or a 429 (a newcomer with a better claim displaced it). Cancelling a waiter (the client went
away) frees its place at once; ``release`` gives the slot to whoever the queue picks next.
"""

from __future__ import annotations

import asyncio

from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.scheduling.demand import Demand
from inferflux.router.scheduling.fairqueue import Entry, FairQueue, Refusal, State
from inferflux.router.scheduling.metrics import SchedulingMetrics

MESSAGES = {
    Refusal.QUEUE_FULL: "too many requests queued for this model; retry later",
    Refusal.DISPLACED: "this request's queue place went to another tenant's; retry later",
    Refusal.SHED: "the model is saturated and this request is sheddable; retry later",
}


class FairAdmission:
    """Slots and a fair waiting line for one model."""

    def __init__(
        self,
        model: str,
        max_concurrency: int,
        max_queue: int,
        metrics: SchedulingMetrics,
        sheddable_share: float = 0.5,
        retry_after: float = 1.0,
        sheddable_slots: float = 1.0,
        preemptive: bool = False,
    ) -> None:
        self.model = model
        self.queue = FairQueue(max_concurrency, max_queue, sheddable_share, sheddable_slots, preemptive)
        self.metrics = metrics
        self.retry_after = retry_after

    @property
    def queued(self) -> int:
        """Requests waiting for a slot."""
        return self.queue.waiting

    @property
    def active(self) -> int:
        """Requests holding a slot."""
        return self.queue.running

    def resize(self, max_concurrency: int, max_queue: int) -> None:
        """Apply new limits from a new routing table; waiters get freed slots at once."""
        self._wake(self.queue.resize(max_concurrency, max_queue))

    async def acquire(self, demand: Demand) -> Entry:
        """A slot for ``demand``, waiting for it if needed; a refusal raises `UpstreamError` (429)."""
        entry = Entry(demand.tenant, demand.weight, demand.priority, demand.estimate)
        labels = (self.model, str(demand.priority), demand.label)
        offer = self.queue.offer(entry)
        if offer.displaced is not None:
            self._refuse(offer.displaced)
        if offer.state is State.RUNNING:
            self.metrics.admitted.labels(*labels).inc()
            return entry
        if offer.state is State.REFUSED:
            assert entry.refusal is not None
            self.metrics.shed.labels(*labels, entry.refusal.value).inc()
            raise self._error(entry.refusal)
        self.metrics.queued.labels(*labels).inc()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry.handle = waiter
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # displaced just before the cancellation: seen, not logged as lost
            self._wake(self.queue.cancel(entry))  # queued: leaves; just started: frees the slot
            raise
        except UpstreamError:
            self.metrics.shed.labels(*labels, Refusal.DISPLACED.value).inc()
            raise
        self.metrics.admitted.labels(*labels).inc()
        return entry

    def release(self, entry: Entry | None, used: int | None = None) -> None:
        """Give the slot back, with the tokens the request really used when known."""
        if entry is not None:
            self._wake(self.queue.done(entry, used))

    def _wake(self, started: list[Entry]) -> None:
        for entry in started:
            waiter = entry.handle
            if isinstance(waiter, asyncio.Future) and not waiter.done():
                waiter.set_result(None)

    def _refuse(self, entry: Entry) -> None:
        waiter = entry.handle
        if isinstance(waiter, asyncio.Future) and not waiter.done():
            assert entry.refusal is not None
            waiter.set_exception(self._error(entry.refusal))

    def _error(self, reason: Refusal) -> UpstreamError:
        return UpstreamError(ErrorCode.OVERLOADED, MESSAGES[reason], retry_after=self.retry_after)
