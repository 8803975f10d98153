"""A fake Anthropic Messages API per the published reference (docs.anthropic.com/en/api/messages).

POST /v1/messages needs the ``anthropic-version`` header and the key (``x-api-key``, or a bearer
token as newer SDKs send it); it validates ``model``, ``max_tokens``, alternating user/assistant
turns, content blocks (text, image with base64 or url source, tool_use, tool_result answering an
earlier tool_use), ``system``, ``tools`` (name and ``input_schema``) and ``tool_choice``. It answers
a Message, or the SSE events message_start, content_block_start, ping, content_block_delta,
content_block_stop, message_delta and message_stop; errors are ``{"type": "error", "error": {...}}``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web
from fake_common import Fake, Fault, hang, sse

MEDIA_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"type": "error", "error": {"type": kind, "message": message}}, status=status)


def invalid(message: str) -> web.Response:
    return error(400, "invalid_request_error", message)


def check_block(block: Any, role: str, tool_ids: set[str]) -> str | None:
    """Why a content block is invalid for ``role``, or None."""
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "text":
        return None if isinstance(block.get("text"), str) else "text blocks need text"
    if kind == "image" and role == "user":
        source = block.get("source") or {}
        if source.get("type") == "base64":
            ok = source.get("media_type") in MEDIA_TYPES and bool(source.get("data"))
            return None if ok else "image.source: media_type and data are required"
        return None if source.get("type") == "url" and source.get("url") else "image.source is invalid"
    if kind == "tool_use" and role == "assistant":
        if not block.get("id") or not isinstance(block.get("input"), dict):
            return "tool_use blocks need id and an input object"
        tool_ids.add(block["id"])
        return None
    if kind == "tool_result" and role == "user":
        return None if block.get("tool_use_id") in tool_ids else "tool_result must answer an earlier tool_use"
    return f"content block type {kind!r} is not allowed in a {role} message"


def validate(body: Any) -> str | None:
    """Why the real API would refuse ``body``, or None."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return "model: field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    tool_ids: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{index}.role: must be user or assistant"
        if index and messages[index - 1]["role"] == role:
            return "messages: roles must alternate between user and assistant"
        content = message.get("content")
        for block in [{"type": "text", "text": content}] if isinstance(content, str) else content:
            problem = check_block(block, role, tool_ids)
            if problem:
                return f"messages.{index}.content: {problem}"
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        return "system: must be a string or text blocks"
    for tool in body.get("tools") or []:
        if (
            not TOOL_NAME.match(tool.get("name", ""))
            or (tool.get("input_schema") or {}).get("type") != "object"
        ):
            return "tools: name and an object input_schema are required"
    choice = body.get("tool_choice")
    if choice is not None and choice.get("type") not in ("auto", "any", "tool", "none"):
        return "tool_choice.type is invalid"
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        return "temperature: must be between 0 and 1"
    return None


def answer(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Content blocks: a tool call when forced, else an echo of the last user text."""
    choice = body.get("tool_choice") or {}
    if body.get("tools") and choice.get("type") in ("any", "tool"):
        name = choice.get("name") or body["tools"][0]["name"]
        return [{"type": "tool_use", "id": "toolu_1", "name": name, "input": {"city": "Paris"}}]
    content = body["messages"][-1]["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    text = " ".join(block["text"] for block in blocks if block["type"] == "text")
    return [{"type": "text", "text": "echo: " + text}]


def app(fake: Fake) -> web.Application:
    async def messages(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        fake.requests.append((dict(request.headers), body))
        if not request.headers.get("anthropic-version"):
            return invalid("anthropic-version: header is required")
        given = request.headers.get("x-api-key") or request.headers.get("Authorization", "").removeprefix(
            "Bearer "
        )
        if given != fake.key:
            return error(401, "authentication_error", "invalid x-api-key")
        problem = validate(body)
        if problem:
            return invalid(problem)
        fault = fake.next_fault()
        await hang(fault)
        if fault is not None and fault.status:
            return web.json_response(fault.body, status=fault.status, headers=fault.headers)
        content = answer(body)
        stop = "tool_use" if content[0]["type"] == "tool_use" else "end_turn"
        usage = {"input_tokens": 7, "output_tokens": 4}
        message = {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"]}
        if not body.get("stream"):
            return web.json_response(
                {**message, "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage}
            )
        return await stream(request, message, content, stop, fault)

    async def stream(
        request: web.Request,
        message: dict[str, Any],
        content: list[dict[str, Any]],
        stop: str,
        fault: Fault | None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 7, "output_tokens": 1},
        }
        events: list[tuple[str, dict[str, Any]]] = [("message_start", {"message": start}), ("ping", {})]
        for index, block in enumerate(content):
            if block["type"] == "text":
                events.append(
                    ("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
                )
                for word in block["text"].split(" "):
                    delta = {"type": "text_delta", "text": word + " "}
                    events.append(("content_block_delta", {"index": index, "delta": delta}))
            else:
                events.append(
                    ("content_block_start", {"index": index, "content_block": {**block, "input": {}}})
                )
                raw = json.dumps(block["input"])
                for piece in (raw[: len(raw) // 2], raw[len(raw) // 2 :]):
                    delta = {"type": "input_json_delta", "partial_json": piece}
                    events.append(("content_block_delta", {"index": index, "delta": delta}))
            events.append(("content_block_stop", {"index": index}))
        events.append(
            (
                "message_delta",
                {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 4}},
            )
        )
        events.append(("message_stop", {}))
        for position, (name, data) in enumerate(events):
            if fault is not None and fault.break_stream_after and position == fault.break_stream_after:
                failure = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                await response.write(sse("error", json.dumps(failure)))
                return response
            await response.write(sse(name, json.dumps({"type": name, **data})))
        return response

    application = web.Application()
    application.router.add_post("/v1/messages", messages)
    return application
