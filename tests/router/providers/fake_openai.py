"""A fake OpenAI API (also Groq's and any OpenAI-compatible server's) per the published reference.

POST /v1/chat/completions (JSON and SSE ``data:`` chunks ending in ``data: [DONE]``) and
POST /v1/embeddings, with request validation (bearer key, model, messages and their roles and
parts, tools), and errors in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``.
The reply echoes the last user text so tests can see what the upstream received.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web
from fake_common import Fake, Fault, hang, sse

ROLES = {"system", "developer", "user", "assistant", "tool"}


def error(
    status: int, message: str, kind: str, code: str | None = None, param: str | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status)


def invalid(message: str, param: str) -> web.Response:
    return error(400, message, "invalid_request_error", None, param)


def validate_chat(body: Any) -> web.Response | None:
    """A 400 for a body the real API would refuse, else None."""
    if not isinstance(body, dict):
        return invalid("body must be a JSON object", "body")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return invalid("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return invalid("messages must be a non-empty array", "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return invalid(f"messages[{index}].role is invalid", f"messages[{index}].role")
        content = message.get("content")
        if content is None and not (message["role"] == "assistant" and message.get("tool_calls")):
            return invalid(f"messages[{index}].content is required", f"messages[{index}].content")
        if isinstance(content, list):
            for part in content:
                if part.get("type") not in ("text", "image_url"):
                    return invalid(f"messages[{index}].content part type is invalid", f"messages[{index}]")
        if message["role"] == "tool" and not message.get("tool_call_id"):
            return invalid("tool messages need tool_call_id", f"messages[{index}].tool_call_id")
    for tool in body.get("tools") or []:
        if tool.get("type") != "function" or not tool.get("function", {}).get("name"):
            return invalid("tools[].function.name is required", "tools")
    if "stream" in body and not isinstance(body["stream"], bool):
        return invalid("stream must be a boolean", "stream")
    return None


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message["role"] == "user":
            content = message["content"]
            if isinstance(content, str):
                return content
            return " ".join(part.get("text", "") for part in content if part.get("type") == "text")
    return ""


def reply(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The echoed text, and a tool call when the client demands one."""
    choice = body.get("tool_choice")
    if body.get("tools") and (choice == "required" or isinstance(choice, dict)):
        name = (
            choice["function"]["name"] if isinstance(choice, dict) else body["tools"][0]["function"]["name"]
        )
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": name, "arguments": '{"city": "Paris"}'},
        }
        return "", [call]
    return "echo: " + last_user_text(body["messages"]), []


def app(fake: Fake) -> web.Application:
    async def authorised(request: web.Request) -> web.Response | None:
        if fake.key is not None and request.headers.get("Authorization") != f"Bearer {fake.key}":
            return error(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key")
        return None

    async def scripted(request: web.Request) -> tuple[Fault | None, web.Response | None]:
        fault = fake.next_fault()
        await hang(fault)
        if fault is not None and fault.status:
            return fault, web.json_response(fault.body, status=fault.status, headers=fault.headers)
        return fault, None

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        fake.requests.append((dict(request.headers), body))
        refusal = await authorised(request) or validate_chat(body)
        if refusal is not None:
            return refusal
        fault, scripted_error = await scripted(request)
        if scripted_error is not None:
            return scripted_error
        text, calls = reply(body)
        base = {"id": "chatcmpl-1", "created": int(time.time()), "model": body["model"]}
        if not body.get("stream"):
            message = {
                "role": "assistant",
                "content": text or None,
                **({"tool_calls": calls} if calls else {}),
            }
            finish = "tool_calls" if calls else "stop"
            choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
            return web.json_response(
                {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
        return await stream(request, body, base, text, calls, fault)

    async def stream(
        request: web.Request,
        body: dict[str, Any],
        base: dict[str, Any],
        text: str,
        calls: list[dict[str, Any]],
        fault: Fault | None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return sse(None, json.dumps({**base, "object": "chat.completion.chunk", "choices": [choice]}))

        pieces = [chunk({"role": "assistant", "content": ""})]
        pieces += [chunk({"content": word}) for word in text.split(" ") if text]
        pieces += [chunk({"tool_calls": [{**call, "index": 0}]}) for call in calls]
        pieces.append(chunk({}, "tool_calls" if calls else "stop"))
        for index, piece in enumerate(pieces):
            if fault is not None and fault.break_stream_after and index == fault.break_stream_after:
                failure = {"error": {"message": "server had an error", "type": "server_error", "code": None}}
                await response.write(sse("error", json.dumps(failure)))
                return response
            await response.write(piece)
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
            payload = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            await response.write(sse(None, json.dumps(payload)))
        await response.write(b"data: [DONE]\n\n")
        return response

    async def embeddings(request: web.Request) -> web.Response:
        body = await request.json()
        fake.requests.append((dict(request.headers), body))
        refusal = await authorised(request)
        if refusal is not None:
            return refusal
        _, scripted_error = await scripted(request)
        if scripted_error is not None:
            return scripted_error
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(inputs, list) or not inputs or not all(isinstance(item, str) for item in inputs):
            return invalid("input must be a string or an array of strings", "input")
        if body.get("encoding_format", "float") not in ("float", "base64"):
            return invalid("encoding_format must be float or base64", "encoding_format")
        data = [
            {"object": "embedding", "index": index, "embedding": [float(len(item)), 0.5, -0.25]}
            for index, item in enumerate(inputs)
        ]
        usage = {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}
        return web.json_response({"object": "list", "data": data, "model": body.get("model"), "usage": usage})

    application = web.Application()
    application.router.add_post("/v1/chat/completions", chat)
    application.router.add_post("/v1/embeddings", embeddings)
    return application
