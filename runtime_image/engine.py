"""Continuous batching: one decode thread steps every active sequence together.

Each step builds one ``llama_batch`` holding the next token of every decoding sequence plus chunks
of newly admitted prompts, runs ``llama_decode`` once, and samples each sequence's next token with
its own llama.cpp sampler chain. HTTP handlers never touch llama.cpp: they submit a ``Job`` and read
text deltas from an asyncio queue that the decode thread feeds once per step.

Between steps, a waiting job of higher priority may take the slot of the lowest-priority running
sequence, which is parked with its KV cache under a spare sequence id and resumed later, and
lower-priority sequences sit out the steps that prefill a higher one (preemption.py says how the
engine chooses). A job that outranks every sequence of the step running when it arrives stops that
step part-way (`Engine.submit`): llama.cpp checks an abort flag between the nodes of its graph and
drops the step's KV entries, and the engine redoes the step later, so the lower sequences only see
a gap.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import llama_cpp as llama

from inferflux.runtime.metrics import RuntimeMetrics
from inferflux.runtime.model import Model
from inferflux.runtime.preemption import Running, Waiting, abandons_step, next_waiting, step_floor, victim
from inferflux.runtime.prefix import choose_slot, swa_allows_reuse
from inferflux.runtime.sampling import Sampler, SamplingParams
from inferflux.runtime.textstream import TextStream

log = logging.getLogger("inferflux.runtime.engine")
ABORTED = 2  # llama_decode's status for a step its abort callback stopped

# llama.cpp's abort callback, ``bool (*)(void * data)``, is called between every two nodes of the
# graph on the decode thread. A Python callback would take the GIL hundreds of times per step, and
# wait for the event loop's thread each time; libc's ``strlen`` over a two-byte flag is C that
# reads one byte: 0 (an empty string, false) runs on, 1 (a one-character string, true) aborts.


def _flag_reader() -> int:
    """The address of libc's ``strlen``: the abort callback (see above)."""
    address = ctypes.cast(ctypes.CDLL(None).strlen, ctypes.c_void_p).value
    if not address:
        raise RuntimeError("libc's strlen was not found: the decode thread's abort flag needs it")
    return address


_READ_FLAG = _flag_reader()


@dataclass
class Finish:
    """The last event of a job: why it ended and what it used."""

    reason: str  # stop | length | cancelled | error
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    error: str = ""


@dataclass
class Timeline:
    """When a job reached each phase (``time.time_ns()``; 0: never) and where it ran, for its trace."""

    submitted: int = 0
    admitted: int = 0  # got a slot: the queue wait ends, the prefill starts
    first_token: int = 0  # the prefill ends
    finished: int = 0
    slot: int = -1
    batch_at_start: int = 0  # sequences holding a slot once this job got its own
    reused: int = 0  # prompt tokens whose KV cache was reused from the slot's previous job


@dataclass(eq=False)
class Job:
    """One generation request, shared by the HTTP handler and the decode thread."""

    prompt: list[int]
    max_tokens: int
    sampling: SamplingParams = field(default_factory=SamplingParams)
    stops: tuple[str, ...] = ()
    priority: int = 0  # higher first; a higher one may pause a lower one (preemption.py)
    events: asyncio.Queue[str | Finish] = field(default_factory=asyncio.Queue)
    cancelled: bool = False  # set by the handler when its client goes away
    timeline: Timeline = field(default_factory=Timeline)
    finish: Finish | None = None  # the last event, once the handler has read it

    def cancel(self) -> None:
        """Ask the decode thread to stop this job; it does so before its next step."""
        self.cancelled = True


class _Active:
    """Decode-thread state of a job that holds a slot."""

    __slots__ = (
        "cached",
        "generated",
        "job",
        "n_past",
        "next_token",
        "order",
        "out_index",
        "resume_token",
        "sampler",
        "shown",
        "source",
        "stream",
        "t_last",
        "t_start",
    )

    def __init__(self, job: Job, sampler: Sampler, n_past: int, order: int) -> None:
        self.job = job
        self.sampler = sampler
        self.n_past = n_past  # tokens of `source` whose KV is in the cache
        self.cached = n_past
        self.order = order  # when it was first admitted
        self.source = job.prompt  # what is prefilled: the prompt, or a parked history to recompute
        self.resume_token = -1  # after recomputing a history: the token to decode next, not sample
        self.stream = TextStream(job.stops)
        self.generated = 0
        self.shown = False  # some of its text went to the client (its time to first token is over)
        self.next_token = -1
        self.out_index = -1
        self.t_start = time.perf_counter()
        self.t_last = 0.0


@dataclass(eq=False)
class _Parked:
    """A paused sequence: its state, the tokens its KV holds, and where that KV is kept (``seq``;
    -1 once it was dropped to make room, and the history must be prefilled again on resume)."""

    state: _Active
    tokens: list[int]
    seq: int


class Engine:
    """Owns the llama.cpp context and the decode thread."""

    def __init__(
        self,
        model: Model,
        *,
        context_size: int,
        parallel: int,
        threads: int,
        batch_size: int,
        metrics: RuntimeMetrics,
    ) -> None:
        params = llama.llama_context_default_params()
        params.n_ctx = context_size
        params.n_batch = batch_size
        params.n_ubatch = batch_size
        params.n_seq_max = 2 * parallel  # sequence ids parallel.. hold the KV of parked sequences
        params.n_threads = threads
        params.n_threads_batch = threads
        params.kv_unified = True  # one shared pool: any sequence may use the whole context
        params.no_perf = True
        self._abort_flag = ctypes.create_string_buffer(2)  # two zero bytes; byte 0 set to 1 stops a step
        self._abort_check = llama.ggml_abort_callback(_READ_FLAG)  # kept: llama.cpp holds the pointer
        params.abort_callback = self._abort_check
        params.abort_callback_data = ctypes.cast(self._abort_flag, ctypes.c_void_p)
        ctx = llama.llama_init_from_model(model.handle, params)
        if not ctx:
            raise RuntimeError("llama.cpp could not create a context (out of memory?)")
        self.model = model
        self.ctx = ctx
        self.memory = llama.llama_get_memory(ctx)
        self.n_ctx = llama.llama_n_ctx_seq(ctx)
        self.n_batch = batch_size
        self.batch = llama.llama_batch_init(batch_size, 0, 1)
        self.metrics = metrics
        self.slot_tokens: list[list[int]] = [[] for _ in range(parallel)]
        self.active: list[_Active | None] = [None] * parallel
        self.pending: deque[Job] = deque()
        self.parked: list[_Parked] = []
        self.free_parking = list(range(2 * parallel - 1, parallel - 1, -1))
        self._admissions = 0  # admission order, for fair ties between equal priorities
        self._step_sequences = 0
        self._batch_top = 0  # highest priority among the sequences in the batch
        self._step_top: int | None = None  # the same while the batch is decoded, None between
        self.loop: asyncio.AbstractEventLoop | None = None
        self._wakeup = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="inferflux-decode", daemon=True)

    # -- handler side -------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the decode thread; events are delivered on ``loop``."""
        self.loop = loop
        self._thread.start()

    def submit(self, job: Job) -> Job:
        """Queue ``job`` for a free slot; its events arrive on ``job.events``."""
        if not job.prompt:  # no token to decode from: the job would wait forever
            raise ValueError("a job needs at least one prompt token")
        if job.max_tokens < 1:  # its limit was spent before it began (a continued reply)
            job.events.put_nowait(Finish("length", len(job.prompt)))
            return job
        job.timeline.submitted = time.time_ns()
        self.pending.append(job)
        self.metrics.queue_depth.set(len(self.pending))
        if abandons_step(self._step_top, job.priority) and self.free_parking:
            self._abort_flag[0] = b"\x01"
        self._wakeup.set()
        return job

    def close(self) -> None:
        """Stop the decode thread and free the context."""
        self._stopping = True
        self._wakeup.set()
        if self._thread.is_alive():
            self._thread.join()
        outbox: list[tuple[Job, str | Finish]] = []
        for slot, state in enumerate(self.active):
            if state is not None:
                self._finish(slot, "error", outbox, error="the model was unloaded")
        for parked in list(self.parked):
            self._finish_parked(parked, "error", outbox, error="the model was unloaded")
        outbox.extend(
            (job, Finish("error", len(job.prompt), error="the model was unloaded")) for job in self.pending
        )
        self.pending.clear()
        self._deliver(outbox)
        llama.llama_batch_free(self.batch)
        llama.llama_free(self.ctx)

    @property
    def busy(self) -> int:
        """Jobs running, parked or waiting."""
        return sum(a is not None for a in self.active) + len(self.parked) + len(self.pending)

    # -- decode thread ------------------------------------------------------------------------
    def _run(self) -> None:
        outbox: list[tuple[Job, str | Finish]] = []
        while not self._stopping:
            if not self.step(outbox):
                self._deliver(outbox)
                self._wakeup.wait()
                self._wakeup.clear()
                continue
            self._deliver(outbox)

    def step(self, outbox: list[tuple[Job, str | Finish]]) -> bool:
        """One turn of the decode loop: admit, decode one batch, sample; events go to ``outbox``.

        False when there was nothing to decode. The decode thread calls it; tests that need to
        place events between steps call it themselves, without starting the thread.
        """
        self._drop_cancelled(outbox)
        self._admit(outbox)
        n_tokens = self._fill_batch()
        if n_tokens == 0:
            self._update_gauges()
            return False
        # A job submitted from here on may stop this step; one that came earlier was just admitted.
        self._abort_flag[0] = b"\x00"
        self._step_top = self._batch_top
        try:
            status = llama.llama_decode(self.ctx, self.batch)
        finally:
            self._step_top = None
        if status == 0:
            self.metrics.step_sequences.observe(self._step_sequences)
            self._sample(outbox)
        else:
            self._recover(status, outbox)
        self._update_gauges()
        return True

    def _deliver(self, outbox: list[tuple[Job, str | Finish]]) -> None:
        if outbox and self.loop is not None:
            self.loop.call_soon_threadsafe(_put_all, outbox[:])
            outbox.clear()

    def _finish(
        self, slot: int, reason: str, outbox: list[tuple[Job, str | Finish]], error: str = ""
    ) -> None:
        state = self.active[slot]
        assert state is not None
        self.active[slot] = None
        self._ended(state, reason, outbox, error)

    def _finish_parked(
        self, parked: _Parked, reason: str, outbox: list[tuple[Job, str | Finish]], error: str = ""
    ) -> None:
        self.parked.remove(parked)
        if parked.seq >= 0:
            self._release_parking(parked.seq)
        self._ended(parked.state, reason, outbox, error)

    def _ended(self, state: _Active, reason: str, outbox: list[tuple[Job, str | Finish]], error: str) -> None:
        state.sampler.close()
        job = state.job
        job.timeline.finished = time.time_ns()
        if reason in ("stop", "length") and state.generated > 1 and job.timeline.first_token:
            per_token = (job.timeline.finished - job.timeline.first_token) / (state.generated - 1)
            self.metrics.time_per_output_token.observe(per_token / 1e9)
        outbox.append((job, Finish(reason, len(job.prompt), state.generated, state.cached, error)))
        self.metrics.finished.labels(reason=reason).inc()

    def _drop_cancelled(self, outbox: list[tuple[Job, str | Finish]]) -> None:
        for slot, state in enumerate(self.active):
            if state is not None and state.job.cancelled:
                self._finish(slot, "cancelled", outbox)
        for parked in [p for p in self.parked if p.state.job.cancelled]:
            self._finish_parked(parked, "cancelled", outbox)
        if any(job.cancelled for job in self.pending):
            for job in [j for j in self.pending if j.cancelled]:
                self.pending.remove(job)
                outbox.append((job, Finish("cancelled", len(job.prompt))))
                self.metrics.finished.labels(reason="cancelled").inc()

    def _admit(self, outbox: list[tuple[Job, str | Finish]]) -> None:
        """Give free slots to waiting sequences, highest priority first, parking a lower one if needed."""
        while self.pending or self.parked:
            waiting = [Waiting(p.state.job.priority, p.state.order, True) for p in self.parked]
            waiting += [Waiting(job.priority, index, False) for index, job in enumerate(self.pending)]
            chosen = next_waiting(waiting)
            assert chosen is not None
            idle = self._idle()
            freed = None
            if not idle:
                running = [Running(slot, a.job.priority, a.order) for slot, a in enumerate(self.active) if a]
                freed = victim(running, waiting[chosen].priority) if self.free_parking else None
                if freed is None:
                    break
            # Take the chosen one out before parking anything: parking appends to `self.parked`.
            if chosen < len(self.parked):
                resuming: _Parked | None = self.parked.pop(chosen)
            else:
                resuming, starting = None, self.pending[chosen - len(self.parked)]
                del self.pending[chosen - len(self.parked)]
            if freed is not None:
                self._park(freed)
                idle = self._idle()
            if resuming is not None:
                self._resume(resuming, idle)
            else:
                self._start(starting, idle, outbox)
        self.metrics.queue_depth.set(len(self.pending))
        self.metrics.parked.set(len(self.parked))

    def _idle(self) -> list[tuple[int, list[int]]]:
        return [(slot, self.slot_tokens[slot]) for slot, a in enumerate(self.active) if a is None]

    def _start(
        self, job: Job, idle: list[tuple[int, list[int]]], outbox: list[tuple[Job, str | Finish]]
    ) -> None:
        if len(job.prompt) >= self.n_ctx:
            outbox.append(
                (job, Finish("error", len(job.prompt), error="the prompt does not fit the context"))
            )
            return
        try:
            sampler = Sampler(job.sampling, self.model.vocab, self.model.n_vocab)
        except ValueError as exc:
            outbox.append((job, Finish("error", len(job.prompt), error=str(exc))))
            return
        slot, reuse = choose_slot(idle, job.prompt)
        reuse = self._keep_prefix(slot, reuse)
        self.slot_tokens[slot] = job.prompt[:reuse]
        self._admissions += 1
        self.active[slot] = _Active(job, sampler, reuse, self._admissions)
        timeline = job.timeline
        timeline.admitted, timeline.slot, timeline.reused = time.time_ns(), slot, reuse
        self.metrics.queue_wait.observe((timeline.admitted - timeline.submitted) / 1e9)
        timeline.batch_at_start = sum(a is not None for a in self.active)
        self.metrics.prompt_tokens.inc(len(job.prompt))
        self.metrics.prefix_reused_tokens.inc(reuse)

    def _keep_prefix(self, slot: int, reuse: int) -> int:
        """Drop the slot's KV after ``reuse`` tokens (all of it where that cannot be done): the kept count."""
        oldest = llama.llama_memory_seq_pos_min(self.memory, slot)
        if not swa_allows_reuse(reuse, oldest, self.model.n_swa):
            reuse = 0
        if not llama.llama_memory_seq_rm(self.memory, slot, reuse, -1):
            llama.llama_memory_seq_rm(self.memory, slot, -1, -1)
            reuse = 0
        return reuse

    def _park(self, slot: int) -> None:
        """Pause the sequence in ``slot``: its KV is copied under a spare sequence id, its state kept."""
        state = self.active[slot]
        assert state is not None
        seq = self.free_parking.pop()
        llama.llama_memory_seq_rm(self.memory, seq, -1, -1)
        llama.llama_memory_seq_cp(self.memory, slot, seq, -1, -1)
        self.parked.append(_Parked(state, self.slot_tokens[slot][:], seq))
        self.active[slot] = None  # its cache stays too, as any idle slot's does, for prefix reuse
        self.metrics.preempted.inc()

    def _resume(self, parked: _Parked, idle: list[tuple[int, list[int]]]) -> None:
        """Put a parked sequence back in a slot: with its kept KV, or prefilling its history again."""
        state = parked.state
        if parked.seq >= 0:
            slot, _ = choose_slot(idle, parked.tokens)
            llama.llama_memory_seq_rm(self.memory, slot, -1, -1)
            llama.llama_memory_seq_cp(self.memory, parked.seq, slot, -1, -1)
            self._release_parking(parked.seq)
            self.slot_tokens[slot] = parked.tokens
        else:
            if state.next_token >= 0:  # it was decoding: its history is prefilled, then decoding goes on
                state.source, state.resume_token, state.next_token = parked.tokens, state.next_token, -1
            slot, reuse = choose_slot(idle, state.source)
            state.n_past = self._keep_prefix(slot, reuse)
            self.slot_tokens[slot] = state.source[: state.n_past]
        self.active[slot] = state
        self.metrics.resumed.inc()

    def forget_parked_kv(self) -> int:
        """Free the KV cells parked sequences hold (they prefill their history again on resume);
        returns how many sequences lost theirs. Decode thread only (or a test driving `step`)."""
        kept = [parked for parked in self.parked if parked.seq >= 0]
        for parked in kept:
            self._release_parking(parked.seq)
            parked.seq = -1
        return len(kept)

    def _release_parking(self, seq: int) -> None:
        llama.llama_memory_seq_rm(self.memory, seq, -1, -1)
        self.free_parking.append(seq)

    def _fill_batch(self) -> int:
        """Put the next step in the batch: its token count (``_step_sequences``: its sequences)."""
        batch, count, sequences = self.batch, 0, 0
        # Lower sequences wait while a higher one has shown its client nothing yet: prefilling, or
        # sampling tokens that are not text so far (a stop string's start, part of a character).
        floor = step_floor(a.job.priority for a in self.active if a is not None and not a.shown)
        held, top = 0, None
        for slot, state in enumerate(self.active):  # one token for every decoding sequence
            if state is None or state.next_token < 0:
                continue
            if floor is not None and state.job.priority < floor:
                held += 1
                continue
            _put(batch, count, state.next_token, len(self.slot_tokens[slot]), slot, True)
            top = state.job.priority if top is None else max(top, state.job.priority)
            self.slot_tokens[slot].append(state.next_token)
            state.out_index, count, sequences = count, count + 1, sequences + 1
        for slot, state in enumerate(self.active):  # then prompt chunks in what room is left
            if state is None or state.next_token >= 0 or count >= self.n_batch:
                continue
            if floor is not None and state.job.priority < floor:
                held += 1
                continue
            sequences += 1
            top = state.job.priority if top is None else max(top, state.job.priority)
            prompt, tokens = state.source, self.slot_tokens[slot]
            end = min(len(prompt), state.n_past + self.n_batch - count)
            for index in range(state.n_past, end):
                _put(batch, count, prompt[index], index, slot, index == len(prompt) - 1)
                count += 1
            tokens.extend(prompt[state.n_past : end])
            state.n_past = end
            state.out_index = count - 1 if end == len(prompt) else -1
        batch.n_tokens = count
        self._step_sequences = sequences
        self._batch_top = top if top is not None else 0
        if held and count:
            self.metrics.held.inc(held)
        return count

    def _sample(self, outbox: list[tuple[Job, str | Finish]]) -> None:
        model, now = self.model, time.perf_counter()
        for slot, state in enumerate(self.active):
            if state is None or state.out_index < 0:
                continue
            if state.resume_token >= 0:  # a recomputed history: decoding goes on with the saved token
                state.next_token, state.resume_token, state.out_index = state.resume_token, -1, -1
                continue
            token = state.sampler.sample(self.ctx, state.out_index)
            state.out_index = -1
            state.generated += 1
            if state.t_last:
                self.metrics.inter_token.observe(now - state.t_last)
            else:
                self.metrics.ttft.observe(now - state.t_start)
                state.job.timeline.first_token = time.time_ns()
            state.t_last = now
            self.metrics.generation_tokens.inc()
            if model.is_end_of_generation(token):
                tail = state.stream.flush()
                if tail:
                    outbox.append((state.job, tail))
                self._finish(slot, "stop", outbox)
                continue
            text = state.stream.feed(model.piece(token))
            out_of_room = len(self.slot_tokens[slot]) + 1 >= self.n_ctx
            if state.stream.stopped or state.generated >= state.job.max_tokens or out_of_room:
                text += "" if state.stream.stopped else state.stream.flush()
                if text:
                    outbox.append((state.job, text))
                self._finish(slot, "stop" if state.stream.stopped else "length", outbox)
                continue
            if text:
                outbox.append((state.job, text))
                state.shown = True
            state.next_token = token

    def _recover(self, status: int, outbox: list[tuple[Job, str | Finish]]) -> None:
        """Undo the failed step; on a full cache free idle prefixes first, then cut the longest job."""
        for slot, state in enumerate(self.active):
            if state is None:
                continue
            kept = llama.llama_memory_seq_pos_max(self.memory, slot) + 1
            del self.slot_tokens[slot][kept:]
            if state.next_token < 0:
                state.n_past = min(state.n_past, kept)
            state.out_index = -1
        if status == ABORTED:  # stopped for a higher-priority job: the step is redone, nothing lost
            self.metrics.steps_abandoned.inc()
            return
        if status != 1:
            log.error("llama_decode failed with status %d; failing the running requests", status)
            for slot, state in enumerate(self.active):
                if state is not None:
                    llama.llama_memory_seq_rm(self.memory, slot, -1, -1)
                    self.slot_tokens[slot] = []
                    self._finish(slot, "error", outbox, error="the model failed to decode")
            return
        idle = [s for s, a in enumerate(self.active) if a is None and self.slot_tokens[s]]
        if not idle and self.forget_parked_kv():  # parked KV goes before a running sequence is cut
            return
        victims = idle or [
            max((s for s, a in enumerate(self.active) if a), key=lambda s: len(self.slot_tokens[s]))
        ]
        for slot in victims:
            llama.llama_memory_seq_rm(self.memory, slot, -1, -1)
            self.slot_tokens[slot] = []
            if self.active[slot] is not None:
                self._finish(slot, "length", outbox)

    def _update_gauges(self) -> None:
        self.metrics.running.set(sum(a is not None for a in self.active))
        self.metrics.kv_usage.set(sum(len(t) for t in self.slot_tokens) / self.n_ctx)


def _put(batch: Any, index: int, token: int, pos: int, seq: int, logits: bool) -> None:
    batch.token[index] = token
    batch.pos[index] = pos
    batch.n_seq_id[index] = 1
    batch.seq_id[index][0] = seq
    batch.logits[index] = logits


def _put_all(outbox: list[tuple[Job, str | Finish]]) -> None:
    for job, event in outbox:
        job.events.put_nowait(event)
