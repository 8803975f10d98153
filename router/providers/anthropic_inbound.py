"""The reverse direction: clients that speak Anthropic's Messages API, served by any chain.

A ``POST /v1/messages`` body becomes an OpenAI chat-completions body (system → a system message,
``tool_result`` blocks → ``tool`` messages, ``tool_use`` → ``tool_calls``, images → ``image_url``
parts), the chain answers it in OpenAI shapes, and the answer goes back as a Message or as the
Messages SSE events. Errors use Anthropic's ``{"type": "error", "error": {...}}`` body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from inferflux.router.errors import ErrorCode, UpstreamError

Body = dict[str, Any]
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
ERROR_TYPES = {
    ErrorCode.RATE_LIMITED: "rate_limit_error",
    ErrorCode.OVERLOADED: "overloaded_error",
    ErrorCode.AUTH: "authentication_error",
    ErrorCode.INVALID_TOKEN: "authentication_error",
    ErrorCode.INSUFFICIENT_SCOPE: "permission_error",
    ErrorCode.NOT_FOUND: "not_found_error",
    ErrorCode.BAD_REQUEST: "invalid_request_error",
    ErrorCode.CONTEXT_LENGTH: "invalid_request_error",
    ErrorCode.CONTENT_FILTERED: "invalid_request_error",
    ErrorCode.INSUFFICIENT_QUOTA: "rate_limit_error",
    ErrorCode.GUARDRAIL_BLOCKED: "invalid_request_error",
    ErrorCode.CONFLICT: "invalid_request_error",
}


def error_document(error: UpstreamError) -> tuple[int, Body]:
    """Status and Anthropic error body for ``error`` (overload is Anthropic's 529)."""
    status = 529 if error.code is ErrorCode.OVERLOADED else error.status
    kind = ERROR_TYPES.get(error.code, "api_error")
    return status, {"type": "error", "error": {"type": kind, "message": error.message}}


def _part(block: Body) -> Body:
    """A text or image block as an OpenAI content part."""
    if block.get("type") == "text":
        return {"type": "text", "text": block.get("text", "")}
    source = block.get("source") or {}
    if block.get("type") == "image" and source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        return {"type": "image_url", "image_url": {"url": url}}
    if block.get("type") == "image" and source.get("type") == "url":
        return {"type": "image_url", "image_url": {"url": source.get("url")}}
    raise UpstreamError(ErrorCode.BAD_REQUEST, f"content block type {block.get('type')!r} is not supported")


def _text(content: Any) -> str:
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
    return "".join(block.get("text", "") for block in blocks if block.get("type") == "text")


def _messages(message: Body) -> list[Body]:
    """One Messages turn as OpenAI messages (tool results become separate ``tool`` messages)."""
    role, content = message.get("role"), message.get("content")
    if role == "system":  # newer API versions also allow system turns inside messages
        return [{"role": "system", "content": _text(content)}]
    if role not in ("user", "assistant"):
        raise UpstreamError(
            ErrorCode.BAD_REQUEST, "messages[].role must be user, assistant or system", param="messages"
        )
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    blocks: list[Body] = content or []
    tools = [
        {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": _text(block.get("content"))}
        for block in blocks
        if block.get("type") == "tool_result"
    ]
    calls = [
        {
            "id": b.get("id"),
            "type": "function",
            "function": {"name": b.get("name"), "arguments": json.dumps(b.get("input"))},
        }
        for b in blocks
        if b.get("type") == "tool_use"
    ]
    parts = [_part(block) for block in blocks if block.get("type") not in ("tool_result", "tool_use")]
    out: list[Body] = tools
    if role == "assistant":
        reply: Body = {"role": "assistant", "content": _text(parts) or None}
        return [*out, {**reply, "tool_calls": calls} if calls else reply]
    return [*out, {"role": "user", "content": parts}] if parts else out


def openai_request(body: Body) -> Body:
    """An Anthropic Messages request as an OpenAI chat-completions request."""
    if not isinstance(body.get("max_tokens"), int):
        raise UpstreamError(ErrorCode.BAD_REQUEST, "max_tokens is required", param="max_tokens")
    messages: list[Body] = []
    if body.get("system"):
        messages.append({"role": "system", "content": _text(body["system"])})
    for message in body.get("messages") or []:
        messages.extend(_messages(message))
    request: Body = {"model": body.get("model"), "messages": messages, "max_tokens": body["max_tokens"]}
    for name in ("temperature", "top_p", "stream"):
        if body.get(name) is not None:
            request[name] = body[name]
    if body.get("stop_sequences"):
        request["stop"] = body["stop_sequences"]
    if body.get("tools"):
        request["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t.get("description", ""),
                    "parameters": t.get("input_schema"),
                },
            }
            for t in body["tools"]
        ]
    choice = body.get("tool_choice") or {}
    kinds = {"auto": "auto", "any": "required", "none": "none"}
    if choice.get("type") in kinds:
        request["tool_choice"] = kinds[choice["type"]]
    elif choice.get("type") == "tool":
        request["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    if body.get("stream"):
        request["stream_options"] = {"include_usage": True}
    return request


def message(completion: Body, model: str) -> Body:
    """An OpenAI chat completion as an Anthropic Message."""
    choice = (completion.get("choices") or [{}])[0]
    reply = choice.get("message") or {}
    content: list[Body] = [{"type": "text", "text": reply["content"]}] if reply.get("content") else []
    for call in reply.get("tool_calls") or []:
        function = call.get("function", {})
        tool = {"type": "tool_use", "id": call.get("id"), "name": function.get("name")}
        content.append({**tool, "input": json.loads(function.get("arguments") or "{}")})
    usage = completion.get("usage") or {}
    return {
        "id": "msg_" + str(completion.get("id", "")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": {
            "input_tokens": usage.get("prompt_tokens", 0),
            "output_tokens": usage.get("completion_tokens", 0),
        },
    }


@dataclass
class EventMapper:
    """OpenAI chunks to Messages stream events; it tracks which content block is open."""

    model: str
    started: bool = False
    block: int = -1
    block_kind: str = ""
    tools: dict[int, int] = field(default_factory=dict)
    stop_reason: str = "end_turn"
    output_tokens: int = 0

    def _open(self, kind: str, block: Body) -> list[tuple[str, Body]]:
        events = self._close()
        self.block += 1
        self.block_kind = kind
        return [*events, ("content_block_start", {"index": self.block, "content_block": block})]

    def _close(self) -> list[tuple[str, Body]]:
        if not self.block_kind:
            return []
        self.block_kind = ""
        return [("content_block_stop", {"index": self.block})]

    def events(self, chunk: Body) -> list[tuple[str, Body]]:
        """The events for one OpenAI chunk."""
        out: list[tuple[str, Body]] = []
        if not self.started:
            self.started = True
            start = {
                "id": "msg_" + str(chunk.get("id", "")),
                "type": "message",
                "role": "assistant",
                "model": self.model,
            }
            usage = {"input_tokens": 0, "output_tokens": 0}
            out.append(
                ("message_start", {"message": {**start, "content": [], "stop_reason": None, "usage": usage}})
            )
        if chunk.get("usage"):
            self.output_tokens = chunk["usage"].get("completion_tokens", 0)
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self.block_kind != "text":
                    out += self._open("text", {"type": "text", "text": ""})
                out.append(
                    (
                        "content_block_delta",
                        {"index": self.block, "delta": {"type": "text_delta", "text": delta["content"]}},
                    )
                )
            for call in delta.get("tool_calls") or []:
                out += self._tool_delta(call)
            if choice.get("finish_reason"):
                self.stop_reason = STOP_REASONS.get(choice["finish_reason"], "end_turn")
        return out

    def _tool_delta(self, call: Body) -> list[tuple[str, Body]]:
        out: list[tuple[str, Body]] = []
        function = call.get("function") or {}
        if call.get("index", 0) not in self.tools:
            out += self._open(
                "tool_use",
                {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": {}},
            )
            self.tools[call.get("index", 0)] = self.block
        if function.get("arguments"):
            delta = {"type": "input_json_delta", "partial_json": function["arguments"]}
            out.append(("content_block_delta", {"index": self.tools[call.get("index", 0)], "delta": delta}))
        return out

    def finish(self) -> list[tuple[str, Body]]:
        """The closing events once the OpenAI stream has ended."""
        delta = {
            "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": self.output_tokens},
        }
        return [*self._close(), ("message_delta", delta), ("message_stop", {})]
