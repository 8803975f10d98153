"""GenAI semantic-convention attributes (OpenTelemetry semconv, ``gen_ai.*``), from OpenAI-shaped JSON.

Names follow the current (development-status) GenAI conventions: an inference span is named
``{gen_ai.operation.name} {gen_ai.request.model}``; ``gen_ai.provider.name`` replaced the older
``gen_ai.system``. Only numbers, names and ids are read here; message text is recorded only by
`input_messages` / `output_messages`, which callers use only when content capture is on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

from inferflux.router.telemetry import tracing
from inferflux.router.telemetry.spans import TraceSpan

#: The router's route labels and the runtime's endpoints, as GenAI operation names.
OPERATIONS = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings"}


def span_name(operation: str, model: str) -> str:
    """``{gen_ai.operation.name} {gen_ai.request.model}``."""
    return f"{operation} {model}"


def request_attributes(operation: str, document: Mapping[str, Any]) -> dict[str, Any]:
    """The ``gen_ai.request.*`` attributes of an OpenAI-shaped request document."""
    attributes: dict[str, Any] = {"gen_ai.operation.name": operation}
    model = document.get("model")
    if isinstance(model, str):
        attributes["gen_ai.request.model"] = model
    max_tokens = document.get("max_completion_tokens", document.get("max_tokens"))
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        attributes["gen_ai.request.max_tokens"] = max_tokens
    temperature = document.get("temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool):
        attributes["gen_ai.request.temperature"] = float(temperature)
    if operation != "embeddings":
        attributes["gen_ai.request.stream"] = document.get("stream") is True
    return attributes


def usage_attributes(usage: Mapping[str, Any]) -> dict[str, int]:
    """``gen_ai.usage.*`` from an OpenAI ``usage`` object (cached prompt tokens included)."""
    attributes: dict[str, int] = {}
    for source, name in (
        ("prompt_tokens", "gen_ai.usage.input_tokens"),
        ("completion_tokens", "gen_ai.usage.output_tokens"),
    ):
        value = usage.get(source)
        if isinstance(value, int):
            attributes[name] = value
    details = usage.get("prompt_tokens_details")
    if isinstance(details, Mapping) and isinstance(details.get("cached_tokens"), int):
        attributes["gen_ai.usage.cache_read.input_tokens"] = details["cached_tokens"]
    return attributes


def response_attributes(document: Mapping[str, Any]) -> dict[str, Any]:
    """``gen_ai.response.*`` and usage from an OpenAI-shaped response (or final stream chunk)."""
    attributes: dict[str, Any] = {}
    if isinstance(document.get("id"), str):
        attributes["gen_ai.response.id"] = document["id"]
    if isinstance(document.get("model"), str):
        attributes["gen_ai.response.model"] = document["model"]
    choices = document.get("choices")
    if isinstance(choices, list):
        reasons = [
            choice["finish_reason"]
            for choice in choices
            if isinstance(choice, dict) and isinstance(choice.get("finish_reason"), str)
        ]
        if reasons:
            attributes["gen_ai.response.finish_reasons"] = reasons
    usage = document.get("usage")
    if isinstance(usage, Mapping):
        attributes.update(usage_attributes(usage))
    return attributes


def input_messages(document: Mapping[str, Any]) -> str:
    """``gen_ai.input.messages``: the request's messages (or prompt) as JSON. Content: capture only."""
    messages = document.get("messages")
    if messages is None:
        messages = [{"role": "user", "content": document.get("prompt", document.get("input"))}]
    return orjson.dumps(messages).decode()


def output_messages(text: str, finish_reason: str) -> str:
    """``gen_ai.output.messages``: one assistant message as JSON. Content: capture only."""
    return orjson.dumps([{"role": "assistant", "content": text, "finish_reason": finish_reason}]).decode()


class TracedRequest(NamedTuple):
    """A routed request, for the GenAI attributes of its upstream spans (computed if kept).

    A named tuple: one is made for every request while tracing is on, and a tuple is the cheapest
    immutable record to build.
    """

    operation: str
    document: Mapping[str, Any]


def traced_request(operation_label: str, document: Mapping[str, Any]) -> TracedRequest | None:
    """The request to describe on upstream spans (None while tracing is off).

    ``operation_label`` is the router's route label (chat, completions, embeddings).
    """
    if tracing.current_tracing() is None:
        return None
    return TracedRequest(OPERATIONS.get(operation_label, operation_label), document)


def described_request(request: TracedRequest) -> dict[str, Any]:
    """The request attributes; the messages only when content capture is on."""
    attributes = request_attributes(request.operation, request.document)
    if tracing.capture_content():
        attributes["gen_ai.input.messages"] = input_messages(request.document)
    return attributes


def described_answer(payload: bytes) -> dict[str, Any]:
    """The response facts of a complete OpenAI-shaped answer; its text only when capture is on."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(document, dict):
        return {}
    attributes = response_attributes(document)
    if tracing.capture_content():
        texts = [
            str((choice.get("message") or {}).get("content") or choice.get("text") or "")
            for choice in document.get("choices") or []
            if isinstance(choice, dict)
        ]
        reasons = attributes.get("gen_ai.response.finish_reasons") or [""]
        attributes["gen_ai.output.messages"] = output_messages("".join(texts), reasons[0])
    return attributes


def record_answer(span: TraceSpan, payload: bytes) -> None:
    """A complete answer's facts on ``span``, parsed only if the trace is kept."""
    span.defer(described_answer, payload)


def record_usage(span: TraceSpan, usage: Mapping[str, Any]) -> None:
    """Token usage (from a stream's final chunk) on ``span``."""
    span.defer(usage_attributes, usage)
