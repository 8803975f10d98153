"""The content scrubber: a span processor that drops prompt and completion text before export.

GenAI instrumentation may record what users said and what the model answered
(``gen_ai.input.messages``, ``gen_ai.output.messages``, ``gen_ai.system_instructions`` and the
older ``gen_ai.prompt`` / ``gen_ai.completion``), as attributes or as events. Unless content
capture is explicitly on (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``), every such
attribute, every attribute whose name mentions content, and every content-named event are dropped
here, whoever set them, before any span reaches the exporter. There is no PII filter to run over
captured content yet: with capture on, content is exported as recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor

#: Attributes that carry text a user or a model wrote (the GenAI conventions' opt-in content).
CONTENT_ATTRIBUTES = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.tool.definitions",
        "gen_ai.retrieval.query.text",
        "gen_ai.retrieval.documents",
    }
)
#: Events whose whole point is content (older GenAI conventions and the operation-details event).
CONTENT_EVENTS = frozenset(
    {
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
        "gen_ai.client.inference.operation.details",
        "gen_ai.user.message",
        "gen_ai.system.message",
        "gen_ai.assistant.message",
        "gen_ai.tool.message",
        "gen_ai.choice",
    }
)


def carries_content(name: str) -> bool:
    """True for an attribute name that may hold prompt or completion text."""
    return name in CONTENT_ATTRIBUTES or "content" in name or name.endswith(".messages")


def scrubbed_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``attributes`` without the content-carrying ones (None when nothing had to go)."""
    if not attributes or not any(carries_content(name) for name in attributes):
        return None
    return {name: value for name, value in attributes.items() if not carries_content(name)}


def scrubbed(span: ReadableSpan) -> ReadableSpan:
    """``span`` itself when it carries no content, else a copy without it."""
    attributes = scrubbed_attributes(span.attributes)
    events_dirty = any(
        event.name in CONTENT_EVENTS or scrubbed_attributes(event.attributes) is not None
        for event in span.events
    )
    if attributes is None and not events_dirty:
        return span
    events = [
        Event(event.name, _clean(event.attributes), event.timestamp)
        for event in span.events
        if event.name not in CONTENT_EVENTS
    ]
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_clean(span.attributes),
        events=events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _clean(attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    kept = scrubbed_attributes(attributes)
    return attributes if kept is None else kept


class Scrubber(SpanProcessor):
    """Passes ended spans to ``downstream``, without their content unless ``capture`` is on."""

    def __init__(self, downstream: SpanProcessor, capture: bool = False) -> None:
        self.downstream = downstream
        self.capture = capture

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.downstream.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self.downstream.on_end(span if self.capture else scrubbed(span))

    def shutdown(self) -> None:
        self.downstream.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.downstream.force_flush(timeout_millis)
