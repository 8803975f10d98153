"""Fallback chains end to end: real SDKs and adapters, fake providers, a fake OpenAI-wire runtime."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from chain_tables import Start, local, make_chain, provider, three_links
from fake_common import Fault, drain, failure

from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.providers import FallbackChain, LocalSecrets
from inferflux.router.providers.backoff import Backoff

HELLO = {"messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
async def trio(start_fake: Start) -> tuple[Any, Any, Any]:
    """Provider A (OpenAI wire), provider B (Groq, OpenAI wire) and a local runtime (OpenAI wire)."""
    a, b, runtime = await start_fake("openai"), await start_fake("openai"), await start_fake("openai")
    runtime.key = None  # runtime pods take no key
    return a, b, runtime


def chain_for(trio: tuple[Any, Any, Any], **settings: Any) -> FallbackChain:
    a, b, runtime = trio
    return three_links(a, b, runtime.url, **settings)


RATE_LIMIT = Fault(
    429,
    {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}},
    {"retry-after": "30"},
)


async def test_429_then_timeout_falls_through_to_the_local_runtime(trio: Any, metric: Any) -> None:
    a, b, runtime = trio
    a.faults.append(RATE_LIMIT)
    b.faults.append(Fault(hang_seconds=5))
    before = {
        "rl": metric(
            "inferflux_router_fallbacks_total", from_model="primary", to_model="second", code="rate_limited"
        ),
        "to": metric(
            "inferflux_router_fallbacks_total", from_model="second", to_model="local", code="timeout"
        ),
        "ok": metric(
            "inferflux_router_provider_requests_total",
            provider="runtime",
            upstream=f"runtime:{runtime.url}/v1:local",
            code="ok",
        ),
    }
    started = time.monotonic()
    served = await chain_for(trio).chat({"model": "primary", **HELLO})
    elapsed = time.monotonic() - started
    assert served.model == "local"
    assert served.body["model"] == "local"
    assert served.body["choices"][0]["message"]["content"] == "echo: hello"
    # B's 0.5 s timeout cut its 5 s hang, A's 30 s retry-after was not waited for (slack for a busy CI)
    assert 0.5 <= elapsed < 3.0
    assert (len(a.requests), len(b.requests), len(runtime.requests)) == (1, 1, 1)
    assert runtime.requests[0][1]["model"] == "local"
    assert (
        metric(
            "inferflux_router_fallbacks_total", from_model="primary", to_model="second", code="rate_limited"
        )
        == before["rl"] + 1
    )
    assert (
        metric("inferflux_router_fallbacks_total", from_model="second", to_model="local", code="timeout")
        == before["to"] + 1
    )
    assert (
        metric(
            "inferflux_router_provider_requests_total",
            provider="runtime",
            upstream=f"runtime:{runtime.url}/v1:local",
            code="ok",
        )
        == before["ok"] + 1
    )


async def test_a_bad_request_does_not_fall_through(trio: Any) -> None:
    a, b, runtime = trio
    a.faults.append(Fault(400, {"error": {"message": "bad", "type": "invalid_request_error", "code": None}}))
    raised = await failure(chain_for(trio).chat({"model": "primary", **HELLO}))
    assert raised.code is ErrorCode.BAD_REQUEST
    assert raised.body()["error"]["type"] == "invalid_request_error"
    assert (len(b.requests), len(runtime.requests)) == (0, 0)


async def test_every_link_failing_raises_the_last_error(trio: Any) -> None:
    a, b, runtime = trio
    a.faults.append(RATE_LIMIT)
    b.faults.extend([Fault(503, {"error": {"message": "down", "type": "server_error", "code": None}})] * 3)
    runtime.faults.append(Fault(500, {"error": {"message": "boom", "type": "server_error", "code": None}}))
    raised = await failure(chain_for(trio).chat({"model": "primary", **HELLO}))
    assert raised.code is ErrorCode.UPSTREAM_ERROR
    assert raised.status == 502
    assert len(b.requests) == 3  # Groq's policy: two retries of an unavailable upstream


async def test_unknown_model_is_not_found(trio: Any) -> None:
    raised = await failure(chain_for(trio).chat({"model": "nope", **HELLO}))
    assert raised.code is ErrorCode.NOT_FOUND
    assert raised.status == 404


async def test_missing_key_falls_through_without_calling_the_provider(trio: Any) -> None:
    a, _, _runtime = trio
    chain = chain_for(trio)
    chain.pool.secrets = LocalSecrets({})
    served = await chain.chat({"model": "primary", **HELLO})
    assert served.model == "local"
    assert a.requests == []


async def test_short_retry_after_is_honoured_on_the_same_upstream(trio: Any) -> None:
    a, b, _ = trio
    a.faults.append(
        Fault(429, {"error": {"message": "wait", "type": "tokens", "code": None}}, {"retry-after-ms": "300"})
    )
    started = time.monotonic()
    served = await chain_for(trio).chat({"model": "primary", **HELLO})
    assert served.model == "primary"
    assert time.monotonic() - started >= 0.3
    assert len(a.requests) == 2
    assert b.requests == []


async def test_groq_waits_out_retry_after_strictly_and_then_holds(trio: Any) -> None:
    _a, b, _runtime = trio
    chain = chain_for(trio)
    b.faults.append(
        Fault(429, {"error": {"message": "wait", "type": "tokens", "code": None}}, {"retry-after": "1"})
    )
    started = time.monotonic()
    served = await chain.chat({"model": "second", **HELLO})
    assert served.model == "second"
    headers, sent = b.requests[-1]
    assert sent["model"] == "groq-model"  # the id comes from the route, never from code
    assert headers["Authorization"] == f"Bearer {b.key}"
    assert time.monotonic() - started >= 1.0  # never earlier than retry-after, even with jitter
    b.faults.append(RATE_LIMIT)
    raised = await failure(
        chain.chat({"model": "second", **HELLO})
    )  # 30 s is beyond the wait budget: answered at once
    assert raised.code is ErrorCode.RATE_LIMITED
    calls = len(b.requests)
    with pytest.raises(UpstreamError):  # held for retry-after: not even called
        await chain.chat({"model": "second", **HELLO})
    assert len(b.requests) == calls


async def test_breaker_skips_after_n_failures_and_one_probe_closes_it(trio: Any, metric: Any) -> None:
    a, _, _runtime = trio
    chain = chain_for(trio, breaker_threshold=2, breaker_cooldown_seconds=0.5)
    a.faults.extend([Fault(500, {"error": {"message": "x", "type": "server_error"}})] * 2)
    upstream = f"openai:{a.url}/v1:openai-model"
    for _ in range(2):
        assert (await chain.chat({"model": "primary", **HELLO})).model == "second"
    assert metric("inferflux_router_breaker_state", upstream=upstream) == 2
    skips = metric("inferflux_router_breaker_skips_total", upstream=upstream)
    assert (await chain.chat({"model": "primary", **HELLO})).model == "second"
    assert len(a.requests) == 2  # skipped, not called
    assert metric("inferflux_router_breaker_skips_total", upstream=upstream) == skips + 1
    await asyncio.sleep(0.55)
    assert (await chain.chat({"model": "primary", **HELLO})).model == "primary"  # the probe
    assert len(a.requests) == 3
    assert metric("inferflux_router_breaker_state", upstream=upstream) == 0


async def test_a_failed_probe_opens_the_breaker_again(trio: Any) -> None:
    a, _, _ = trio
    chain = chain_for(trio, breaker_threshold=1, breaker_cooldown_seconds=0.3)
    a.faults.extend([Fault(500, {"error": {"message": "x", "type": "server_error"}})] * 2)
    await chain.chat({"model": "primary", **HELLO})
    await asyncio.sleep(0.35)
    assert (await chain.chat({"model": "primary", **HELLO})).model == "second"  # probe failed
    assert (await chain.chat({"model": "primary", **HELLO})).model == "second"  # open again: skipped
    assert len(a.requests) == 2


async def test_stream_falls_through_before_the_first_chunk(trio: Any) -> None:
    a, b, _runtime = trio
    a.faults.append(RATE_LIMIT)
    b.faults.append(Fault(hang_seconds=5))
    chain = chain_for(trio)
    stream = await chain.open_stream({"model": "primary", **HELLO})
    assert stream.model == "local"
    chunks = [chunk async for chunk in stream]
    assert {chunk["model"] for chunk in chunks} == {"local"}
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "echo:hello"
    again = [chunk async for chunk in chain.chat_stream({"model": "primary", **HELLO})]
    assert {chunk["model"] for chunk in again} == {"primary"}  # A has recovered


async def test_stream_never_falls_through_after_the_first_chunk(trio: Any, metric: Any) -> None:
    a, b, runtime = trio
    a.faults.append(Fault(break_stream_after=2))
    errors = metric("inferflux_router_provider_errors_total", provider="openai", code="upstream_error")
    stream = await chain_for(trio).open_stream({"model": "primary", **HELLO})
    assert stream.model == "primary"
    chunks: list[dict[str, Any]] = []
    raised = await failure(drain(stream, chunks))
    assert len(chunks) == 2
    assert raised.code is ErrorCode.UPSTREAM_ERROR
    assert (len(b.requests), len(runtime.requests)) == (0, 0)
    assert (
        metric("inferflux_router_provider_errors_total", provider="openai", code="upstream_error")
        == errors + 1
    )


async def test_embeddings_fall_through_too(trio: Any) -> None:
    a, _, _runtime = trio
    a.faults.append(Fault(503, {"error": {"message": "down", "type": "server_error"}}))
    a.faults.append(Fault(503, {"error": {"message": "down", "type": "server_error"}}))
    served = await chain_for(trio, default_backoff=Backoff(retries=0)).embeddings(
        {"model": "primary", "input": "abc"}
    )
    assert served.model == "second"
    assert served.body["data"][0]["embedding"][0] == 3.0
    assert len(a.requests) == 1  # retries=0: no second try on A


async def test_an_overloaded_anthropic_link_falls_through(start_fake: Start, metric: Any) -> None:
    claude, runtime = await start_fake("anthropic"), await start_fake("openai")
    runtime.key = None
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    claude.faults.extend([Fault(529, overloaded)] * 2)  # the first try and its one retry
    models = {"claude": provider("anthropic", claude, 2.0, ["local"]), "local": local(runtime.url)}
    models["claude"]["provider"]["baseURL"] = claude.url
    before = metric("inferflux_router_provider_errors_total", provider="anthropic", code="overloaded")
    served = await make_chain(models, claude.key).chat({"model": "claude", **HELLO})
    assert served.model == "local"
    assert len(claude.requests) == 2
    assert (
        metric("inferflux_router_provider_errors_total", provider="anthropic", code="overloaded")
        == before + 2
    )
