"""The runtime's traces and request ids: a request continues the router's trace into the engine.

Each API request gets a server span named ``{gen_ai.operation.name} {model}``, the child of the
caller's span when a ``traceparent`` header names one. When the request ends, the engine's
`Timeline` of its job becomes four child spans with the times the decode thread recorded:
``tokenize``, ``queue_wait`` (submitted until a slot was free), ``prefill`` (slot, batch size at
start and prefix-cache tokens reused as attributes) and ``decode``; time to first token is the
``gen_ai.response.time_to_first_chunk`` attribute and a ``first_token`` event. The decode thread
only stores integers: spans are built on the event loop, after the fact.

The request id is the caller's ``x-request-id`` when it is sane, else a new one; it names the
response (``chatcmpl-<id>``), comes back as ``x-request-id``, and is on every log line and span.
The pipeline, sampling and scrubbing are the router's (`inferflux.router.telemetry`).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from typing import Any

from opentelemetry.trace import SpanKind
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from inferflux.router import telemetry
from inferflux.router.telemetry import genai
from inferflux.router.telemetry.http import REQUEST_ID, record_status, trace_headers
from inferflux.router.telemetry.spans import TraceSpan
from inferflux.router.telemetry.tracing import NOOP, start
from inferflux.runtime.engine import Finish, Job

#: How a runtime names itself as a GenAI provider.
PROVIDER = "inferflux"
MAX_REQUEST_ID = 128


def setup() -> telemetry.Tracing | None:
    """Start tracing when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces endpoint) is set."""
    return telemetry.install(telemetry.TraceSettings.from_env("inferflux-runtime"))


def request_id(headers: Mapping[str, str]) -> str:
    """The caller's ``x-request-id`` when printable ASCII of at most 128 characters, else a new one."""
    given = headers.get("x-request-id", "")
    if given and len(given) <= MAX_REQUEST_ID and given.isascii() and given.isprintable():
        return given
    return secrets.token_hex(12)


class RequestTrace:
    """The spans of one API request; every method is cheap and does nothing when tracing is off."""

    def __init__(self, span: TraceSpan, operation: str, started: int) -> None:
        self.span = span
        self.operation = operation
        self.started = started
        self.job: Job | None = None
        self.tokenize_span: tuple[int, int] | None = None

    @classmethod
    def begin(cls, request: Request, operation: str, model: str, rid: str) -> RequestTrace:
        """The request's server span, continuing the caller's trace."""
        started = time.time_ns()
        if telemetry.current_tracing() is None:
            return cls(NOOP, operation, started)
        parent = telemetry.extract(trace_headers(request.scope))
        attributes = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": PROVIDER,
            "gen_ai.request.model": model,
            "gen_ai.response.model": model,
            REQUEST_ID: rid,
        }
        span = start(genai.span_name(operation, model), SpanKind.SERVER, attributes, parent, started)
        return cls(span, operation, started)

    @property
    def recording(self) -> bool:
        """True when tracing is on for this request."""
        return self.span.is_recording()

    def describe(self, body: Mapping[str, Any], response_id: str) -> None:
        """The request's GenAI parameters and the response id."""
        if self.recording:
            self.span.set_attributes(genai.request_attributes(self.operation, body))
            self.span.set_attribute("gen_ai.response.id", response_id)
            if telemetry.capture_content():
                self.span.set_attribute("gen_ai.input.messages", genai.input_messages(body))

    @contextlib.contextmanager
    def tokenizing(self) -> Iterator[None]:
        """Time the block as the ``tokenize`` span."""
        if not self.recording:
            yield
            return
        begun = time.time_ns()
        yield
        self.tokenize_span = (begun, time.time_ns())

    def watch(self, job: Job) -> Job:
        """``job``'s timeline becomes the request's engine spans when it ends."""
        self.job = job
        return job

    def answered(self, text: str, finish: Finish) -> None:
        """The generated text, recorded only when content capture is on."""
        if self.recording and telemetry.capture_content():
            self.span.set_attribute("gen_ai.output.messages", genai.output_messages(text, finish.reason))

    def end(self, status: int, cancelled: bool = False) -> None:
        """End every span: the engine phases first, then the request's own."""
        if not self.recording:
            return
        now = time.time_ns()
        record_status(self.span, status)
        if self.tokenize_span is not None:
            self._child("tokenize", *self.tokenize_span)
        if self.job is not None:
            self._engine_spans(self.job, now)
        if cancelled:
            telemetry.fail(self.span, "cancelled")
        self.span.end(now)

    def _engine_spans(self, job: Job, now: int) -> None:
        line, finish = job.timeline, job.finish
        if finish is not None:
            self.span.set_attributes(
                {
                    "gen_ai.response.finish_reasons": [finish.reason],
                    "gen_ai.usage.input_tokens": finish.prompt_tokens,
                    "gen_ai.usage.output_tokens": finish.completion_tokens,
                    "gen_ai.usage.cache_read.input_tokens": finish.cached_tokens,
                }
            )
            if finish.reason in ("error", "cancelled"):
                telemetry.fail(self.span, finish.reason)
        if not line.submitted:
            return
        finished = line.finished or now
        self._child("queue_wait", line.submitted, line.admitted or finished)
        if not line.admitted:
            return
        self._child(
            "prefill",
            line.admitted,
            line.first_token or finished,
            {
                "inferflux.slot": line.slot,
                "inferflux.batch_size_at_start": line.batch_at_start,
                "gen_ai.usage.cache_read.input_tokens": line.reused,
                "gen_ai.usage.input_tokens": len(job.prompt),
            },
        )
        if line.first_token:
            self.span.set_attribute(
                "gen_ai.response.time_to_first_chunk", (line.first_token - self.started) / 1e9
            )
            self.span.add_event("first_token", timestamp=line.first_token)
            attributes = {"gen_ai.usage.output_tokens": finish.completion_tokens} if finish else {}
            self._child("decode", line.first_token, finished, attributes)

    def _child(self, name: str, begun: int, ended: int, attributes: Mapping[str, Any] | None = None) -> None:
        child = start(name, SpanKind.INTERNAL, attributes, self.span, begun)
        child.end(max(begun, ended))

    def finish_with(self, response: Response) -> Response:
        """End the trace when ``response`` is sent: now, or after a streamed body's last chunk."""
        if not self.recording:
            return response
        if isinstance(response, StreamingResponse):
            response.body_iterator = self._until_sent(response.body_iterator, response.status_code)
        else:
            self.end(response.status_code)
        return response

    async def _until_sent(self, body: AsyncIterable[Any], status: int) -> AsyncIterator[Any]:
        done = False
        try:
            async for chunk in body:
                yield chunk
            done = True
        finally:
            self.end(status, cancelled=not done)
