"""Pure translation between OpenAI chat completions and Anthropic's Messages API.

Requests: OpenAI ``system``/``developer`` messages become the top-level ``system`` text; ``tool``
messages become ``tool_result`` blocks in a user turn; assistant ``tool_calls`` become ``tool_use``
blocks; ``image_url`` parts become ``image`` blocks (base64 for data URLs, ``url`` sources
otherwise); consecutive turns of one role merge, as Messages expects alternating roles. Tools and
``tool_choice`` map one to one; ``max_tokens`` is mandatory for Anthropic, so a default fills in.

Responses: a Message becomes a ``chat.completion``; the streamed events (``message_start``,
``content_block_start``/``delta``/``stop``, ``message_delta``, ``message_stop``) become
``chat.completion.chunk`` dicts, tool-use input arriving as ``arguments`` fragments.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from inferflux.router.errors import ErrorCode, UpstreamError

Body = dict[str, Any]
DEFAULT_MAX_TOKENS = 4096
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# OpenAI fields Messages has no counterpart for; sending them would be a lie, so they are refused.
_UNSUPPORTED = ("logprobs", "top_logprobs", "logit_bias", "audio", "prediction")


def _bad(message: str, param: str | None = None) -> UpstreamError:
    return UpstreamError(ErrorCode.BAD_REQUEST, message, param=param)


def image_block(url: str) -> Body:
    """An ``image_url`` URL as an Anthropic image block (data URLs inline as base64)."""
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or not media_type.startswith("image/"):
            raise _bad("image data URLs must be data:image/<type>;base64,<data>", "messages")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise _bad("image_url.url must be an http(s) or data URL", "messages")


def content_blocks(content: Any) -> list[Body]:
    """OpenAI message content (a string or a list of parts) as Anthropic content blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[Body] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            blocks.append(image_block(str(url)))
        else:
            raise _bad(f"content part type {kind!r} is not supported by this provider", "messages")
    return blocks


def _text_of(content: Any) -> str:
    """The text of a system message, whose parts may only be text."""
    return "\n".join(block["text"] for block in content_blocks(content) if block["type"] == "text")


def _turn(message: Body) -> tuple[str, list[Body]]:
    """One non-system OpenAI message as ``(anthropic role, blocks)``."""
    role = message.get("role")
    if role == "user":
        return "user", content_blocks(message.get("content"))
    if role == "assistant":
        blocks = content_blocks(message.get("content"))
        for call in message.get("tool_calls") or []:
            function = call.get("function", {})
            try:
                arguments = json.loads(function.get("arguments") or "{}")
            except json.JSONDecodeError:
                raise _bad("tool_calls[].function.arguments must be a JSON object", "messages") from None
            blocks.append(
                {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": arguments}
            )
        return "assistant", blocks
    if role == "tool":
        result = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
        return "user", [{**result, "content": content_blocks(message.get("content"))}]
    raise _bad(f"message role {role!r} is not supported", "messages")


def messages_params(body: Body) -> Body:
    """The Messages API parameters for an OpenAI chat-completions ``body`` (without ``model``)."""
    for name in _UNSUPPORTED:
        if body.get(name):
            raise _bad(f"{name} is not supported by provider anthropic", name)
    if (body.get("response_format") or {}).get("type", "text") != "text":
        raise _bad(
            "response_format other than text is not supported by provider anthropic", "response_format"
        )
    if (body.get("n") or 1) != 1:
        raise _bad("n > 1 is not supported by provider anthropic", "n")
    system: list[str] = []
    turns: list[Body] = []
    for message in body.get("messages") or []:
        if message.get("role") in ("system", "developer"):
            system.append(_text_of(message.get("content")))
            continue
        role, blocks = _turn(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise _bad("messages must contain at least one user message", "messages")
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    params: Body = {"messages": turns, "max_tokens": int(max_tokens)}
    if system:
        params["system"] = "\n\n".join(system)
    stop = body.get("stop")
    if stop:
        params["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        params["tools"] = [_tool(tool) for tool in body["tools"]]
    choice = _tool_choice(body.get("tool_choice"))
    if choice is not None:
        params["tool_choice"] = choice
    if body.get("user"):
        params["metadata"] = {"user_id": str(body["user"])}
    # Sampling knobs are part of the published wire format; they travel in the raw body.
    sampling = {key: body[key] for key in ("temperature", "top_p") if body.get(key) is not None}
    if sampling:
        params["extra_body"] = sampling
    return params


def _tool(tool: Body) -> Body:
    """An OpenAI function tool as an Anthropic tool."""
    function = tool.get("function") if tool.get("type") == "function" else None
    if not isinstance(function, dict) or not function.get("name"):
        raise _bad("only function tools with a name are supported", "tools")
    mapped = {"name": function["name"], "input_schema": function.get("parameters") or {"type": "object"}}
    if function.get("description"):
        mapped["description"] = function["description"]
    return mapped


def _tool_choice(choice: Any) -> Body | None:
    """OpenAI ``tool_choice`` as Anthropic's (``required`` is ``any``)."""
    if choice is None:
        return None
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "tool", "name": choice["function"].get("name")}
    raise _bad("tool_choice must be auto, none, required or a function", "tool_choice")


def _usage(input_tokens: int, output_tokens: int) -> Body:
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def completion(message: Body, model: str) -> Body:
    """An Anthropic Message as an OpenAI ``chat.completion``."""
    text = "".join(
        block.get("text", "") for block in message.get("content", []) if block.get("type") == "text"
    )
    calls = [
        {
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": json.dumps(block.get("input") or {})},
        }
        for block in message.get("content", [])
        if block.get("type") == "tool_use"
    ]
    reply: Body = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        reply["tool_calls"] = calls
    usage = message.get("usage") or {}
    return {
        "id": message.get("id", ""),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "finish_reason": FINISH_REASONS.get(message.get("stop_reason") or "", "stop"),
            }
        ],
        "usage": _usage(usage.get("input_tokens", 0), usage.get("output_tokens", 0)),
    }


@dataclass
class ChunkMapper:
    """Turns one Anthropic event stream into OpenAI chunks; it keeps the few facts events refer back to."""

    model: str
    include_usage: bool = False
    id: str = ""
    created: int = field(default_factory=lambda: int(time.time()))
    input_tokens: int = 0
    tool_index: dict[int, int] = field(default_factory=dict)

    def _chunk(self, delta: Body, finish_reason: str | None = None) -> Body:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }

    def chunks(self, event: Body) -> list[Body]:
        """The OpenAI chunks (zero or more) for one Anthropic stream event."""
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message", {})
            self.id = message.get("id", "")
            self.input_tokens = (message.get("usage") or {}).get("input_tokens", 0)
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = event.get("content_block", {})
            if block.get("type") != "tool_use":
                return []
            index = self.tool_index.setdefault(event.get("index", 0), len(self.tool_index))
            call = {"index": index, "id": block.get("id"), "type": "function"}
            return [
                self._chunk(
                    {"tool_calls": [{**call, "function": {"name": block.get("name"), "arguments": ""}}]}
                )
            ]
        if kind == "content_block_delta":
            return self._delta(event.get("index", 0), event.get("delta", {}))
        if kind == "message_delta":
            reason = (event.get("delta") or {}).get("stop_reason") or ""
            chunks = [self._chunk({}, FINISH_REASONS.get(reason, "stop"))]
            if self.include_usage:
                output = (event.get("usage") or {}).get("output_tokens", 0)
                chunks.append({**self._chunk({}), "choices": [], "usage": _usage(self.input_tokens, output)})
            return chunks
        return []

    def _delta(self, index: int, delta: Body) -> list[Body]:
        if delta.get("type") == "text_delta":
            return [self._chunk({"content": delta.get("text", "")})]
        if delta.get("type") == "input_json_delta" and index in self.tool_index:
            call = {"index": self.tool_index[index], "function": {"arguments": delta.get("partial_json", "")}}
            return [self._chunk({"tool_calls": [call]})]
        return []
