"""Structured output and tool calls: OpenAI request fields turned into llama.cpp grammars.

``response_format`` json_object / json_schema and a forced tool call (``tool_choice`` "required" or
a named function) constrain sampling with a GBNF grammar compiled from a JSON schema, so the reply
is always valid JSON of that shape. With ``tool_choice`` "auto" the model is free, and a reply that
is a JSON tool call is returned as ``tool_calls``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import orjson
from llama_cpp.llama_grammar import json_schema_to_gbnf

from inferflux.runtime.errors import bad_request

# llama-cpp-python's converter lets raw control characters into strings, which JSON forbids;
# llama.cpp's own converter excludes them, as this rule does.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'
# Its exponent may take up to 16 digits, so a sampled "1e999" overflows a double and strict
# parsers reject it as infinity; two digits keep every grammatical number finite.
_LOOSE_EXPONENT = "[eE] [-+]? integral-part"
_FINITE_EXPONENT = "[eE] [-+]? [0-9] [0-9]?"


def schema_grammar(schema: dict[str, Any]) -> str:
    """The GBNF grammar (root rule ``root``) that accepts exactly the JSON documents ``schema`` allows."""
    try:
        grammar = str(json_schema_to_gbnf(orjson.dumps(schema).decode()))
    except Exception as exc:  # the converter raises many types on unsupported schemas
        raise bad_request(f"unsupported JSON schema: {exc}", "response_format") from exc
    return grammar.replace(_LOOSE_CHAR, _JSON_CHAR).replace(_LOOSE_EXPONENT, _FINITE_EXPONENT)


def response_format_grammar(response_format: Any) -> str | None:
    """The grammar for an OpenAI ``response_format``, or None for plain text."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return schema_grammar({"type": "object"})
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise bad_request(
                "response_format.json_schema.schema must be a JSON schema object", "response_format"
            )
        return schema_grammar(schema)
    raise bad_request(f"unknown response_format type {kind!r}", "response_format")


def validated_tools(tools: Any) -> list[dict[str, Any]]:
    """The ``tools`` list, checked to be OpenAI function tools with names."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise bad_request("tools must be a list", "tools")
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(function, dict) or not function.get("name"):
            raise bad_request("each tool must be {type: function, function: {name, parameters}}", "tools")
    return tools


def forced_tools(tools: Sequence[dict[str, Any]], tool_choice: Any) -> list[dict[str, Any]]:
    """The tools one of which must be called under ``tool_choice`` (empty when the model may answer)."""
    if not tools or tool_choice in (None, "auto", "none"):
        return []
    if tool_choice == "required":
        return list(tools)
    name = tool_choice.get("function", {}).get("name") if isinstance(tool_choice, dict) else None
    chosen = [t for t in tools if t["function"]["name"] == name]
    if not chosen:
        raise bad_request(f"tool_choice names no tool in tools: {name!r}", "tool_choice")
    return chosen


def tool_call_schema(tools: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The JSON schema of one call to any of ``tools``: ``{"name": ..., "arguments": {...}}``."""
    options = [
        {
            "type": "object",
            "properties": {
                "name": {"const": t["function"]["name"]},
                "arguments": t["function"].get("parameters") or {"type": "object"},
            },
            "required": ["name", "arguments"],
        }
        for t in tools
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


def tools_instruction(tools: Sequence[dict[str, Any]]) -> str:
    """System text describing ``tools`` for models whose template has no tool support."""
    listed = "\n".join(orjson.dumps(t["function"]).decode() for t in tools)
    return (
        "You can call these tools. To call one, reply with only a JSON object "
        '{"name": <tool name>, "arguments": <arguments object>}.\n' + listed
    )


def parse_tool_call(text: str, tools: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The OpenAI ``tool_calls`` entry for a reply that is a JSON call of one of ``tools``, else None."""
    try:
        value = orjson.loads(text.strip())
    except orjson.JSONDecodeError:
        return None
    names = {t["function"]["name"] for t in tools}
    if (
        not isinstance(value, dict)
        or value.get("name") not in names
        or not isinstance(value.get("arguments"), dict)
    ):
        return None
    return {
        "id": "call_" + secrets.token_hex(12),
        "type": "function",
        "function": {"name": value["name"], "arguments": orjson.dumps(value["arguments"]).decode()},
    }
