"""Plain ASGI primitives for the hot path: reading a body, answering JSON, watching for disconnects.

The router speaks raw ASGI instead of a framework so that a request costs a handful of function
calls; these helpers are the whole vocabulary the handlers need.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from inferflux.router.errors import ErrorCode, UpstreamError, error_bytes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON = (b"content-type", b"application/json")
SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
MAX_BODY = 16 * 1024 * 1024


class ClientGone(Exception):
    """The client disconnected before the response was complete."""


async def read_body(receive: Receive, limit: int = MAX_BODY) -> bytes:
    """The whole request body; a body over ``limit`` bytes is a bad request, a disconnect ends it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise UpstreamError(ErrorCode.BAD_REQUEST, f"request body over {limit} bytes", status=413)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """The request body as JSON, or a 400 in the OpenAI error shape."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(ErrorCode.BAD_REQUEST, "request body is not valid JSON") from None


async def send_bytes(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A complete response in two messages, with its ``content-length`` (not chunked: the server
    then writes head and body in one go, router/server_protocol.py)."""
    length = (b"content-length", b"%d" % len(body))
    await send({"type": "http.response.start", "status": status, "headers": [*(headers or [JSON]), length]})
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send, status: int, document: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A JSON response."""
    await send_bytes(send, status, orjson.dumps(document), [JSON, *(headers or [])])


async def send_error(
    send: Send, error: UpstreamError, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """An OpenAI-shaped error response, with ``retry-after`` when the error knows it."""
    body = error_bytes(error.code, error.message, param=error.param)
    await send_bytes(send, error.status, body, [JSON, *error.headers(), *(headers or [])])


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (``name`` in lower case)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def until_disconnect(receive: Receive) -> None:
    """Return when the client goes away (the body must already have been read)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


#: How long a request runs before a watcher looks out for its client leaving (`cancel_on_disconnect`).
WATCH_AFTER_SECONDS = 0.1


async def cancel_on_disconnect(receive: Receive, work: Awaitable[None]) -> bool:
    """Run ``work`` and cancel it once the client disconnects; True when it was cancelled.

    This is what makes a dropped client stop the upstream request at once instead of when the
    next chunk fails to write. ``work`` runs in the calling task (a new task would cost an extra
    trip through a busy event loop before the request even starts); a watcher task cancels it.
    The watcher starts after `WATCH_AFTER_SECONDS`: most short answers are out by then, and a
    watcher costs a task, a wait and a cancellation (about 7 us, a few per cent of a short proxied
    request), so a client that leaves in the first 0.1 s is noticed up to 0.1 s late.
    """
    current = asyncio.current_task()
    assert current is not None
    client_left = False
    watcher: asyncio.Task[None] | None = None

    async def watch() -> None:
        nonlocal client_left
        await until_disconnect(receive)
        client_left = True
        current.cancel()

    def start_watching() -> None:
        nonlocal watcher
        watcher = asyncio.ensure_future(watch())

    timer = current.get_loop().call_later(WATCH_AFTER_SECONDS, start_watching)
    try:
        await work
    except (asyncio.CancelledError, ClientGone):
        if not client_left:
            raise
        current.uncancel()
        return True
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()
    return False
