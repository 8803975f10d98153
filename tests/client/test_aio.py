"""The asyncio client against the real router and the real runtime (llama.cpp on the small model).

A proxy between the SDK and the router breaks the stream on purpose (cutting_proxy.py); the SDK
must resume it with every chunk exactly once, and surface forged or expired tokens as typed errors.
"""

from __future__ import annotations

import pytest

from inferflux.client import (
    AsyncInferFlux,
    GatewayTimeoutError,
    InvalidResumeTokenError,
    NotFoundError,
    Reconnect,
    StreamGoneError,
    UnavailableError,
)
from inferflux.router.resume import KeyHolder, ephemeral_keyring, sign

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "user", "content": "Name five colours, one per line."}]
OPTIONS = {"max_tokens": 32, "temperature": 0}


async def whole_answer(url: str) -> str:
    async with AsyncInferFlux(url) as client:
        return (await client.infer("gemma", MESSAGES, **OPTIONS)).output


async def test_a_dropped_stream_is_resumed_with_nothing_lost_or_repeated(
    runtime_url, make_router, route, cutting_proxy
) -> None:
    harness = await make_router({"gemma": route([runtime_url])})
    whole = await whole_answer(harness.url)
    proxy = await cutting_proxy(harness.url, after=3, cuts=2)
    async with AsyncInferFlux(proxy.url) as client:
        stream = client.stream("gemma", MESSAGES, **OPTIONS)
        chunks = [chunk async for chunk in stream]
    assert proxy.broken == 2
    assert stream.reconnects == 2
    assert [chunk.offset for chunk in chunks] == list(range(len(chunks)))
    assert "".join(chunk.text for chunk in chunks) == whole
    assert stream.done is not None
    assert stream.done.usage is not None
    assert stream.done.usage.completion_tokens > 0


async def test_a_stalled_stream_counts_as_dropped_past_the_heartbeat_interval(
    runtime_url, make_router, route, cutting_proxy
) -> None:
    harness = await make_router({"gemma": route([runtime_url])}, heartbeat_seconds=0.2)
    whole = await whole_answer(harness.url)
    proxy = await cutting_proxy(harness.url, after=2, mode="stall")
    async with AsyncInferFlux(proxy.url, reconnect=Reconnect(stall_seconds=1.0)) as client:
        stream = client.stream("gemma", MESSAGES, **OPTIONS)
        text = await stream.text()
    assert proxy.broken == 1
    assert stream.reconnects == 1
    assert text == whole


async def test_a_stream_resumes_from_a_saved_token_in_another_client(runtime_url, make_router, route) -> None:
    harness = await make_router({"gemma": route([runtime_url])})
    whole = await whole_answer(harness.url)
    async with AsyncInferFlux(harness.url) as first:
        stream = first.stream("gemma", MESSAGES, **OPTIONS)
        head = []
        async for chunk in stream:
            head.append(chunk)
            if len(head) == 2:
                break
        token = stream.resume_token
        await stream.aclose()
    assert token is not None
    async with AsyncInferFlux(harness.url) as second:
        rest = await second.resume(token).text()
    assert "".join(chunk.text for chunk in head) + rest == whole


async def test_forged_and_expired_tokens_are_typed_errors(runtime_url, make_router, route) -> None:
    keys = KeyHolder(ephemeral_keyring())
    harness = await make_router({"gemma": route([runtime_url])}, keys=keys)
    async with AsyncInferFlux(harness.url) as client:
        stream = client.stream("gemma", MESSAGES, max_tokens=4, temperature=0)
        await stream.text()
        assert stream.resume_token is not None
        kid, stream_id, offset, expires, signature = stream.resume_token.split(".")
        forged = ".".join([kid, stream_id, "0", expires, signature])  # replay from 0: signature mismatch
        with pytest.raises(InvalidResumeTokenError) as bad:
            await client.resume(forged).text()
        assert bad.value.status == 401
        expired = sign(keys.keyring, stream_id, int(offset), ttl=-60)
        with pytest.raises(StreamGoneError) as gone:
            await client.resume(expired).text()
        assert gone.value.status == 410


async def test_retry_after_is_honoured_until_a_replica_is_ready(runtime_url, make_router, route) -> None:
    harness = await make_router({"gemma": route([])})
    waits: list[float] = []

    async def sleep(seconds: float) -> None:  # instead of waiting: publish a ready replica
        waits.append(seconds)
        harness.write_routes({"gemma": route([runtime_url])})
        await harness.wait_generation(2, within=5.0)

    async with AsyncInferFlux(harness.url, sleep=sleep) as client:
        answer = await client.infer("gemma", MESSAGES, max_tokens=4, temperature=0)
    assert answer.output
    assert waits == [1.0]


async def test_refusals_are_typed_and_retry_after_is_bounded(make_router, route) -> None:
    harness = await make_router({"gemma": route([])})
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async with AsyncInferFlux(harness.url, reconnect=Reconnect(max_retries=2), sleep=sleep) as client:
        with pytest.raises(UnavailableError) as unavailable:
            await client.infer("gemma", MESSAGES)
        assert unavailable.value.retry_after == 1.0
        assert slept == [1.0, 1.0]
        with pytest.raises(UnavailableError):
            await client.stream("gemma", MESSAGES).text()
        with pytest.raises(NotFoundError) as unknown:
            await client.infer("no-such-model", MESSAGES)
    assert unknown.value.code == "not_found"


async def test_an_error_event_mid_stream_raises_its_typed_error(runtime_url, make_router, route) -> None:
    harness = await make_router({"gemma": route([runtime_url])}, total_timeout_seconds=0.5)
    async with AsyncInferFlux(harness.url) as client:
        stream = client.stream(
            "gemma", prompt="Count from one to one thousand:", max_tokens=900, temperature=0
        )
        with pytest.raises(GatewayTimeoutError) as timed_out:
            await stream.text()
    assert timed_out.value.code == "timeout"
    assert stream.done is None
