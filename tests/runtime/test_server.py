"""The runtime over HTTP with the real model: OpenAI SDK, streaming, errors, cancellation, metrics."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from .conftest import NO_END_OF_GENERATION, metric, wait_for_metric

pytestmark = pytest.mark.slow


@pytest.fixture
def client(runtime_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=runtime_url + "/v1", api_key="unused")


def test_sdk_chat_completion(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="gemma3-270m",
        max_tokens=12,
        temperature=0,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    assert reply.model == "gemma3-270m"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage is not None
    assert 0 < reply.usage.completion_tokens <= 12


def test_sdk_completion_is_deterministic_and_sensible(client: openai.OpenAI) -> None:
    first = client.completions.create(
        model="gemma3-270m", prompt="The capital of France is", max_tokens=8, temperature=0
    )
    second = client.completions.create(
        model="gemma3-270m", prompt="The capital of France is", max_tokens=8, temperature=0
    )
    assert "Paris" in first.choices[0].text or "capital" in first.choices[0].text
    assert first.choices[0].text == second.choices[0].text
    assert second.usage is not None
    assert second.usage.prompt_tokens_details is not None
    assert second.usage.prompt_tokens_details.cached_tokens > 0  # the prefix was reused


def test_sdk_streaming_chat_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gemma3-270m",
            max_tokens=16,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "Count from one to five."}],
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert text
    assert finishes in (["stop"], ["length"])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens <= 16


def test_sdk_streaming_completion_matches_non_streaming(client: openai.OpenAI) -> None:
    prompt = "Once upon a time"
    whole = client.completions.create(model="gemma3-270m", prompt=prompt, max_tokens=20, temperature=0)
    parts = client.completions.create(
        model="gemma3-270m", prompt=prompt, max_tokens=20, temperature=0, stream=True
    )
    assert "".join(c.choices[0].text for c in parts) == whole.choices[0].text


def test_stop_string_ends_generation(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model="gemma3-270m", prompt="1, 2, 3, 4,", max_tokens=30, temperature=0, stop=[" 7"]
    )
    assert " 7" not in reply.choices[0].text
    assert reply.choices[0].finish_reason == "stop"


async def test_concurrent_streams_all_complete(runtime_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=runtime_url + "/v1", api_key="unused")

    async def one(i: int) -> int:
        reply = await client.completions.create(
            model="gemma3-270m",
            prompt=f"Story {i}: the dragon",
            max_tokens=24,
            temperature=0.7,
            logit_bias=NO_END_OF_GENERATION,
        )
        assert reply.usage is not None
        return reply.usage.completion_tokens

    assert await asyncio.gather(*(one(i) for i in range(6))) == [24] * 6


def test_embeddings_are_unit_vectors(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="gemma3-270m", input=["a cat", "a cat", "quantum chromodynamics"])
    vectors = [d.embedding for d in result.data]
    assert len(vectors[0]) == 640
    assert abs(sum(v * v for v in vectors[0]) - 1) < 1e-3
    same = sum(a * b for a, b in zip(vectors[0], vectors[1], strict=True))
    other = sum(a * b for a, b in zip(vectors[0], vectors[2], strict=True))
    assert same > 0.999 > other


def test_models_lists_the_served_name(runtime_url: str) -> None:
    body = httpx.get(runtime_url + "/v1/models").json()
    assert [m["id"] for m in body["data"]] == ["gemma3-270m"]


@pytest.mark.parametrize(
    ("path", "payload", "param"),
    [
        ("/v1/chat/completions", {"messages": "hi"}, "messages"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "x"}], "temperature": 9},
            "temperature",
        ),
        ("/v1/completions", {"prompt": "x", "max_tokens": 0}, "max_tokens"),
        ("/v1/completions", {"prompt": "x", "response_format": {"type": "yaml"}}, "response_format"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]},
            "tools",
        ),
    ],
)
def test_bad_requests_get_openai_errors(
    runtime_url: str, path: str, payload: dict[str, object], param: str
) -> None:
    response = httpx.post(runtime_url + path, json=payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


def test_invalid_json_and_long_prompt(runtime_url: str) -> None:
    assert httpx.post(runtime_url + "/v1/completions", content=b"{nope").status_code == 400
    response = httpx.post(runtime_url + "/v1/completions", json={"prompt": "word " * 3000})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_an_empty_prompt_is_a_400_not_a_hang(chat_runtime_url: str) -> None:
    # SmolLM2 adds no BOS token: "" tokenizes to nothing, and a job without a token never ran.
    response = httpx.post(
        chat_runtime_url + "/v1/completions", json={"prompt": "", "max_tokens": 4}, timeout=30
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("prompt", "bad_request")
    assert "empty" in error["message"]


def test_disconnected_stream_stops_generating(runtime_url: str) -> None:
    cancelled = 'inferflux_runtime_sequences_finished_total{reason="cancelled"}'
    before = metric(runtime_url, cancelled, missing=0.0)  # not exported before the first cancellation
    payload = {
        "prompt": "Tell me a very long story.",
        "max_tokens": 1500,
        "stream": True,
        "logit_bias": NO_END_OF_GENERATION,
    }
    with httpx.stream("POST", runtime_url + "/v1/completions", json=payload) as response:
        lines = response.iter_lines()
        received = [line for _, line in zip(range(6), lines, strict=False)]
    assert any(line.startswith("data: ") for line in received)
    assert wait_for_metric(runtime_url, cancelled, lambda value: value > before) == before + 1
    running = "inferflux_runtime_running_sequences"
    assert wait_for_metric(runtime_url, running, lambda value: value == 0) == 0
    generated = metric(runtime_url, "inferflux_runtime_generation_tokens_total")
    time.sleep(1.0)  # a job that was not stopped would go on generating meanwhile
    assert metric(runtime_url, "inferflux_runtime_generation_tokens_total") == generated


def test_metrics_exported(runtime_url: str) -> None:
    for _ in range(2):  # the second reuses the first's prefix, whichever tests ran before
        httpx.post(runtime_url + "/v1/completions", json={"prompt": "Metrics, twice", "max_tokens": 1})
    text = httpx.get(runtime_url + "/metrics").text
    for name in (
        "requests_total",
        "time_to_first_token_seconds_bucket",
        "inter_token_latency_seconds_bucket",
        "queue_depth",
        "running_sequences",
        "kv_cache_usage_ratio",
        "prefix_cache_hit_ratio",
        "prompt_tokens_total",
        "generation_tokens_total",
        "decode_step_sequences_bucket",
    ):
        assert f"inferflux_runtime_{name}" in text
    assert metric(runtime_url, "inferflux_runtime_prefix_cache_hit_ratio") > 0


def test_health_endpoints(runtime_url: str) -> None:
    for path in ("/healthz", "/livez", "/readyz"):
        assert httpx.get(runtime_url + path).status_code == 200
