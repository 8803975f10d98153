"""Pure parts of the runtime: prefix choice, text streaming, settings, integrity, structured output."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import jsonschema
import orjson
import pytest

from inferflux.runtime.chat import ChatTemplate, fallback_prompt
from inferflux.runtime.errors import APIError
from inferflux.runtime.integrity import integrity_problem
from inferflux.runtime.prefix import choose_slot, common_prefix_length, reusable_length, swa_allows_reuse
from inferflux.runtime.settings import parse_settings
from inferflux.runtime.structured import (
    forced_tools,
    parse_tool_call,
    response_format_grammar,
    tool_call_schema,
)
from inferflux.runtime.textstream import TextStream, held_back


def test_prefix_lengths() -> None:
    assert common_prefix_length([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix_length([1, 2], [1, 2, 3]) == 2
    assert reusable_length([1, 2, 3], [1, 2, 3]) == 2  # one token is decoded again for its logits
    assert reusable_length([], [5]) == 0


def test_choose_slot_prefers_longest_prefix_then_smallest_cache() -> None:
    idle = [(0, [9, 9]), (1, [1, 2, 3, 7]), (2, [1, 2])]
    assert choose_slot(idle, [1, 2, 3, 4]) == (1, 3)
    assert choose_slot([(0, [5, 5, 5]), (1, [])], [8]) == (1, 0)


def test_a_prompt_sharing_little_with_every_slot_keeps_out_of_the_best_ones_cache() -> None:
    head, control, terse = [1, 2, 3], [10, 11, 12, 13, 14], [20, 21, 22, 23, 24]
    cached_control = head + control + [99]  # a slot holding variant A of a system prompt, and its answer
    # Variant B shares only the head (3 of 8 tokens): it takes the empty slot, so A stays cached.
    assert choose_slot([(0, cached_control), (1, [])], head + terse) == (1, 0)
    # Variant A again shares its whole prompt with slot 0 (all but the last token is reused).
    assert choose_slot([(0, cached_control), (1, head + terse)], head + control) == (0, 7)
    # With no better home, the smallest cache is overwritten, still reusing what it shares.
    assert choose_slot([(0, head + control * 3), (1, [*head, 5])], head + terse) == (1, 3)


def test_sliding_window_reuse() -> None:
    assert swa_allows_reuse(100, 0, 512)
    assert not swa_allows_reuse(600, 200, 512)
    assert swa_allows_reuse(600, 80, 512)
    assert swa_allows_reuse(600, 200, 0)


def test_text_stream_holds_partial_stop_and_utf8() -> None:
    stream = TextStream(["END"])
    assert stream.feed(b"hello E") == "hello "
    assert stream.feed(b"N") == ""
    assert stream.feed(b"D more") == ""
    assert stream.stopped
    split = TextStream()
    euro = "€".encode()
    assert split.feed(euro[:1]) == ""
    assert split.feed(euro[1:]) == "€"
    held = TextStream(["xyz"])
    assert held.feed(b"abx") == "ab"
    assert held.flush() == "x"
    assert held_back("abc", ["cd", "bcx"]) == 2


def test_settings_from_env_and_flags() -> None:
    env = {"INFERFLUX_MODEL_PATH": "/m/a.gguf", "INFERFLUX_PARALLEL": "3", "INFERFLUX_SERVED_NAME": "a"}
    settings = parse_settings(["--port", "9000"], env)
    assert (settings.parallel, settings.port, settings.model_id, settings.host) == (3, 9000, "a", "0.0.0.0")
    assert parse_settings([], {"INFERFLUX_MODEL_PATH": "/m/b.gguf"}).model_id == "b"
    with pytest.raises(SystemExit):
        parse_settings([], {})
    with pytest.raises(SystemExit):
        parse_settings([], {"INFERFLUX_MODEL_PATH": "/m", "INFERFLUX_PARALLEL": "many"})
    budget = {"INFERFLUX_MODEL_PATH": "/m", "INFERFLUX_MEMORY_LIMIT": "1073741824"}
    assert parse_settings([], budget).memory_limit == 1 << 30
    with pytest.raises(SystemExit):
        parse_settings(["--memory-limit", "-1"], budget)
    assert parse_settings(["--headroom-factor", "2.5"], budget).headroom_factor == 2.5
    assert parse_settings([], budget).headroom_factor == 1.3
    for bad in ("0.5", "lots"):
        with pytest.raises(SystemExit):
            parse_settings(["--headroom-factor", bad], budget)


def test_integrity(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"weights")
    good = hashlib.sha256(b"weights").hexdigest()
    assert integrity_problem(model, good) is None
    assert integrity_problem(model, "") is None
    problem = integrity_problem(model, "0" * 64)
    assert problem
    assert good in problem
    assert "refusing" in problem
    assert (
        integrity_problem(tmp_path / "missing.gguf", good)
        == f"model file not found: {tmp_path / 'missing.gguf'}"
    )


def test_fallback_chat_template() -> None:
    template = ChatTemplate(None)
    text = template.render([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert text == "System: Be brief.\nUser: Hi\nAssistant:"
    assert template.extra_stops == ("\nUser:",)
    assert (
        fallback_prompt([{"role": "user", "content": [{"type": "text", "text": "a"}]}])
        == "User: a\nAssistant:"
    )


def test_jinja_chat_template() -> None:
    source = "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
    source += "{% if add_generation_prompt %}<assistant>{% endif %}"
    template = ChatTemplate(source, "<s>", "</s>")
    assert template.render([{"role": "user", "content": "Hi"}]) == "<s><user>Hi<assistant>"
    assert template.extra_stops == ()
    with pytest.raises(ValueError, match="rejected"):
        ChatTemplate("{{ raise_exception('roles must alternate') }}").render([])


def test_response_format_grammars() -> None:
    assert response_format_grammar(None) is None
    assert response_format_grammar({"type": "text"}) is None
    json_object = response_format_grammar({"type": "json_object"}) or ""
    assert "root ::=" in json_object
    assert r"\x00-\x1F" in json_object  # raw control characters are not valid inside JSON strings
    # a three-digit exponent ("1e999") would parse as infinity, which strict JSON parsers reject
    exponents = re.findall(r"\[eE\] \[-\+\]\? ([^)]*)\)", json_object)
    assert exponents == ["[0-9] [0-9]?"]
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert "root ::=" in (
        response_format_grammar({"type": "json_schema", "json_schema": {"schema": schema}}) or ""
    )
    with pytest.raises(APIError):
        response_format_grammar({"type": "json_schema", "json_schema": {}})


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {"type": "function", "function": {"name": "noop"}},
]


def test_tool_choice_and_parsing() -> None:
    assert forced_tools(TOOLS, "auto") == []
    assert forced_tools(TOOLS, "required") == TOOLS
    assert forced_tools(TOOLS, {"type": "function", "function": {"name": "noop"}}) == [TOOLS[1]]
    with pytest.raises(APIError):
        forced_tools(TOOLS, {"type": "function", "function": {"name": "nope"}})
    call = parse_tool_call('{"name": "get_weather", "arguments": {"city": "Paris"}}', TOOLS)
    assert call
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert parse_tool_call('{"name": "other", "arguments": {}}', TOOLS) is None
    assert parse_tool_call("plain text", TOOLS) is None
    schema = tool_call_schema(TOOLS)
    jsonschema.validate({"name": "get_weather", "arguments": {"city": "x"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(orjson.loads('{"name": "get_weather", "arguments": {}}'), schema)
