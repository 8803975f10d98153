"""Start-time fair queueing over priority bands: the decisions, with no I/O and no clock.

A model has ``slots`` requests running at once and ``capacity`` places to wait. A request that
finds a free slot and nobody waiting starts at once; otherwise it waits in its priority band.

Bands are served strictly, highest first. Within a band each tenant is a flow with a virtual
finish time: a request costing ``c`` tokens (estimated prompt + max tokens) advances its tenant's
finish by ``c / weight``, and the next request to start is the head of the flow with the smallest
start tag ``max(finish, band clock)``. A flow that was idle restarts at the band clock, so idling
banks no credit. When a request finishes, its tenant's finish moves by ``(used - c) / weight``:
the real usage corrects the estimate, so over-asking ``max_tokens`` costs nothing in the long run
and under-asking does not pay.

The queue is bounded. When it is full, a newcomer displaces the newest request of the tenant
furthest over its share of the lowest band present (its queued requests per unit of weight),
or is itself refused when nothing queued is below it or its own tenant is the one over its share.
Sheddable requests (negative priority) may fill only ``sheddable_share`` of the queue; beyond
that they are refused at once, so that under saturation they are the first to go. They may also
hold only ``sheddable_slots`` of the slots (a share, at least one slot): the rest stay free for
higher bands, so that a high-priority request does not wait for a sheddable one to finish.
With ``preemptive`` (a model served by InferFlux's llama.cpp runtime, which pauses a lower-priority
sequence for a higher one: runtime_image/preemption.py), sheddable requests do not count against
the slots of the others at all: a non-sheddable request runs while fewer than ``slots``
non-sheddable ones do, and the runtime parks a sheddable sequence to give it a slot. So sheddable
work may fill every idle slot and still never delays interactive work by more than a decode step.

After every change the queue starts whatever it can, so a free slot with requests waiting means
every waiting request is sheddable and over its slots: a newcomer that may use a slot takes it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class State(StrEnum):
    """Where an entry is in its life."""

    NEW = "new"
    QUEUED = "queued"
    RUNNING = "running"
    REFUSED = "refused"
    DONE = "done"


class Refusal(StrEnum):
    """Why an entry did not get a slot (the ``reason`` label of the shed metric)."""

    QUEUE_FULL = "queue_full"  # the newcomer was the one over its share
    DISPLACED = "displaced"  # a queued request pushed out by a newcomer with a better claim
    SHED = "shed"  # a sheddable request refused because the queue is busy


@dataclass(eq=False, slots=True)
class Entry:
    """One request in the queue; ``handle`` is the caller's (the asyncio wrapper's future)."""

    tenant: str
    weight: int
    priority: int
    cost: int
    handle: Any = None
    state: State = State.NEW
    refusal: Refusal | None = None
    order: int = 0


@dataclass(slots=True)
class Flow:
    """One tenant within one band: its virtual finish time and its waiting requests."""

    weight: int
    finish: float = 0.0
    waiting: deque[Entry] = field(default_factory=deque)
    running: int = 0


@dataclass(slots=True)
class Band:
    """One priority: a virtual clock and the flows of the tenants that used it."""

    priority: int
    clock: float = 0.0
    flows: dict[str, Flow] = field(default_factory=dict)
    waiting: int = 0


@dataclass(frozen=True, slots=True)
class Offer:
    """What happened to an offered entry, and the queued entry it pushed out, if any."""

    state: State
    displaced: Entry | None = None


class FairQueue:
    """The queue of one model. Every method returns what changed; nothing here waits."""

    def __init__(
        self,
        slots: int,
        capacity: int,
        sheddable_share: float = 0.5,
        sheddable_slots: float = 1.0,
        preemptive: bool = False,
    ) -> None:
        self.slots = slots
        self.preemptive = preemptive
        self.capacity = capacity
        self.sheddable_share = sheddable_share
        self.sheddable_slots = sheddable_slots
        self.running = 0
        self.running_sheddable = 0
        self.waiting = 0
        self.bands: dict[int, Band] = {}
        self._arrivals = 0

    def offer(self, entry: Entry) -> Offer:
        """Start ``entry``, queue it, or refuse it (then ``entry.refusal`` says why)."""
        self._arrivals += 1
        entry.order = self._arrivals
        band = self.bands.get(entry.priority)
        if band is None:
            band = self.bands[entry.priority] = Band(entry.priority)
        flow = band.flows.get(entry.tenant)
        if flow is None:
            flow = band.flows[entry.tenant] = Flow(entry.weight, band.clock)
        flow.weight = entry.weight  # a policy change applies from the tenant's next request
        if self._has_slot(entry.priority) and self._may_run(entry.priority):
            self._start(band, flow, entry)
            return Offer(State.RUNNING)
        if entry.priority < 0 and self.waiting >= self.sheddable_share * self.capacity:
            return self._refuse(entry, Refusal.SHED)
        displaced = None
        if self.waiting >= self.capacity:
            displaced = self._victim(entry)
            if displaced is None:
                return self._refuse(entry, Refusal.QUEUE_FULL)
            self._remove(displaced)
            displaced.state, displaced.refusal = State.REFUSED, Refusal.DISPLACED
        if not flow.waiting:
            flow.finish = max(flow.finish, band.clock)  # back from idle: no banked credit
        flow.waiting.append(entry)
        band.waiting += 1
        self.waiting += 1
        entry.state = State.QUEUED
        return Offer(State.QUEUED, displaced)

    def cancel(self, entry: Entry) -> list[Entry]:
        """The caller gave up: a queued entry leaves at once, a running one frees its slot."""
        if entry.state is State.QUEUED:
            self._remove(entry)
            entry.state = State.DONE
            return []
        if entry.state is State.RUNNING:
            return self.done(entry, None)
        return []

    def done(self, entry: Entry, used: int | None) -> list[Entry]:
        """``entry`` finished having used ``used`` tokens (None: unknown, the estimate stands);
        returns the entries that start in the freed slot."""
        if entry.state is not State.RUNNING:
            return []
        entry.state = State.DONE
        self.running -= 1
        self.running_sheddable -= entry.priority < 0
        band = self.bands[entry.priority]
        flow = band.flows[entry.tenant]
        flow.running -= 1
        if used is not None:
            flow.finish += (used - entry.cost) / flow.weight
        self._forget_idle(band, entry.tenant, flow)
        return self.pump()

    def resize(self, slots: int, capacity: int) -> list[Entry]:
        """New limits from a new routing table; returns the entries that start now. A smaller
        capacity refuses no one already queued: the queue drains below it."""
        self.slots, self.capacity = slots, capacity
        return self.pump()

    def pump(self) -> list[Entry]:
        """Start waiting entries while slots are free: highest band first, then smallest start tag."""
        started: list[Entry] = []
        while self.waiting:
            ready = [
                b
                for b in self.bands.values()
                if b.waiting and self._has_slot(b.priority) and self._may_run(b.priority)
            ]
            if not ready:
                break  # only sheddable requests wait, and they hold their share of the slots
            band = max(ready, key=lambda b: b.priority)
            flow = min(
                (f for f in band.flows.values() if f.waiting),
                key=lambda f: (max(f.finish, band.clock), f.waiting[0].order),
            )
            entry = flow.waiting.popleft()
            band.waiting -= 1
            self.waiting -= 1
            self._start(band, flow, entry)
            started.append(entry)
        return started

    def queued_by(self, tenant: str) -> int:
        """Requests of ``tenant`` waiting, over every band."""
        return sum(len(f.waiting) for b in self.bands.values() if (f := b.flows.get(tenant)))

    def _has_slot(self, priority: int) -> bool:
        """Whether a slot is free for a request of band ``priority`` (see ``preemptive``)."""
        if self.preemptive and priority >= 0:
            return self.running - self.running_sheddable < self.slots
        return self.running < self.slots

    def _may_run(self, priority: int) -> bool:
        """Whether a request of band ``priority`` may take a free slot."""
        if priority >= 0:
            return True
        return self.running_sheddable < max(1, int(self.slots * self.sheddable_slots))

    def _start(self, band: Band, flow: Flow, entry: Entry) -> None:
        start = max(flow.finish, band.clock)
        band.clock = start
        flow.finish = start + entry.cost / flow.weight
        flow.running += 1
        self.running += 1
        self.running_sheddable += entry.priority < 0
        entry.state = State.RUNNING

    def _victim(self, newcomer: Entry) -> Entry | None:
        """The queued entry ``newcomer`` may displace from a full queue, or None."""
        lowest = min((b for b in self.bands.values() if b.waiting), key=lambda b: b.priority)
        if lowest.priority > newcomer.priority:
            return None
        flows = [(name, f) for name, f in lowest.flows.items() if f.waiting]
        tenant, flow = max(flows, key=lambda item: len(item[1].waiting) / item[1].weight)
        if lowest.priority < newcomer.priority:
            return flow.waiting[-1]
        mine = lowest.flows[newcomer.tenant]
        over = len(flow.waiting) / flow.weight
        if tenant == newcomer.tenant or (len(mine.waiting) + 1) / mine.weight >= over:
            return None  # the newcomer's tenant is (one of) the furthest over its share
        return flow.waiting[-1]

    def _remove(self, entry: Entry) -> None:
        band = self.bands[entry.priority]
        flow = band.flows[entry.tenant]
        flow.waiting.remove(entry)
        band.waiting -= 1
        self.waiting -= 1
        self._forget_idle(band, entry.tenant, flow)

    def _refuse(self, entry: Entry, reason: Refusal) -> Offer:
        entry.state, entry.refusal = State.REFUSED, reason
        band = self.bands[entry.priority]
        self._forget_idle(band, entry.tenant, band.flows[entry.tenant])
        return Offer(State.REFUSED)

    def _forget_idle(self, band: Band, tenant: str, flow: Flow) -> None:
        """Drop a flow with nothing waiting or running, so tenants don't pile up: once its debt is
        paid (finish behind the clock), or when nobody waits in its band to be owed anything."""
        if not flow.waiting and not flow.running and (flow.finish <= band.clock or not band.waiting):
            del band.flows[tenant]
            if not band.flows:
                del self.bands[band.priority]
