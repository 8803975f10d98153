"""OpenAI to Anthropic request mapping: what maps, and what is refused with a clear bad_request."""

from __future__ import annotations

from typing import Any

import pytest

from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.providers.anthropic_map import ChunkMapper, completion, image_block, messages_params


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def test_system_and_developer_join_and_same_role_turns_merge() -> None:
    params = messages_params(
        {
            "messages": [
                {"role": "system", "content": "A"},
                {"role": "developer", "content": [{"type": "text", "text": "B"}]},
                user("one"),
                user("two"),
            ],
            "max_completion_tokens": 9,
            "temperature": 0.3,
            "user": "u-1",
            "tool_choice": "none",
        }
    )
    assert params["system"] == "A\n\nB"
    assert params["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}
    ]
    assert params["max_tokens"] == 9
    assert params["extra_body"] == {"temperature": 0.3}
    assert params["metadata"] == {"user_id": "u-1"}
    assert params["tool_choice"] == {"type": "none"}


def test_remote_images_use_url_sources() -> None:
    assert image_block("https://example.com/cat.png") == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/cat.png"},
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [user("x")], "n": 2}, "n"),
        ({"messages": [user("x")], "response_format": {"type": "json_object"}}, "response_format"),
        ({"messages": [user("x")], "logprobs": True}, "logprobs"),
        ({"messages": [{"role": "system", "content": "only system"}]}, "messages"),
        ({"messages": [{"role": "critic", "content": "x"}]}, "messages"),
        ({"messages": [user([{"type": "input_audio", "input_audio": {}}])]}, "messages"),
        ({"messages": [user([{"type": "image_url", "image_url": {"url": "ftp://x"}}])]}, "messages"),
        (
            {"messages": [user([{"type": "image_url", "image_url": {"url": "data:text/plain,hi"}}])]},
            "messages",
        ),
        ({"messages": [user("x")], "tools": [{"type": "code_interpreter"}]}, "tools"),
        ({"messages": [user("x")], "tool_choice": "sometimes"}, "tool_choice"),
    ],
)
def test_unmappable_requests_are_bad_requests(body: dict[str, Any], param: str) -> None:
    with pytest.raises(UpstreamError) as raised:
        messages_params(body)
    assert raised.value.code is ErrorCode.BAD_REQUEST
    assert raised.value.param == param


def test_refusal_and_max_tokens_stop_reasons() -> None:
    refused = completion({"content": [], "stop_reason": "refusal"}, "m")
    assert refused["choices"][0]["finish_reason"] == "content_filter"
    truncated = completion({"content": [{"type": "text", "text": "ab"}], "stop_reason": "max_tokens"}, "m")
    assert truncated["choices"][0]["finish_reason"] == "length"
    assert truncated["choices"][0]["message"]["content"] == "ab"


def test_ping_and_unknown_events_produce_nothing() -> None:
    mapper = ChunkMapper("m")
    assert mapper.chunks({"type": "ping"}) == []
    assert (
        mapper.chunks({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking"}})
        == []
    )
    assert (
        mapper.chunks({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta"}}) == []
    )
