"""Clients speaking Anthropic's Messages API, served by a chain: the official anthropic SDK as client."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from fake_common import Fault

from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.providers.anthropic_inbound import error_document, openai_request

HELLO = [{"role": "user", "content": "hello"}]
WEATHER = {"name": "weather", "description": "Weather now", "input_schema": {"type": "object"}}


def client(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key="router-key", base_url=url, max_retries=0)


def test_request_maps_system_tools_images_and_tool_results() -> None:
    request = openai_request(
        {
            "model": "m",
            "max_tokens": 20,
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "weather", "input": {"c": 1}}],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                        },
                    ],
                },
            ],
            "tools": [WEATHER],
            "tool_choice": {"type": "any"},
            "stop_sequences": ["END"],
        }
    )
    assert [m["role"] for m in request["messages"]] == ["system", "user", "assistant", "tool", "user"]
    assert request["messages"][2]["tool_calls"][0]["function"] == {"name": "weather", "arguments": '{"c": 1}'}
    assert request["messages"][3] == {"role": "tool", "tool_call_id": "t1", "content": "sunny"}
    assert request["messages"][4]["content"][0]["image_url"]["url"] == "data:image/png;base64,AAAA"
    assert request["tools"][0]["function"]["parameters"] == {"type": "object"}
    assert request["tool_choice"] == "required"
    assert request["stop"] == ["END"]


def test_errors_use_anthropic_types_and_529_for_overload() -> None:
    assert error_document(UpstreamError(ErrorCode.OVERLOADED, "busy")) == (
        529,
        {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
    )
    assert error_document(UpstreamError(ErrorCode.TIMEOUT, "slow"))[1]["error"]["type"] == "api_error"


async def test_message_through_a_fallback(served: Any) -> None:
    a, b, _, url = served
    a.faults.append(Fault(429, {"error": {"message": "slow", "type": "requests"}}, {"retry-after": "30"}))
    b.faults.append(Fault(hang_seconds=5))
    raw = await client(url).messages.with_raw_response.create(model="primary", max_tokens=20, messages=HELLO)
    assert raw.headers["x-inferflux-served-by"] == "local"
    message = await raw.parse()
    assert message.model == "local"
    assert message.content[0].text == "echo: hello"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3


async def test_stream_events_from_openai_chunks(served: Any) -> None:
    _, _, _, url = served
    events = [
        event.model_dump()
        async for event in await client(url).messages.create(
            model="local", max_tokens=20, messages=HELLO, stream=True
        )
    ]
    kinds = [event["type"] for event in events]
    assert kinds[0] == "message_start"
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == "echo:hello"
    assert events[-2]["delta"]["stop_reason"] == "end_turn"
    assert events[-2]["usage"]["output_tokens"] == 3


async def test_forced_tool_use_streams_as_tool_use_blocks(served: Any) -> None:
    _, _, _, url = served
    tool = {"type": "any"}
    stream = await client(url).messages.create(
        model="local", max_tokens=20, messages=HELLO, tools=[WEATHER], tool_choice=tool, stream=True
    )
    events = [event.model_dump() async for event in stream]
    start = next(e for e in events if e["type"] == "content_block_start")
    assert start["content_block"]["type"] == "tool_use"
    assert start["content_block"]["name"] == "weather"
    fragments = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"]
    assert json.loads("".join(fragments)) == {"city": "Paris"}
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


async def test_failures_reach_anthropic_clients_in_their_error_shape(served: Any) -> None:
    _, b, _, url = served
    b.faults.append(Fault(429, {"error": {"message": "slow", "type": "tokens"}}, {"retry-after": "30"}))
    with pytest.raises(anthropic.RateLimitError) as limited:
        await client(url).messages.create(model="second", max_tokens=20, messages=HELLO)
    assert limited.value.type == "rate_limit_error"
    assert limited.value.response.headers["retry-after"] == "30"
    with pytest.raises(anthropic.NotFoundError):
        await client(url).messages.create(model="nope", max_tokens=20, messages=HELLO)
    with pytest.raises(anthropic.BadRequestError) as bad:
        await client(url).messages.create(
            model="local", max_tokens=20, messages=[{"role": "critic", "content": "x"}]
        )
    assert bad.value.type == "invalid_request_error"
