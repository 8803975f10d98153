"""Continuous batching: one decode thread steps every active sequence together.

Each step builds one ``llama_batch`` holding the next token of every decoding sequence plus chunks
of newly admitted prompts, runs ``llama_decode`` once, and samples each sequence's next token with
its own llama.cpp sampler chain. HTTP handlers never touch llama.cpp: they submit a ``Job`` and read
text deltas from an asyncio queue that the decode thread feeds once per step.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import llama_cpp as llama

from inferflux.runtime.metrics import RuntimeMetrics
from inferflux.runtime.model import Model
from inferflux.runtime.prefix import choose_slot, swa_allows_reuse
from inferflux.runtime.sampling import Sampler, SamplingParams
from inferflux.runtime.textstream import TextStream

log = logging.getLogger("inferflux.runtime.engine")


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
        "out_index",
        "sampler",
        "stream",
        "t_last",
        "t_start",
    )

    def __init__(self, job: Job, sampler: Sampler, n_past: int) -> None:
        self.job = job
        self.sampler = sampler
        self.n_past = n_past  # prompt tokens whose KV is in the cache
        self.cached = n_past
        self.stream = TextStream(job.stops)
        self.generated = 0
        self.next_token = -1
        self.out_index = -1
        self.t_start = time.perf_counter()
        self.t_last = 0.0


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
        params.n_seq_max = parallel
        params.n_threads = threads
        params.n_threads_batch = threads
        params.kv_unified = True  # one shared pool: any sequence may use the whole context
        params.no_perf = True
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
        self._step_sequences = 0
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
        outbox.extend(
            (job, Finish("error", len(job.prompt), error="the model was unloaded")) for job in self.pending
        )
        self.pending.clear()
        self._deliver(outbox)
        llama.llama_batch_free(self.batch)
        llama.llama_free(self.ctx)

    @property
    def busy(self) -> int:
        """Jobs running or waiting."""
        return sum(a is not None for a in self.active) + len(self.pending)

    # -- decode thread ------------------------------------------------------------------------
    def _run(self) -> None:
        outbox: list[tuple[Job, str | Finish]] = []
        while not self._stopping:
            self._drop_cancelled(outbox)
            self._admit(outbox)
            n_tokens = self._fill_batch()
            if n_tokens == 0:
                self._update_gauges()
                self._deliver(outbox)
                self._wakeup.wait()
                self._wakeup.clear()
                continue
            status = llama.llama_decode(self.ctx, self.batch)
            if status == 0:
                self.metrics.step_sequences.observe(self._step_sequences)
                self._sample(outbox)
            else:
                self._recover(status, outbox)
            self._update_gauges()
            self._deliver(outbox)

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
        state.sampler.close()
        job = state.job
        job.timeline.finished = time.time_ns()
        outbox.append((job, Finish(reason, len(job.prompt), state.generated, state.cached, error)))
        self.metrics.finished.labels(reason=reason).inc()

    def _drop_cancelled(self, outbox: list[tuple[Job, str | Finish]]) -> None:
        for slot, state in enumerate(self.active):
            if state is not None and state.job.cancelled:
                self._finish(slot, "cancelled", outbox)
        if any(job.cancelled for job in self.pending):
            for job in [j for j in self.pending if j.cancelled]:
                self.pending.remove(job)
                outbox.append((job, Finish("cancelled", len(job.prompt))))
                self.metrics.finished.labels(reason="cancelled").inc()

    def _admit(self, outbox: list[tuple[Job, str | Finish]]) -> None:
        while self.pending:
            idle = [(slot, self.slot_tokens[slot]) for slot, a in enumerate(self.active) if a is None]
            if not idle:
                return
            job = self.pending.popleft()
            if len(job.prompt) >= self.n_ctx:
                outbox.append(
                    (job, Finish("error", len(job.prompt), error="the prompt does not fit the context"))
                )
                continue
            slot, reuse = choose_slot(idle, job.prompt)
            oldest = llama.llama_memory_seq_pos_min(self.memory, slot)
            if not swa_allows_reuse(reuse, oldest, self.model.n_swa):
                reuse = 0
            if not llama.llama_memory_seq_rm(self.memory, slot, reuse, -1):
                llama.llama_memory_seq_rm(self.memory, slot, -1, -1)
                reuse = 0
            try:
                sampler = Sampler(job.sampling, self.model.vocab, self.model.n_vocab)
            except ValueError as exc:
                outbox.append((job, Finish("error", len(job.prompt), error=str(exc))))
                continue
            self.slot_tokens[slot] = job.prompt[:reuse]
            self.active[slot] = _Active(job, sampler, reuse)
            timeline = job.timeline
            timeline.admitted, timeline.slot, timeline.reused = time.time_ns(), slot, reuse
            timeline.batch_at_start = sum(a is not None for a in self.active)
            self.metrics.prompt_tokens.inc(len(job.prompt))
            self.metrics.prefix_reused_tokens.inc(reuse)
        self.metrics.queue_depth.set(len(self.pending))

    def _fill_batch(self) -> int:
        """Put the next step in the batch: its token count (``_step_sequences``: its sequences)."""
        batch, count, sequences = self.batch, 0, 0
        for slot, state in enumerate(self.active):  # one token for every decoding sequence
            state = self.active[slot]
            if state is None or state.next_token < 0:
                continue
            _put(batch, count, state.next_token, len(self.slot_tokens[slot]), slot, True)
            self.slot_tokens[slot].append(state.next_token)
            state.out_index, count, sequences = count, count + 1, sequences + 1
        for slot, state in enumerate(self.active):  # then prompt chunks in what room is left
            if state is None or state.next_token >= 0 or count >= self.n_batch:
                continue
            sequences += 1
            prompt, tokens = state.job.prompt, self.slot_tokens[slot]
            end = min(len(prompt), state.n_past + self.n_batch - count)
            for index in range(state.n_past, end):
                _put(batch, count, prompt[index], index, slot, index == len(prompt) - 1)
                count += 1
            tokens.extend(prompt[state.n_past : end])
            state.n_past = end
            state.out_index = count - 1 if end == len(prompt) else -1
        batch.n_tokens = count
        self._step_sequences = sequences
        return count

    def _sample(self, outbox: list[tuple[Job, str | Finish]]) -> None:
        model, now = self.model, time.perf_counter()
        for slot, state in enumerate(self.active):
            if state is None or state.out_index < 0:
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
        if status != 1:
            log.error("llama_decode failed with status %d; failing the running requests", status)
            for slot, state in enumerate(self.active):
                if state is not None:
                    llama.llama_memory_seq_rm(self.memory, slot, -1, -1)
                    self.slot_tokens[slot] = []
                    self._finish(slot, "error", outbox, error="the model failed to decode")
            return
        idle = [s for s, a in enumerate(self.active) if a is None and self.slot_tokens[s]]
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
