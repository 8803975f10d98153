"""Contract tests: the OpenAI adapter and its official SDK against a fake speaking OpenAI's wire format."""

from __future__ import annotations

from typing import Any

import pytest
from fake_common import Fault, drain, failure

from inferflux.router.errors import ErrorCode
from inferflux.router.providers.openai_adapter import OpenAIAdapter, split_params


def adapter(
    server: Any, *, key: str | None = None, timeout: float = 5.0, provider: str = "openai"
) -> OpenAIAdapter:
    return OpenAIAdapter(
        provider=provider,
        model="gpt-test",
        base_url=server.url + "/v1",
        api_key=server.key if key is None else key,
        timeout_seconds=timeout,
    )


HELLO = {"model": "served-name", "messages": [{"role": "user", "content": "hello there"}]}


async def test_chat_sends_the_route_model_and_returns_the_completion(openai_server: Any) -> None:
    answer = await adapter(openai_server).chat({**HELLO, "temperature": 0.2})
    headers, sent = openai_server.requests[-1]
    assert sent["model"] == "gpt-test"
    assert sent["temperature"] == 0.2
    assert headers["Authorization"] == f"Bearer {openai_server.key}"
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == "echo: hello there"
    assert answer["usage"]["total_tokens"] == 8


async def test_unknown_fields_travel_in_the_body_not_dropped(openai_server: Any) -> None:
    await adapter(openai_server).chat({**HELLO, "min_p": 0.05})
    assert openai_server.requests[-1][1]["min_p"] == 0.05
    assert split_params({"model": "m", "min_p": 1}, "chat") == {"model": "m", "extra_body": {"min_p": 1}}


async def test_stream_yields_openai_chunks_in_order(openai_server: Any) -> None:
    body = {**HELLO, "stream_options": {"include_usage": True}}
    chunks = [chunk async for chunk in adapter(openai_server).chat_stream(body)]
    assert openai_server.requests[-1][1]["stream"] is True
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "echohellothere".replace("echo", "echo:")
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == 3


async def test_tools_and_images_pass_through(openai_server: Any) -> None:
    tool = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    content = [{"type": "text", "text": "what is this"}, image]
    body = {
        "model": "x",
        "messages": [{"role": "user", "content": content}],
        "tools": [tool],
        "tool_choice": "required",
    }
    answer = await adapter(openai_server).chat(body)
    call = answer["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "weather"
    assert answer["choices"][0]["finish_reason"] == "tool_calls"
    assert openai_server.requests[-1][1]["messages"][0]["content"][1] == image


async def test_embeddings_are_floats(openai_server: Any) -> None:
    answer = await adapter(openai_server).embeddings({"model": "e", "input": ["abc", "hello"]})
    assert openai_server.requests[-1][1]["encoding_format"] == "float"
    assert [item["embedding"][0] for item in answer["data"]] == [3.0, 5.0]


def openai_error(status: int, kind: str, code: str | None, message: str = "nope") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


@pytest.mark.parametrize(
    ("fault", "code", "retry_after"),
    [
        (
            Fault(429, openai_error(429, "requests", "rate_limit_exceeded"), {"retry-after": "7"}),
            ErrorCode.RATE_LIMITED,
            7.0,
        ),
        (
            Fault(429, openai_error(429, "tokens", None), {"retry-after-ms": "1500"}),
            ErrorCode.RATE_LIMITED,
            1.5,
        ),
        (
            Fault(400, openai_error(400, "invalid_request_error", "context_length_exceeded")),
            ErrorCode.CONTEXT_LENGTH,
            None,
        ),
        (
            Fault(400, openai_error(400, "invalid_request_error", "content_filter")),
            ErrorCode.CONTENT_FILTERED,
            None,
        ),
        (Fault(400, openai_error(400, "invalid_request_error", None)), ErrorCode.BAD_REQUEST, None),
        (
            Fault(404, openai_error(404, "invalid_request_error", "model_not_found")),
            ErrorCode.NOT_FOUND,
            None,
        ),
        (Fault(500, openai_error(500, "server_error", None)), ErrorCode.UPSTREAM_ERROR, None),
        (Fault(503, openai_error(503, "server_error", None)), ErrorCode.UNAVAILABLE, None),
    ],
)
async def test_status_errors_map_to_normalised_codes(
    openai_server: Any, fault: Any, code: ErrorCode, retry_after: float | None
) -> None:
    openai_server.faults.append(fault)
    raised = await failure(adapter(openai_server).chat(HELLO))
    assert raised.code is code
    assert raised.retry_after == retry_after
    assert raised.body()["error"]["code"] == code.value


async def test_wrong_key_is_auth(openai_server: Any) -> None:
    raised = await failure(adapter(openai_server, key="sk-wrong-key").chat(HELLO))
    assert raised.code is ErrorCode.AUTH
    assert raised.status == 401


async def test_keys_echoed_in_provider_errors_are_masked(openai_server: Any) -> None:
    echoed = "Incorrect API key provided: sk-proj-abc1********************xyz9. Find yours at ..."
    openai_server.faults.append(
        Fault(401, openai_error(401, "invalid_request_error", "invalid_api_key", echoed))
    )
    raised = await failure(adapter(openai_server).chat(HELLO))
    assert raised.code is ErrorCode.AUTH
    assert "sk-" not in raised.message
    assert "Incorrect API key provided: ***" in raised.message


async def test_slow_upstream_is_timeout(openai_server: Any) -> None:
    openai_server.faults.append(Fault(hang_seconds=2))
    raised = await failure(adapter(openai_server, timeout=0.3).chat(HELLO))
    assert raised.code is ErrorCode.TIMEOUT


async def test_unreachable_upstream_is_unavailable(openai_server: Any) -> None:
    gone = type("Gone", (), {"url": "http://127.0.0.1:9", "key": "k"})()
    raised = await failure(adapter(gone).chat(HELLO))
    assert raised.code is ErrorCode.UNAVAILABLE


async def test_error_event_mid_stream_is_upstream_error(openai_server: Any) -> None:
    openai_server.faults.append(Fault(break_stream_after=2))
    received: list[dict[str, Any]] = []
    raised = await failure(drain(adapter(openai_server).chat_stream(HELLO), received))
    assert len(received) == 2
    assert raised.code is ErrorCode.UPSTREAM_ERROR
