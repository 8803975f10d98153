"""Contract tests: the Anthropic adapter and the official SDK against a fake Messages API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fake_common import Fault, drain, failure

from inferflux.router.errors import ErrorCode
from inferflux.router.providers.anthropic_adapter import AnthropicAdapter


def adapter(server: Any, key: str | None = None, timeout: float = 5.0) -> AnthropicAdapter:
    key = server.key if key is None else key
    return AnthropicAdapter(model="claude-test", base_url=server.url, api_key=key, timeout_seconds=timeout)


WEATHER = {
    "type": "function",
    "function": {"name": "weather", "description": "Weather now", "parameters": {"type": "object"}},
}
CONVERSATION = {
    "model": "served",
    "max_tokens": 50,
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_0",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"c":"P"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_0", "content": "sunny"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "and this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
    ],
    "tools": [WEATHER],
    "stop": "END",
}


async def test_chat_maps_system_tools_images_and_tool_results(anthropic_server: Any) -> None:
    answer = await adapter(anthropic_server).chat(CONVERSATION)
    headers, sent = anthropic_server.requests[-1]
    assert headers["anthropic-version"]
    assert sent["model"] == "claude-test"
    assert sent["system"] == "Be brief."
    assert sent["stop_sequences"] == ["END"]
    assert sent["tools"] == [
        {"name": "weather", "description": "Weather now", "input_schema": {"type": "object"}}
    ]
    assert [turn["role"] for turn in sent["messages"]] == ["user", "assistant", "user"]
    tool_turn = sent["messages"][2]["content"]
    assert tool_turn[0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_0",
        "content": [{"type": "text", "text": "sunny"}],
    }
    assert tool_turn[2]["source"] == {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == "echo: and this picture?"
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"] == {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}


async def test_forced_tool_call_comes_back_as_openai_tool_calls(anthropic_server: Any) -> None:
    body = {**CONVERSATION, "tool_choice": {"type": "function", "function": {"name": "weather"}}}
    answer = await adapter(anthropic_server).chat(body)
    assert anthropic_server.requests[-1][1]["tool_choice"] == {"type": "tool", "name": "weather"}
    call = answer["choices"][0]["message"]["tool_calls"][0]
    assert call["id"] == "toolu_1"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert answer["choices"][0]["finish_reason"] == "tool_calls"


async def test_stream_events_become_openai_chunks(anthropic_server: Any) -> None:
    body = {
        "model": "s",
        "messages": [{"role": "user", "content": "hi you"}],
        "stream_options": {"include_usage": True},
    }
    chunks: list[dict[str, Any]] = []
    await drain(adapter(anthropic_server).chat_stream(body), chunks)
    assert anthropic_server.requests[-1][1]["stream"] is True
    assert anthropic_server.requests[-1][1]["max_tokens"] == 4096
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(chunk["object"] == "chat.completion.chunk" and chunk["id"] == "msg_1" for chunk in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "echo: hi you "
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}


async def test_streamed_tool_use_arrives_as_argument_fragments(anthropic_server: Any) -> None:
    body = {
        "model": "s",
        "messages": [{"role": "user", "content": "go"}],
        "tools": [WEATHER],
        "tool_choice": "required",
    }
    chunks: list[dict[str, Any]] = []
    await drain(adapter(anthropic_server).chat_stream(body), chunks)
    calls = [call for c in chunks if c["choices"] for call in c["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0]["id"] == "toolu_1"
    assert calls[0]["function"]["name"] == "weather"
    assert json.loads("".join(call["function"]["arguments"] for call in calls)) == {"city": "Paris"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def anthropic_error(kind: str, message: str = "nope") -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


@pytest.mark.parametrize(
    ("fault", "code", "retry_after"),
    [
        (
            Fault(429, anthropic_error("rate_limit_error"), {"retry-after": "12"}),
            ErrorCode.RATE_LIMITED,
            12.0,
        ),
        (Fault(529, anthropic_error("overloaded_error", "Overloaded")), ErrorCode.OVERLOADED, None),
        (
            Fault(400, anthropic_error("invalid_request_error", "prompt is too long: 300000 tokens")),
            ErrorCode.CONTEXT_LENGTH,
            None,
        ),
        (Fault(403, anthropic_error("permission_error")), ErrorCode.AUTH, None),
        (Fault(404, anthropic_error("not_found_error")), ErrorCode.NOT_FOUND, None),
        (Fault(413, anthropic_error("request_too_large")), ErrorCode.CONTEXT_LENGTH, None),
        (Fault(500, anthropic_error("api_error")), ErrorCode.UPSTREAM_ERROR, None),
    ],
)
async def test_error_bodies_map_to_normalised_codes(
    anthropic_server: Any, fault: Any, code: ErrorCode, retry_after: float | None
) -> None:
    anthropic_server.faults.append(fault)
    raised = await failure(adapter(anthropic_server).chat(CONVERSATION))
    assert raised.code is code
    assert raised.retry_after == retry_after
    assert raised.body()["error"]["code"] == code.value


async def test_invalid_request_from_the_api_is_bad_request(anthropic_server: Any) -> None:
    raised = await failure(adapter(anthropic_server).chat({**CONVERSATION, "temperature": 1.5}))
    assert raised.code is ErrorCode.BAD_REQUEST
    assert "temperature" in raised.message


async def test_wrong_key_is_auth(anthropic_server: Any) -> None:
    raised = await failure(adapter(anthropic_server, key="sk-ant-wrong").chat(CONVERSATION))
    assert raised.code is ErrorCode.AUTH


async def test_slow_upstream_is_timeout(anthropic_server: Any) -> None:
    anthropic_server.faults.append(Fault(hang_seconds=2))
    raised = await failure(adapter(anthropic_server, timeout=0.3).chat(CONVERSATION))
    assert raised.code is ErrorCode.TIMEOUT


async def test_overloaded_event_mid_stream(anthropic_server: Any) -> None:
    anthropic_server.faults.append(Fault(break_stream_after=4))
    chunks: list[dict[str, Any]] = []
    raised = await failure(drain(adapter(anthropic_server).chat_stream(CONVERSATION), chunks))
    assert chunks
    assert raised.code is ErrorCode.OVERLOADED


async def test_embeddings_are_a_clear_bad_request(anthropic_server: Any) -> None:
    raised = await failure(adapter(anthropic_server).embeddings({"model": "x", "input": "a"}))
    assert raised.code is ErrorCode.BAD_REQUEST
    assert anthropic_server.requests == []
