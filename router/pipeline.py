"""The request path as stages: what every inference request passes between parsing and relaying.

A front door (the OpenAI routes, the provider chain, Anthropic's ``/v1/messages``) parses a request
into a `Call` and hands it to the `Pipeline`:

- ``admit`` runs each `Stage`'s ``admit`` in order (rate limits and budget reservation, guardrails
  on input, ...). A stage refuses by raising `UpstreamError`, and may rewrite the request through
  `Call.replace_document` (a redaction), which is then what goes upstream.
- the front door dispatches and relays, filling in the outcome: status, usage, upstream, error.
  Streamed output passes through each stage's `OutputFilter` (guardrails on output).
- ``finish`` runs, exactly once and whatever happened (success, upstream error, refusal by a later
  stage, client gone), the ``finish`` of every stage whose ``admit`` ran, in reverse order:
  settlement, then the audit record. Front doors call it **before** the response's last byte goes
  out, so that a client that saw a complete answer is also one whose request was settled and
  recorded.

A pipeline with no stages costs a loop over nothing per request, which is what "cheap when off"
means here: a stage that is off is simply not in the list.

Observers (`Pipeline.observe`) are told about every finished call after the stages, refused ones
included: plain synchronous callbacks with no span of their own, for bookkeeping that neither
refuses nor changes anything (the admin console's recent requests, router/recent_requests.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from inferflux.router.errors import UpstreamError
from inferflux.router.identity.principal import Principal
from inferflux.router.telemetry.spans import NOOP, LeafSpan, current_span

log = logging.getLogger("inferflux.router.pipeline")

Header = tuple[bytes, bytes]


@dataclass(slots=True)
class Usage:
    """Tokens a request used, as the upstream reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @classmethod
    def from_openai(cls, usage: Any) -> Usage | None:
        """OpenAI's ``usage`` object (``prompt_tokens``, ``completion_tokens``, cached details)."""
        if not isinstance(usage, dict):
            return None
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens", 0)
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return None
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens", 0) if isinstance(details, dict) else 0
        return cls(max(prompt, 0), max(completion, 0), cached if isinstance(cached, int) else 0)

    @property
    def total(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True, eq=False)
class Call:
    """One inference request on its way through the stages.

    ``route`` is the front door's label (chat, completions, embeddings, messages). ``body`` is what
    goes upstream: the client's bytes, or the re-encoded ``document`` once a stage replaced it.
    ``headers`` are added to the response, whatever its status (rate-limit headers, receipts).
    ``notes`` is where a stage keeps its own state between ``admit`` and ``finish``.
    """

    request_id: str
    route: str
    model: str
    document: dict[str, Any]
    body: bytes
    principal: Principal | None = None
    stream: bool = False
    started: float = field(default_factory=time.perf_counter)
    status: int = 0
    usage: Usage | None = None
    upstream: str = ""
    error: str = ""
    headers: list[Header] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    admitted: int = 0  # how many stages' admit ran

    @property
    def tenant(self) -> str | None:
        """The caller's tenant; None when authentication is off."""
        return self.principal.tenant if self.principal is not None else None

    @property
    def key_id(self) -> str | None:
        """The API key id the caller used, when it used one."""
        principal = self.principal
        return principal.subject if principal is not None and principal.kind == "api_key" else None

    def replace_document(self, document: dict[str, Any]) -> None:
        """Send ``document`` upstream instead of the client's bytes."""
        self.document = document
        self.body = orjson.dumps(document)

    def fail(self, error: UpstreamError) -> None:
        """Record that the request ended with ``error`` (before ``finish`` runs)."""
        self.status = error.status
        self.error = error.code.value


class OutputFilter(Protocol):
    """Sees a response's bytes on their way to the client and may change them.

    ``feed`` takes a relayed chunk (SSE bytes for a stream) and returns what to send now (possibly
    less, held back, or more, released); ``close`` returns whatever is still held at the end. A
    filter that must stop the answer raises `UpstreamError`; the relay then ends the stream with an
    error event.
    """

    def feed(self, chunk: bytes) -> bytes: ...

    def close(self) -> bytes: ...


class Stage(Protocol):
    """One step of the request path."""

    name: str

    async def admit(self, call: Call) -> None:
        """Let the request through, rewrite it, or refuse it by raising `UpstreamError`."""

    async def finish(self, call: Call) -> None:
        """Account for the outcome; runs once for every admitted call. Must not raise."""

    def output(self, call: Call) -> OutputFilter | None:
        """A filter for this call's response, or None."""


class Pipeline:
    """Stages in order; ``admit`` walks forward, ``finish`` walks back over the ones that admitted."""

    def __init__(self, stages: Sequence[Stage] = ()) -> None:
        self.stages = tuple(stages)
        self.observers: tuple[Callable[[Call], None], ...] = ()

    def observe(self, observer: Callable[[Call], None]) -> None:
        """Call ``observer`` with every call once it is finished (wiring, before the router serves)."""
        self.observers = (*self.observers, observer)

    def extend(self, stages: Sequence[Stage]) -> None:
        """Add ``stages`` after the present ones (wiring, before the router serves)."""
        self.stages = (*self.stages, *stages)

    async def admit(self, call: Call) -> None:
        """Run every stage's ``admit``; on a refusal, finish the ones that admitted and re-raise.

        Each stage's admission is a span under the request's span when tracing is on (none while
        it is off, or outside a traced request).
        """
        parent = current_span.get()
        for stage in self.stages:
            try:
                with NOOP if parent is None else LeafSpan(parent, stage.name):
                    await stage.admit(call)
            except UpstreamError as error:
                call.fail(error)
                await self.finish(call)
                raise
            call.admitted += 1

    async def finish(self, call: Call) -> None:
        """Run ``finish`` of the admitted stages in reverse order, once per call."""
        if call.finished:
            return
        call.finished = True
        for stage in reversed(self.stages[: call.admitted]):
            try:
                await stage.finish(call)
            except Exception:  # one stage's failure must not skip the audit record after it
                log.exception("stage %s failed to finish request %s", stage.name, call.request_id)
        for observer in self.observers:
            try:
                observer(call)
            except Exception:
                log.exception("an observer failed on request %s", call.request_id)

    def outputs(self, call: Call) -> list[OutputFilter]:
        """The output filters of the stages that admitted ``call``, in stage order."""
        found = (stage.output(call) for stage in self.stages[: call.admitted])
        return [item for item in found if item is not None]


def filtered(filters: Sequence[OutputFilter], chunk: bytes) -> bytes:
    """``chunk`` after every filter, in order."""
    for item in filters:
        chunk = item.feed(chunk)
    return chunk


def drained(filters: Sequence[OutputFilter]) -> bytes:
    """What the filters still hold at the end of a response, passed through the filters after each."""
    tail = b""
    for item in filters:
        if tail:
            tail = item.feed(tail)
        tail += item.close()
    return tail
