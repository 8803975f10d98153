"""Priority in the engine: which waiting sequence gets a slot next, and which running one yields.

Every job carries an integer priority (higher first; the router sets it from the tenant's policy).
When every slot is busy and a job of higher priority is waiting, the engine pauses ("parks") the
running sequence of lowest priority: its KV cache is kept under a spare sequence id, its sampler
and text state stay as they were, and it resumes where it stopped once a slot is free again, so
its client sees a gap in the stream and nothing else. Within one priority, order is first come,
first served, and a parked sequence goes before a waiting one (it was admitted earlier).

Until a sequence has shown its client some text (while it prefills, and while its first tokens
are not text yet: the start of a stop string, part of a character), sequences of lower priority
sit out the engine's steps: a step's time grows with the sequences and tokens in it, and that first
text is what the higher one's client waits for. They keep their slot and their KV, and go on at
the next step without it, so their streams only see a gap (``step_floor``).

These functions decide only; `engine.Engine` does the moving of KV cells.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PRIORITY_HEADER = "x-inferflux-priority"
PRIORITY_LIMIT = 1000  # priorities are clamped to [-PRIORITY_LIMIT, PRIORITY_LIMIT]


@dataclass(frozen=True)
class Waiting:
    """A sequence that wants a slot: a parked one or a queued job, with its arrival order."""

    priority: int
    order: int  # admission order for a parked one, submission order for a queued one
    parked: bool


@dataclass(frozen=True)
class Running:
    """A sequence that holds a slot."""

    slot: int
    priority: int
    order: int  # when it was first admitted


def next_waiting(waiting: Sequence[Waiting]) -> int | None:
    """The index in ``waiting`` of the one to serve next: highest priority, parked first, oldest first."""
    if not waiting:
        return None
    return min(
        range(len(waiting)), key=lambda i: (-waiting[i].priority, not waiting[i].parked, waiting[i].order)
    )


def victim(running: Sequence[Running], priority: int) -> int | None:
    """The slot to free for a sequence of ``priority``: the lowest-priority running one, newest first
    (it has the least work to lose), and only if its priority is strictly lower; else None."""
    lowest = min(running, key=lambda r: (r.priority, -r.order), default=None)
    if lowest is None or lowest.priority >= priority:
        return None
    return lowest.slot


def step_floor(unshown: Iterable[int]) -> int | None:
    """The lowest priority that takes part in the next step, given the priorities of the sequences
    that have shown no text yet: the highest of them, so that only equal or higher ones share its
    steps. None when there are none: every running sequence steps."""
    return max(unshown, default=None)


def abandons_step(running_top: int | None, priority: int) -> bool:
    """Whether a job of ``priority`` arriving while a step runs should stop that step part-way.

    ``running_top`` is the highest priority among the sequences in the step (None: no step is
    running). A step made only of lower-priority sequences is abandoned: the job would park one of
    them and keep the others out of its prefill step anyway (`victim`, `step_floor`), so without
    this it would first wait for work it outranks, up to a whole step of a batch. Equal priorities
    never abandon a step."""
    return running_top is not None and priority > running_top


def parse_priority(value: str | None) -> int:
    """A request's priority from its ``x-inferflux-priority`` header (0 when absent), clamped.

    Raises ValueError for a value that is not an integer.
    """
    if value is None or not value.strip():
        return 0
    number = int(value.strip())
    return max(-PRIORITY_LIMIT, min(PRIORITY_LIMIT, number))
