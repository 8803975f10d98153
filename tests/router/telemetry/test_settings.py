"""Trace settings from the environment: off without an endpoint, clear errors on bad values."""

from __future__ import annotations

import pytest

from inferflux.router.telemetry.settings import TraceSettings, TraceSettingsError


def test_tracing_is_off_without_an_endpoint() -> None:
    settings = TraceSettings.from_env("inferflux-router", {})
    assert not settings.enabled
    assert (settings.sample_ratio, settings.capture_content) == (0.1, False)


def test_the_standard_variables_turn_it_on() -> None:
    settings = TraceSettings.from_env(
        "inferflux-router",
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
            "OTEL_SERVICE_NAME": "edge-router",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
            "INFERFLUX_OTEL_SAMPLE_RATIO": "0.25",
            "INFERFLUX_OTEL_BUFFER_SPANS": "500",
        },
    )
    assert settings.endpoint == "http://collector:4318/v1/traces"
    assert settings.service_name == "edge-router"
    assert settings.capture_content
    assert (settings.sample_ratio, settings.buffer_spans) == (0.25, 500)
    traces_only = TraceSettings.from_env("x", {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/t"})
    assert traces_only.endpoint == "http://c:4318/t"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"INFERFLUX_OTEL_SAMPLE_RATIO": "1.5"}, "INFERFLUX_OTEL_SAMPLE_RATIO"),
        ({"INFERFLUX_OTEL_SAMPLE_RATIO": "most"}, "INFERFLUX_OTEL_SAMPLE_RATIO"),
        ({"INFERFLUX_OTEL_BUFFER_SPANS": "0"}, "INFERFLUX_OTEL_BUFFER_SPANS"),
        ({"INFERFLUX_OTEL_BUFFER_SPANS": "2.5"}, "INFERFLUX_OTEL_BUFFER_SPANS"),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(TraceSettingsError, match=named):
        TraceSettings.from_env("x", environ)
