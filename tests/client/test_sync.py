"""The blocking client against the real router and runtime (run in a thread: the router shares the loop)."""

from __future__ import annotations

import asyncio
import time

import pytest

from inferflux.client import Chunk, InferFlux, InvalidResumeTokenError, Reconnect

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "user", "content": "Name five colours, one per line."}]
OPTIONS = {"max_tokens": 32, "temperature": 0}


async def test_a_dropped_stream_is_resumed_with_nothing_lost_or_repeated(
    runtime_url, make_router, route, cutting_proxy
) -> None:
    harness = await make_router({"gemma": route([runtime_url])})
    proxy = await cutting_proxy(harness.url, after=3, cuts=1)

    def read() -> tuple[str, list[Chunk], int]:
        with InferFlux(harness.url) as direct:
            whole = direct.infer("gemma", MESSAGES, **OPTIONS).output
        with InferFlux(proxy.url) as client, client.stream("gemma", MESSAGES, **OPTIONS) as stream:
            return whole, list(stream), stream.reconnects

    whole, chunks, reconnects = await asyncio.to_thread(read)
    assert proxy.broken == 1
    assert reconnects == 1
    assert [chunk.offset for chunk in chunks] == list(range(len(chunks)))
    assert "".join(chunk.text for chunk in chunks) == whole


async def test_a_stalled_stream_is_resumed_and_a_forged_token_refused(
    runtime_url, make_router, route, cutting_proxy
) -> None:
    harness = await make_router({"gemma": route([runtime_url])}, heartbeat_seconds=0.2)
    proxy = await cutting_proxy(harness.url, after=2, mode="stall")

    def read() -> tuple[str, str, int]:
        with InferFlux(harness.url) as direct:
            whole = direct.infer("gemma", MESSAGES, **OPTIONS).output
        with InferFlux(proxy.url, reconnect=Reconnect(stall_seconds=1.0)) as client:
            stream = client.stream("gemma", MESSAGES, **OPTIONS)
            text = stream.text()
            token = stream.resume_token
            assert token is not None
            kid, stream_id, offset, expires, signature = token.split(".")
            stretched = ".".join([kid, stream_id, offset, str(int(expires) + 3600), signature])
            with pytest.raises(InvalidResumeTokenError) as refused:
                client.resume(stretched).text()
            assert refused.value.status == 401
        return whole, text, stream.reconnects

    whole, text, reconnects = await asyncio.to_thread(read)
    assert text == whole
    assert reconnects == 1
    assert proxy.broken == 1


async def test_retry_after_is_honoured_until_a_replica_is_ready(runtime_url, make_router, route) -> None:
    harness = await make_router({"gemma": route([])})
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # instead of waiting: publish a ready replica, wait for it (bounded)
        waits.append(seconds)
        harness.write_routes({"gemma": route([runtime_url])})
        for _ in range(500):
            if harness.router.holder.generation >= 2:
                return
            time.sleep(0.01)
        raise AssertionError("the new routing table was not applied")

    def ask() -> str:
        with InferFlux(harness.url, sleep=sleep) as client:
            return client.infer("gemma", MESSAGES, max_tokens=4, temperature=0).output

    assert await asyncio.to_thread(ask)
    assert waits == [1.0]
