"""Finding and rewriting the text of a request in every shape the router accepts."""

from __future__ import annotations

from typing import Any

from inferflux.router.guardrails.texts import Source, rewrite_texts, total_chars


def tag(text: str, source: Source) -> str:
    return f"<{source.value}>{text}"


def test_chat_messages_with_strings_and_parts() -> None:
    document: dict[str, Any] = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "rules"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "u"}}],
            },
            {"role": "assistant", "content": None, "tool_calls": [{"function": {"arguments": "{}"}}]},
            {"role": "tool", "content": "result"},
        ],
    }
    out = rewrite_texts(document, tag)
    assert out["messages"][0]["content"] == "<application>rules"
    assert out["messages"][1]["content"][0]["text"] == "<untrusted>hi"
    assert out["messages"][1]["content"][1] == {"type": "image_url", "image_url": {"url": "u"}}
    assert out["messages"][2] == document["messages"][2]
    assert out["messages"][3]["content"] == "<untrusted>result"
    assert document["messages"][0]["content"] == "rules"  # the original is not changed


def test_anthropic_system_and_tool_results() -> None:
    document = {
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "42 rows"}]},
        ],
    }
    out = rewrite_texts(document, tag)
    assert out["system"][0]["text"] == "<application>be brief"
    assert out["messages"][0]["content"][0]["content"] == "<untrusted>42 rows"


def test_prompts_and_inputs_strings_lists_and_token_ids() -> None:
    assert rewrite_texts({"prompt": "p"}, tag)["prompt"] == "<prompt>p"
    assert rewrite_texts({"prompt": ["a", [1, 2]]}, tag)["prompt"] == ["<prompt>a", [1, 2]]
    assert rewrite_texts({"input": ["x", "y"]}, tag)["input"] == ["<prompt>x", "<prompt>y"]


def test_total_chars() -> None:
    document = {
        "messages": [{"role": "user", "content": "abc"}, {"role": "system", "content": "de"}],
        "prompt": "f",
    }
    assert total_chars(document) == 6
