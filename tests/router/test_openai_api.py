"""The /v1 front door through a real uvicorn-served router to fake OpenAI backends."""

from __future__ import annotations

import asyncio
import time

import orjson


async def test_chat_is_routed_by_model_and_request_id_travels(mocks, make_router, route) -> None:
    one, two = await mocks(name="one"), await mocks(name="two")
    harness = await make_router({"a": route([one.url]), "b": route([two.url])})
    body = {"model": "b", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    async with harness.session.post(
        harness.url + "/v1/chat/completions", json=body, headers={"x-request-id": "req-123"}
    ) as response:
        document = await response.json()
        assert response.status == 200
        assert response.headers["x-request-id"] == "req-123"
    assert document["choices"][0]["message"]["content"] == "t0 t1 t2 "
    assert (one.state.requests, two.state.requests) == (0, 1)
    assert two.state.request_ids == ["req-123"]
    assert two.state.bodies == [body]


async def test_request_id_is_generated_when_missing(mocks, make_router, route) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url])})
    async with harness.post("/v1/completions", {"model": "m", "prompt": "x"}) as response:
        assert response.status == 200
        generated = response.headers["x-request-id"]
    assert len(generated) == 32
    assert backend.state.request_ids == [generated]


async def test_models_lists_every_served_model(make_router, route) -> None:
    harness = await make_router({"zeta": route(["http://127.0.0.1:9"]), "alpha": route([])})
    async with harness.session.get(harness.url + "/v1/models") as response:
        document = await response.json()
    assert [model["id"] for model in document["data"]] == ["alpha", "zeta"]
    assert document["object"] == "list"


async def test_embeddings_pass_through(mocks, make_router, route) -> None:
    backend = await mocks()
    harness = await make_router({"e": route([backend.url])})
    async with harness.post("/v1/embeddings", {"model": "e", "input": "x"}) as response:
        document = await response.json()
    assert document["data"][0]["embedding"] == [0.1, 0.2]


async def test_stream_is_relayed_without_ids_comments_or_retry(mocks, make_router, route) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url])})
    usage = {"include_usage": True}
    body = {"model": "m", "prompt": "x", "stream": True, "max_tokens": 5, "stream_options": usage}
    async with harness.post("/v1/completions", body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = await response.read()
    events = [block for block in raw.split(b"\n\n") if block]
    assert all(block.startswith(b"data: ") for block in events)  # no id:, retry: or : comments
    assert events[-1] == b"data: [DONE]"
    texts = [orjson.loads(e[6:])["choices"][0]["text"] for e in events[:-1] if orjson.loads(e[6:])["choices"]]
    assert "".join(texts) == "t0 t1 t2 t3 t4 "
    metrics = harness.router.metrics
    assert metrics.tokens.labels("m", "completion")._value.get() == 5
    assert metrics.ttft.labels("m")._sum.get() > 0


async def test_errors_have_the_openai_shape(make_router, route) -> None:
    harness = await make_router({"m": route([])})
    cases = [
        ("/v1/chat/completions", b"{not json", 400, "bad_request"),
        ("/v1/chat/completions", b'{"messages": []}', 400, "bad_request"),
        ("/v1/chat/completions", b'{"model": "nope"}', 404, "not_found"),
        ("/v1/chat/completions", b'{"model": "m"}', 503, "unavailable"),
        ("/v1/nothing", b"{}", 404, "not_found"),
    ]
    for path, body, status, code in cases:
        async with harness.session.post(harness.url + path, data=body) as response:
            document = await response.json()
            assert response.status == status, path
            assert document["error"]["code"] == code
            assert isinstance(document["error"]["message"], str)
            assert "x-request-id" in response.headers
    async with harness.session.get(harness.url + "/v1/chat/completions") as response:
        assert response.status == 405


async def test_upstream_error_status_passes_through(mocks, make_router, route) -> None:
    backend = await mocks(fail_status=400)
    harness = await make_router({"m": route([backend.url])})
    async with harness.post("/v1/completions", {"model": "m", "prompt": "x"}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["message"] == "mock failure"


async def test_client_disconnect_cancels_the_upstream_stream_at_once(mocks, make_router, route) -> None:
    backend = await mocks(delay_ms=50)
    harness = await make_router({"m": route([backend.url])})
    body = {"model": "m", "prompt": "x", "stream": True, "max_tokens": 200}
    response = await harness.post("/v1/completions", body)
    await response.content.readline()
    assert backend.state.active_streams == 1
    response.close()
    start = time.monotonic()
    while backend.state.active_streams:
        await asyncio.sleep(0.01)
        assert time.monotonic() - start < 1.0, "upstream stream still running after the client left"
    assert backend.state.cancelled == 1
    assert harness.router.dispatcher.balancer.outstanding == {}


async def test_upstream_connections_are_reused_after_streams_and_json(mocks, make_router, route) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url])})
    for stream in (False, True, False, True):
        body = {"model": "m", "prompt": "x", "stream": stream, "max_tokens": 3}
        async with harness.post("/v1/completions", body) as response:
            await response.read()
    assert backend.state.connections == 1
