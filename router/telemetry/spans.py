"""Lightweight recording spans: plain objects on the request path, OpenTelemetry spans only on export.

Tail sampling records every span but exports about one trace in ten, so building full SDK spans for
all of them (attribute validation, locks, a read-only copy at every end) would cost the router a
third of its throughput. A `Recorder` stores a name, two timestamps and a dict; only a trace that is
kept becomes `ReadableSpan` objects for the exporter (`Recorder.readable`). Recorders implement the
few span methods InferFlux uses (`TraceSpan`); `NOOP` is the shared span that records nothing.
A pipeline stage's span is cheaper still (`LeafSpan`): a row on its trace, which becomes a
`Recorder` only when the trace is kept or a span is started under it.

Spans of one request live on one event loop: recorders are not locked.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from random import getrandbits
from time import time_ns
from typing import Any, Protocol

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.util.types import Attributes, AttributeValue

SCOPE = InstrumentationScope("inferflux")
# Shared by every span without events (most of them): one list fewer to allocate and collect per
# span. Never appended to: `Recorder.add_event` replaces it first.
NO_EVENTS: list[tuple[str, dict[str, Any], int]] = []
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
ERROR = Status(StatusCode.ERROR)
ERROR_TYPE = "error.type"


@dataclass(frozen=True)
class RemoteParent:
    """The caller's span, named by the ``traceparent`` header of an incoming request."""

    trace_id: int
    span_id: int


class TraceRecord:
    """The spans of one trace recorded in this process, waiting for the local root to end.

    A plain class rather than a dataclass: one is made per request, and a hand-written
    ``__init__`` skips the generated one's default-factory machinery.
    """

    __slots__ = ("decided", "failed", "kept", "leaves", "open_leaf", "spans", "trace_id")

    def __init__(self, trace_id: int) -> None:
        self.trace_id = trace_id
        self.spans: list[Recorder] = []
        self.failed = False
        self.decided = False
        self.kept = False
        # Ended leaf spans as rows: name, parent span id, start, end, error.type or None.
        self.leaves: list[tuple[str, int, int, int, str | None]] = []
        self.open_leaf: LeafSpan | None = None  # the leaf span inside which the trace now runs

    def leaf_spans(self) -> list[Recorder]:
        """The ended leaf spans as recorders, for export (taken: the rows are cleared)."""
        rows, self.leaves = self.leaves, []
        spans = []
        for name, parent_id, start, end, kind in rows:
            attributes = {ERROR_TYPE: kind} if kind else None
            span = Recorder(name, SpanKind.INTERNAL, self, parent_id, False, attributes, start, None)
            span.end_time = end
            spans.append(span)
        return spans


class TraceSpan(Protocol):
    """What callers may do with a span (a subset of OpenTelemetry's ``Span``)."""

    def is_recording(self) -> bool: ...
    def set_attribute(self, key: str, value: AttributeValue) -> None: ...
    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None: ...
    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None: ...
    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None: ...
    def end(self, end_time: int | None = None) -> None: ...
    def defer(self, compute: Callable[[Any], Mapping[str, Any]], source: Any) -> None: ...


class NoopSpan:
    """The span handed out while tracing is off: records nothing."""

    __slots__ = ()

    def is_recording(self) -> bool:
        return False

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        pass

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        pass

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        pass

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        pass

    def end(self, end_time: int | None = None) -> None:
        pass

    def defer(self, compute: Callable[[Any], Mapping[str, Any]], source: Any) -> None:
        pass

    def __enter__(self) -> NoopSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class Recorder:
    """A span being recorded: kept in memory until its trace is decided (see `tail.TailSampler`).

    Used in a ``with`` block (`tracing.span`, `tracing.server_span`), a recorder is the current
    span inside the block and ends on exit, failed when an exception escapes. It is its own context
    manager, not wrapped in one, because this runs for every request whether its trace is kept or
    not: one object and one call fewer per span.
    """

    __slots__ = (
        "_on_end",
        "_token",
        "attributes",
        "deferred",
        "end_time",
        "error",
        "events",
        "kind",
        "name",
        "parent_id",
        "parent_remote",
        "span_id",
        "start_time",
        "trace",
    )

    def __init__(
        self,
        name: str,
        kind: SpanKind,
        trace: TraceRecord,
        parent_id: int,
        parent_remote: bool,
        attributes: Mapping[str, Any] | None,
        start_time: int | None,
        on_end: Any,
    ) -> None:
        self.name = name
        self.kind = kind
        self.trace = trace
        self.span_id = getrandbits(64) or 1
        self.parent_id = parent_id
        self.parent_remote = parent_remote
        # A dict is taken over, not copied: callers build a fresh one per span.
        self.attributes: dict[str, Any] = (
            attributes if type(attributes) is dict else dict(attributes) if attributes else {}
        )
        self.events: list[tuple[str, dict[str, Any], int]] = NO_EVENTS  # a list once one is added
        self.error = False
        self.start_time = start_time or time_ns()
        self.end_time = 0
        self.deferred: list[tuple[Callable[[Any], Mapping[str, Any]], Any]] | None = None
        self._on_end = on_end
        self._token: contextvars.Token[Recorder | None] | None = None
        if ERROR_TYPE in self.attributes:
            self._failed()

    @property
    def is_local_root(self) -> bool:
        """True for the first span of the trace in this process."""
        return self.parent_id == 0 or self.parent_remote

    def _failed(self) -> None:
        self.error = True
        self.trace.failed = True

    # -- the span interface (OpenTelemetry's names) ------------------------------------------------
    def get_span_context(self) -> SpanContext:
        return SpanContext(self.trace.trace_id, self.span_id, is_remote=False, trace_flags=SAMPLED)

    def is_recording(self) -> bool:
        return self.end_time == 0

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self.attributes[key] = value
        if key == ERROR_TYPE:
            self._failed()

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        self.attributes.update(attributes)
        if ERROR_TYPE in attributes:
            self._failed()

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        if self.events is NO_EVENTS:
            self.events = []
        self.events.append((name, dict(attributes or {}), timestamp or time_ns()))

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        code = status.status_code if isinstance(status, Status) else status
        if code is StatusCode.ERROR:
            self._failed()

    def end(self, end_time: int | None = None) -> None:
        if self.end_time:
            return
        self.end_time = end_time or time_ns()
        # A child waits with its trace (`tail.TailSampler.started`) and is decided with its local
        # root; only a local root (`is_local_root`, inlined: every span ends here), or a span of a
        # trace decided already, has anything to do here.
        if not self.parent_id or self.parent_remote or self.trace.decided:
            self._on_end(self)

    def defer(self, compute: Callable[[Any], Mapping[str, Any]], source: Any) -> None:
        """Attributes ``compute(source)`` adds, computed only if the trace is kept (`resolve`).

        For facts that cost something to extract (parsing an answer) and never decide sampling.
        """
        if self.deferred is None:
            self.deferred = []
        self.deferred.append((compute, source))

    # -- a ``with`` block: current inside, ended on exit ------------------------------------------
    def __enter__(self) -> Recorder:
        self._token = current_span.set(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        if self._token is not None:
            current_span.reset(self._token)
            self._token = None
        if error is not None:
            self.attributes[ERROR_TYPE] = error_type(error)
            self._failed()
        self.end()

    # -- export -----------------------------------------------------------------------------------
    def resolve(self) -> None:
        """Add the deferred attributes (the trace is kept)."""
        if self.deferred:
            for compute, source in self.deferred:
                self.attributes.update(compute(source))
            self.deferred = None

    def readable(self, resource: Resource) -> ReadableSpan:
        """The finished span as the SDK's exporters take it."""
        trace_id = self.trace.trace_id
        parent = (
            SpanContext(trace_id, self.parent_id, is_remote=self.parent_remote, trace_flags=SAMPLED)
            if self.parent_id
            else None
        )
        return ReadableSpan(
            name=self.name,
            context=SpanContext(trace_id, self.span_id, is_remote=False, trace_flags=SAMPLED),
            parent=parent,
            resource=resource,
            # Validated here, once, as the SDK would have on every set: lists become tuples,
            # values of other types are dropped with a warning.
            attributes=BoundedAttributes(attributes=self.attributes, immutable=True),
            events=[
                Event(name, BoundedAttributes(attributes=attributes, immutable=True), timestamp)
                for name, attributes, timestamp in self.events
            ],
            kind=self.kind,
            status=ERROR if self.error else Status(StatusCode.UNSET),
            start_time=self.start_time,
            end_time=self.end_time,
            instrumentation_scope=SCOPE,
        )


def error_type(error: BaseException) -> str:
    """The ``error.type`` of an exception: its ``code`` value when it has one, else its class name."""
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    if isinstance(error, TimeoutError):
        return "timeout"
    code = getattr(error, "code", None)
    value = getattr(code, "value", code)
    return value if isinstance(value, str) and value else type(error).__name__


class LeafSpan:
    """The span of a step that starts no spans of its own and only ends, maybe failed: a pipeline stage.

    Used in a ``with`` block like a `Recorder`, but it is not made the current span and records
    one row on its trace when it ends: three Python calls (init, enter, exit) where a stage's
    recorder took seven, and every request pays for it, kept or not. The row becomes a recorder
    if the trace is kept
    (`TraceRecord.leaf_spans`). Should a span be started under the leaf's parent while the leaf
    runs (a guardrail's judge model called from its stage), the leaf turns into a recorder first
    (`promote`) and that span goes under it, so the tree is the same as with a recorder.
    """

    __slots__ = ("name", "parent", "promoted", "start_time")

    def __init__(self, parent: Recorder, name: str) -> None:
        self.parent = parent
        self.name = name
        self.promoted: Recorder | None = None
        self.start_time = time_ns()
        parent.trace.open_leaf = self

    def promote(self) -> Recorder:
        """This leaf as a recorder (made once), so spans can be started under it."""
        if self.promoted is None:
            parent = self.parent
            self.promoted = Recorder(
                self.name, SpanKind.INTERNAL, parent.trace, parent.span_id, False, None, self.start_time,
                parent._on_end,
            )  # fmt: skip
        return self.promoted

    def __enter__(self) -> LeafSpan:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        parent = self.parent
        trace = parent.trace
        if trace.open_leaf is self:
            trace.open_leaf = None
        failure = error_type(error) if error is not None else None
        if self.promoted is not None or trace.decided:  # a recorder, or its trace was already decided
            span = self.promote()
            if failure is not None:
                span.set_attribute(ERROR_TYPE, failure)
            span.end()
            return
        if failure is not None:
            trace.failed = True
        trace.leaves.append((self.name, parent.span_id, self.start_time, time_ns(), failure))


#: The span every helper hands out while tracing is off: all its methods are no-ops.
NOOP = NoopSpan()
#: The current span of the running request (None outside any).
current_span: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar(
    "inferflux_current_span", default=None
)


def traceparent(span: Recorder) -> str:
    """The W3C ``traceparent`` header value naming ``span`` (always sampled: the tail decides)."""
    return f"00-{span.trace.trace_id:032x}-{span.span_id:016x}-01"


def parse_traceparent(value: str) -> RemoteParent | None:
    """The parent a ``traceparent`` header names, or None when it is malformed or all zeros."""
    parts = value.strip().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff" or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        trace_id, span_id = int(parts[1], 16), int(parts[2], 16)
        int(parts[0], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    return RemoteParent(trace_id, span_id)
