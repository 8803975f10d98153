"""The scrubber drops content-carrying attributes and events before export, unless capture is on."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from inferflux.router import telemetry
from inferflux.router.telemetry.scrub import carries_content
from inferflux.router.telemetry.tracing import start

CANARY = "canary-7f3a9 the secret prompt"


def _export(capture: bool) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    telemetry.install(telemetry.TraceSettings(sample_ratio=1.0, capture_content=capture), exporter=exporter)
    try:
        span = start(
            "chat m",
            attributes={
                "gen_ai.request.model": "m",
                "gen_ai.input.messages": f'[{{"role":"user","content":"{CANARY}"}}]',
                "gen_ai.system_instructions": CANARY,
                "app.prompt_content": CANARY,
                "gen_ai.usage.input_tokens": 7,
            },
        )
        span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": CANARY})
        span.add_event("first_token", {"note.content": CANARY, "position": 1})
        span.end()
    finally:
        telemetry.uninstall()
    return exporter


def test_content_is_dropped_and_the_rest_kept() -> None:
    (span,) = _export(capture=False).get_finished_spans()
    assert CANARY not in repr(span.to_json())
    assert span.attributes == {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 7}
    assert [event.name for event in span.events] == ["first_token"]
    assert dict(span.events[0].attributes or {}) == {"position": 1}


def test_capture_keeps_the_content() -> None:
    (span,) = _export(capture=True).get_finished_spans()
    assert span.attributes is not None
    assert CANARY in str(span.attributes["gen_ai.system_instructions"])
    assert [event.name for event in span.events] == ["gen_ai.content.prompt", "first_token"]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("gen_ai.input.messages", True),
        ("gen_ai.output.messages", True),
        ("gen_ai.prompt", True),
        ("gen_ai.completion", True),
        ("gen_ai.tool.call.arguments", True),
        ("message_content", True),
        ("gen_ai.request.model", False),
        ("gen_ai.usage.output_tokens", False),
        ("gen_ai.prompt.name", False),
        ("inferflux.request_id", False),
    ],
)
def test_which_names_carry_content(name: str, content: bool) -> None:
    assert carries_content(name) is content


def test_names_seen_safe_do_not_let_a_new_content_name_through() -> None:
    exporter = InMemorySpanExporter()
    telemetry.install(telemetry.TraceSettings(sample_ratio=1.0), exporter=exporter)
    try:
        for attributes in (
            {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 7},  # every name safe: remembered
            {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 7, "gen_ai.output.messages": CANARY},
        ):
            start("chat m", attributes=attributes).end()
    finally:
        telemetry.uninstall()
    first, second = exporter.get_finished_spans()
    assert dict(first.attributes) == {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 7}
    assert dict(second.attributes) == {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 7}
