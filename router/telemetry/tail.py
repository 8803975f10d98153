"""Tail sampling: hold a trace's spans until its local root ends, then keep it or drop it whole.

Head sampling decides before anything happened, so it loses most failures. Here every span is
recorded (cheaply, `spans.Recorder`) and waits with its trace, from its start, until the trace's
local root (the span with no parent in this process: the router's server span, the runtime's
request span) ends. Then the trace is exported when any of its spans failed (status ERROR or an
``error.type`` attribute: 4xx/5xx answers, timeouts, cancelled streams, upstream errors) or when
its trace id falls in the sampled ratio. The ratio test reads the trace id's low 64 bits the way
``TraceIdRatioBased`` does, so the router and the runtime, deciding separately, keep the same
successful traces.

The buffer is bounded in spans, counted as they start (`started`): a span that does not fit is
dropped and counted (`dropped`), and the rest of its trace is still decided normally. Leaf spans
(pipeline stages, `spans.LeafSpan`) are rows on their trace and not counted: a request has as many
as its pipeline has stages. A span still running when its root ends, or started after it (a
background task outliving its request), follows the decision as it ends.
"""

from __future__ import annotations

from inferflux.router.telemetry.export import Sink
from inferflux.router.telemetry.scrub import scrub
from inferflux.router.telemetry.spans import Recorder

TRACE_ID_LIMIT = (1 << 64) - 1


def threshold(ratio: float) -> int:
    """The trace ids whose low 64 bits are below this are sampled at ``ratio``."""
    return round(ratio * (TRACE_ID_LIMIT + 1))


def sampled(trace_id: int, ratio: float) -> bool:
    """The ratio decision for a successful trace, the same in every process that sees the trace."""
    return (trace_id & TRACE_ID_LIMIT) < threshold(ratio)


class TailSampler:
    """Decides traces as their local roots end; kept spans are scrubbed and go to ``sink``.

    ``capture``: content capture is on, so kept spans are not scrubbed.
    """

    def __init__(self, sink: Sink, ratio: float, max_spans: int, capture: bool = False) -> None:
        self.sink = sink
        self.ratio = ratio
        self.threshold = threshold(ratio)  # `sampled` with the ratio worked out once
        self.max_spans = max_spans
        self.capture = capture
        self.buffered = 0  # spans waiting for their trace's decision
        self.dropped = 0  # spans that did not fit the buffer
        self.kept_traces = 0
        self.discarded_traces = 0

    def started(self, span: Recorder) -> None:
        """Called with every span that has a parent in this process, as it starts: it waits with
        its trace, if the buffer has room, until the local root ends."""
        trace = span.trace
        if trace.decided:  # started after its root ended (a background task): `ended` exports it
            return
        if self.buffered >= self.max_spans:
            self.dropped += 1
            return
        trace.spans.append(span)
        self.buffered += 1

    def ended(self, span: Recorder) -> None:
        """Called by a local root as it ends, and by any span ending after its trace was decided."""
        trace = span.trace
        if trace.decided:
            if trace.kept:
                self._export([span])
            return
        waiting = trace.spans
        self.buffered -= len(waiting)
        trace.spans = []
        trace.decided = True
        trace.kept = trace.failed or (trace.trace_id & TRACE_ID_LIMIT) < self.threshold
        if not trace.kept:
            self.discarded_traces += 1
            return
        self.kept_traces += 1
        # Children still running are exported as they end (the decided branch above).
        spans = [child for child in waiting if child.end_time]
        spans.append(span)
        if trace.leaves:
            spans.extend(trace.leaf_spans())
        self._export(spans)

    def _export(self, spans: list[Recorder]) -> None:
        for span in spans:
            span.resolve()
            if not self.capture:
                scrub(span)
        self.sink.submit(spans)
