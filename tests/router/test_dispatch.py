"""Admission, retries on another replica, timeouts and metrics, through the running router."""

from __future__ import annotations

import asyncio

from inferflux.router.dispatch import prompt_prefix

CHAT = "/v1/chat/completions"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def test_prompt_prefix_reads_messages_or_prompt() -> None:
    messages = {"messages": [{"role": "system", "content": "abc"}, {"role": "user", "content": "defgh"}]}
    assert prompt_prefix(messages, 5) == b"abc\x1ed"
    assert prompt_prefix({"prompt": "hello world"}, 5) == b"hello"
    assert prompt_prefix({"prompt": ["first", "second"]}, 100) == b"first"


async def test_a_dead_replica_is_retried_on_another_before_any_byte(mocks, make_router, route) -> None:
    live = await mocks()
    harness = await make_router({"m": route(["http://127.0.0.1:9", live.url])})
    for _ in range(6):
        async with harness.post(CHAT, BODY) as response:
            assert response.status == 200
    assert live.state.requests == 6
    metrics = harness.router.metrics
    assert metrics.retries.labels("m")._value.get() >= 1
    assert metrics.upstream_errors.labels("m", "unavailable")._value.get() >= 1


async def test_a_503_replica_is_retried_and_all_failing_gives_503(mocks, make_router, route) -> None:
    sick, healthy = await mocks(fail_status=503), await mocks()
    harness = await make_router({"m": route([sick.url, healthy.url]), "x": route([sick.url])})
    for _ in range(4):
        async with harness.post(CHAT, BODY) as response:
            assert response.status == 200
    async with harness.post(CHAT, {**BODY, "model": "x"}) as response:
        assert response.status == 503
        assert (await response.json())["error"]["code"] == "unavailable"


async def test_first_byte_timeout_is_504(mocks, make_router, route) -> None:
    stuck = await mocks(hang=True)
    harness = await make_router({"m": route([stuck.url])}, first_byte_timeout_seconds=0.3, retries=0)
    async with harness.post(CHAT, BODY) as response:
        assert response.status == 504
        assert (await response.json())["error"]["code"] == "timeout"


async def test_full_queue_gets_429_with_retry_after(mocks, make_router, route) -> None:
    slow = await mocks(delay_ms=200)
    harness = await make_router({"m": route([slow.url], maxConcurrency=1, maxQueue=1)})
    body = {**BODY, "stream": True, "max_tokens": 3}

    async def call() -> tuple[int, str | None]:
        async with harness.post(CHAT, body) as response:
            await response.read()
            return response.status, response.headers.get("retry-after")

    results = await asyncio.gather(*(call() for _ in range(4)))
    assert sorted(status for status, _ in results) == [200, 200, 429, 429]
    assert {after for status, after in results if status == 429} == {"1"}


async def test_metrics_page_exports_router_metrics(mocks, make_router, route) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url], balancer="PrefixHash")})
    secret = {**BODY, "messages": [{"role": "user", "content": "zqx-private-prompt"}]}
    async with harness.post(CHAT, secret) as response:
        assert response.status == 200
    async with harness.session.get(harness.url + "/metrics") as response:
        text = await response.text()
    assert 'inferflux_router_requests_total{model="m",route="chat",status="200"} 1.0' in text
    assert (
        'inferflux_router_balancer_decisions_total{choice="preferred",model="m",policy="PrefixHash"}' in text
    )
    assert "inferflux_router_request_duration_seconds_bucket" in text
    assert "zqx" not in text  # prompts never reach metrics


async def test_total_timeout_ends_a_stream_with_an_error_event(mocks, make_router, route) -> None:
    slow = await mocks(delay_ms=100)
    harness = await make_router({"m": route([slow.url])}, total_timeout_seconds=0.5)
    body = {**BODY, "stream": True, "max_tokens": 50}
    async with harness.post(CHAT, body) as response:
        raw = await response.read()
    assert response.status == 200
    events = [block for block in raw.split(b"\n\n") if block]
    assert 2 <= len(events) <= 6
    assert b'"code":"timeout"' in events[-1]
    for _ in range(100):  # the upstream request is dropped too: the mock notices on its next write
        if slow.state.active_streams == 0:
            break
        await asyncio.sleep(0.01)
    assert slow.state.active_streams == 0


async def test_prefix_hash_keeps_a_shared_prompt_prefix_on_one_replica(mocks, make_router, route) -> None:
    replicas = [await mocks() for _ in range(3)]
    harness = await make_router({"m": route([r.url for r in replicas], balancer="PrefixHash")})
    for question in range(6):
        messages = [
            {"role": "system", "content": "You are a careful assistant. " * 10},
            {"role": "user", "content": f"question {question}"},
        ]
        async with harness.post(CHAT, {**BODY, "messages": messages}) as response:
            assert response.status == 200
    assert sorted(r.state.requests for r in replicas) == [0, 0, 6]
    for other in range(30):
        messages = [{"role": "system", "content": f"persona {other}"}, {"role": "user", "content": "q"}]
        async with harness.post(CHAT, {**BODY, "messages": messages}) as response:
            assert response.status == 200
    assert all(r.state.requests > 0 for r in replicas)
