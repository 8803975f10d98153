"""The runtime's metrics with the real model: queue wait, time per output token, OpenMetrics exemplars."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from .conftest import NO_END_OF_GENERATION, free_port, start_runtime, stop_runtime, wait_for_metric

TRACE_ID = "5bf92f3577b34da6a3ce929d0e0e4736"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


@pytest.fixture(scope="module")
def traced_runtime(model_path: Path) -> Iterator[str]:
    """A runtime that traces every request (export goes to a closed port: failures are only counted)."""
    base, process = start_runtime(
        model_path,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",
        INFERFLUX_OTEL_SAMPLE_RATIO="1.0",
    )
    yield base
    stop_runtime(process)


def test_a_generation_records_its_queue_wait_and_time_per_output_token(runtime_url: str) -> None:
    wait = "inferflux_runtime_queue_wait_seconds_count"
    per_token = "inferflux_runtime_time_per_output_token_seconds_count"
    waits = wait_for_metric(runtime_url, wait, lambda _: True)
    per_tokens = wait_for_metric(runtime_url, per_token, lambda _: True)
    document = {"prompt": "Count to ten:", "max_tokens": 4, "logit_bias": NO_END_OF_GENERATION}
    answer = httpx.post(runtime_url + "/v1/completions", json=document, timeout=60).json()
    assert answer["usage"]["completion_tokens"] == 4
    assert wait_for_metric(runtime_url, wait, lambda value: value > waits) == waits + 1
    assert wait_for_metric(runtime_url, per_token, lambda value: value > per_tokens) == per_tokens + 1


def test_the_request_duration_names_the_callers_trace_in_openmetrics(traced_runtime: str) -> None:
    headers = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
    document = {"prompt": "Hello", "max_tokens": 2}
    response = httpx.post(traced_runtime + "/v1/completions", json=document, headers=headers, timeout=60)
    assert response.status_code == 200
    scraped = httpx.get(traced_runtime + "/metrics", headers={"accept": OPENMETRICS})
    assert scraped.headers["content-type"].startswith("application/openmetrics-text")
    exemplars = [
        sample.exemplar.labels["trace_id"]
        for family in text_string_to_metric_families(scraped.text)
        if family.name == "inferflux_runtime_request_duration_seconds"
        for sample in family.samples
        if sample.exemplar is not None
    ]
    assert exemplars == [TRACE_ID]
    plain = httpx.get(traced_runtime + "/metrics")
    assert plain.headers["content-type"].startswith("text/plain")
    assert TRACE_ID not in plain.text
