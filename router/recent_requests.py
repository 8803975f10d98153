"""This router's most recent requests, kept in memory for the admin console's Traces page.

A bounded ring, fed by a `Pipeline` observer (router/pipeline.py): one entry per request that
reached the request pipeline, whatever its outcome (answered, refused by a stage, failed upstream,
abandoned by its client). Requests refused before it (no credential, a body that does not parse)
leave no entry. An entry holds the model, front door, tenant, status, error code, and the timings
this router measures, in seconds:

- ``total``: from the request's arrival to the moment the pipeline finished it, just before the
  response's last byte;
- ``queue``: waiting for a slot in this router's queue of the model; ``upstream``: from that slot
  to the end (connecting, the runtime's work, relaying). Both only for requests relayed to a
  runtime replica by the OpenAI routes; provider routes and refused requests have neither;
- ``ttft``: to the first chunk of a stream that completed.

Never the prompt, the answer, a header or a key. ``trace_id`` is the request's trace when tracing
is on (router/telemetry). The tail sampler decides whether a trace is kept (sent to the trace
backend) only when the request's server span ends, after the entry is written, so the entry keeps
the trace's record and reads the decision when it is viewed: a link is only offered to a kept
trace. Kept spans are queued and POSTed in the background; a failed POST is not retried, so a kept
trace can still be missing from the backend.
The oldest entries fall out once ``capacity`` is reached; a router restart empties the ring.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from dataclasses import dataclass

from inferflux.router.pipeline import Call
from inferflux.router.telemetry.spans import TraceRecord, current_span

CAPACITY = 200
#: ``Call.notes`` keys the OpenAI routes fill in (the first two from the dispatcher's `Demand`).
QUEUE_NOTE = "recent.queue"  # seconds waited for a slot
GRANTED_NOTE = "recent.granted"  # time.perf_counter() when the slot came
TTFT_NOTE = "metrics.ttft"  # seconds to the first chunk of a stream that completed
TRACE_ID = "{trace_id}"


@dataclass(frozen=True, slots=True)
class RecentRequest:
    """One finished request, as the console shows it."""

    sequence: int
    time: float  # time.time() when it finished
    request_id: str
    route: str
    model: str
    tenant: str | None
    stream: bool
    status: int
    error: str
    total: float
    queue: float | None
    upstream: float | None
    ttft: float | None
    trace: TraceRecord | None

    @property
    def trace_id(self) -> str | None:
        """The trace id as 32 hex digits, or None when tracing was off."""
        return f"{self.trace.trace_id:032x}" if self.trace is not None else None

    @property
    def kept(self) -> bool | None:
        """Whether the tail sampler kept the trace; None while undecided or without a trace."""
        trace = self.trace
        if trace is None or not trace.decided:
            return None
        return trace.kept

    def view(self, trace_url: str = "") -> dict[str, object]:
        """The entry as the admin API answers it; ``traceUrl`` only for a kept trace."""
        trace_id, kept = self.trace_id, self.kept
        return {
            "sequence": self.sequence,
            "time": dt.datetime.fromtimestamp(self.time, dt.UTC).isoformat(timespec="milliseconds"),
            "requestId": self.request_id,
            "route": self.route,
            "model": self.model,
            "tenant": self.tenant,
            "stream": self.stream,
            "status": self.status,
            "error": self.error or None,
            "totalMs": milliseconds(self.total),
            "queueMs": milliseconds(self.queue),
            "upstreamMs": milliseconds(self.upstream),
            "ttftMs": milliseconds(self.ttft),
            "traceId": trace_id,
            "traceKept": kept,
            "traceUrl": trace_link(trace_url, trace_id) if kept else None,
        }


def milliseconds(seconds: float | None) -> float | None:
    """Seconds as milliseconds to a tenth, None kept."""
    return None if seconds is None else round(seconds * 1000, 1)


def trace_link(template: str, trace_id: str | None) -> str | None:
    """``template`` with ``{trace_id}`` replaced, or None without a template or a trace."""
    if not template or trace_id is None:
        return None
    return template.replace(TRACE_ID, trace_id)


def timings(call: Call, now: float) -> tuple[float, float | None, float | None, float | None]:
    """Total, queue, upstream and time to first chunk of ``call`` finished at ``now`` (perf_counter)."""
    notes = call.notes
    granted = notes.get(GRANTED_NOTE)
    upstream = now - granted if granted is not None else None
    return now - call.started, notes.get(QUEUE_NOTE), upstream, notes.get(TTFT_NOTE)


class RecentRequests:
    """The last ``capacity`` requests the pipeline finished; `record` is its observer."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._entries: deque[RecentRequest] = deque(maxlen=capacity)
        self.sequence = 0

    def record(self, call: Call) -> None:
        """Keep ``call``'s outcome and timings (a `Pipeline` observer: cheap, never raises)."""
        total, queue, upstream, ttft = timings(call, time.perf_counter())
        span = current_span.get()
        self.sequence += 1
        self._entries.append(
            RecentRequest(
                self.sequence,
                time.time(),
                call.request_id,
                call.route,
                call.model,
                call.tenant,
                call.stream,
                call.status,
                call.error,
                total,
                queue,
                upstream,
                ttft,
                span.trace if span is not None else None,
            )
        )

    def entries(self, limit: int | None = None) -> list[RecentRequest]:
        """Newest first, at most ``limit``."""
        newest = list(reversed(self._entries))
        return newest if limit is None else newest[:limit]
