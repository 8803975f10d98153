"""The content scrubber: drops prompt and completion text before export.

GenAI instrumentation may record what users said and what the model answered
(``gen_ai.input.messages``, ``gen_ai.output.messages``, ``gen_ai.system_instructions`` and the
older ``gen_ai.prompt`` / ``gen_ai.completion``), as attributes or as events. Unless content
capture is explicitly on (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``), every such
attribute, every attribute whose name mentions content, and every content-named event are dropped
here (`scrub`, called by the tail sampler on every kept span), whoever set them, before any span
reaches the exporter. There is no PII filter to run over
captured content yet: with capture on, content is exported as recorded.
"""

from __future__ import annotations

from inferflux.router.telemetry.spans import Recorder

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


#: Attribute names seen not to carry content: a kept span whose names are all here is checked
#: with one set comparison. Bounded: names come from code, but nothing stops a caller inventing many.
_SAFE_NAMES: set[str] = set()
_SAFE_NAMES_LIMIT = 4096


def scrub(span: Recorder) -> None:
    """Remove every content-carrying attribute and event from an ended span, in place."""
    if span.attributes.keys() <= _SAFE_NAMES and not span.events:
        return
    if len(_SAFE_NAMES) < _SAFE_NAMES_LIMIT:
        _SAFE_NAMES.update(name for name in span.attributes if not carries_content(name))
    if any(carries_content(name) for name in span.attributes):
        span.attributes = {
            name: value for name, value in span.attributes.items() if not carries_content(name)
        }
    if span.events:
        span.events = [
            (name, {key: value for key, value in attributes.items() if not carries_content(key)}, timestamp)
            for name, attributes, timestamp in span.events
            if name not in CONTENT_EVENTS
        ]
