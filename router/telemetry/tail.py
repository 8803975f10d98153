"""Tail sampling: hold a trace's spans until its local root ends, then keep it or drop it whole.

Head sampling decides before anything happened, so it loses most failures. Here every span is
recorded; ended spans wait in a per-trace buffer until the trace's local root (the span with no
parent in this process: the router's server span, the runtime's request span) ends. Then the trace
is exported when any of its spans failed (status ERROR or an ``error.type`` attribute: 4xx/5xx
answers, timeouts, cancelled streams, upstream errors) or when its trace id falls in the sampled
ratio. The ratio test reads the trace id's low 64 bits the way ``TraceIdRatioBased`` does, so the
router and the runtime, deciding separately, keep the same successful traces.

The buffer is bounded in spans: a span that does not fit is dropped and counted (`dropped`), and
the rest of its trace is still decided normally. A span that ends after its root was decided (rare:
a background task outliving its request) follows the recorded decision while it is remembered.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

TRACE_ID_LIMIT = (1 << 64) - 1
REMEMBERED_DECISIONS = 4096


def failed(span: ReadableSpan) -> bool:
    """True when ``span`` records a failure."""
    attributes = span.attributes or {}
    return span.status.status_code is StatusCode.ERROR or "error.type" in attributes


def sampled(trace_id: int, ratio: float) -> bool:
    """The ratio decision for a successful trace, the same in every process that sees the trace."""
    return (trace_id & TRACE_ID_LIMIT) < round(ratio * (TRACE_ID_LIMIT + 1))


def is_local_root(span: ReadableSpan) -> bool:
    """True for the first span of a trace in this process (no parent, or a parent from elsewhere)."""
    return span.parent is None or span.parent.is_remote


class TailSampler(SpanProcessor):
    """Buffers ended spans per trace and passes kept traces to ``downstream`` (the exporting processor)."""

    def __init__(self, downstream: SpanProcessor, ratio: float, max_spans: int) -> None:
        self.downstream = downstream
        self.ratio = ratio
        self.max_spans = max_spans
        self.dropped = 0  # spans that did not fit the buffer
        self.kept_traces = 0
        self.discarded_traces = 0
        self._traces: dict[int, list[ReadableSpan]] = {}
        self._buffered = 0
        self._decided: OrderedDict[int, bool] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def buffered(self) -> int:
        """Spans waiting for their trace's decision."""
        return self._buffered

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        trace_id = context.trace_id
        with self._lock:
            late = self._decided.get(trace_id)
            if late is not None:
                kept: list[ReadableSpan] = [span] if late else []
            elif not is_local_root(span):
                if self._buffered >= self.max_spans:
                    self.dropped += 1
                else:
                    self._traces.setdefault(trace_id, []).append(span)
                    self._buffered += 1
                return
            else:
                spans = self._traces.pop(trace_id, [])
                self._buffered -= len(spans)
                spans.append(span)
                keep = any(failed(each) for each in spans) or sampled(trace_id, self.ratio)
                self._remember(trace_id, keep)
                if keep:
                    self.kept_traces += 1
                else:
                    self.discarded_traces += 1
                kept = spans if keep else []
        for each in kept:
            self.downstream.on_end(each)

    def _remember(self, trace_id: int, keep: bool) -> None:
        self._decided[trace_id] = keep
        if len(self._decided) > REMEMBERED_DECISIONS:
            self._decided.popitem(last=False)

    def shutdown(self) -> None:
        self.downstream.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.downstream.force_flush(timeout_millis)
