"""Server-sent events out of realtime sessions: ``voice:stream`` and ``xr:stream``.

Both send a ``heartbeat`` event whenever ``heartbeat`` seconds pass without another, so a client
(or a proxy) never sees a silent gap longer than that, even while the model is still prefilling.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from inferflux.router.asgi import SSE_HEADERS, Send
from inferflux.router.errors import UpstreamError
from inferflux.router.realtime.sessions import Fallen, Outbox
from inferflux.router.sse import frame

_END = object()


async def _start(send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})


async def _event(send: Send, body: bytes, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": more})


async def outbox_events(send: Send, outbox: Outbox, after: int, heartbeat: float) -> None:
    """The session's frames after ``after``, as events named by their type, until the client leaves."""
    await _start(send)
    cursor = after
    while True:
        try:
            frames = await outbox.wait_after(cursor, heartbeat)
        except Fallen:
            await _event(send, frame("error", {"code": "fallen_behind", "message": "resume later"}), False)
            return
        if not frames:
            await _event(send, frame("heartbeat", {"seq": cursor}))
            continue
        chunks = []
        for seq, body in frames:
            kind = body[9 : body.index(b'"', 9)].decode()  # b'{"type":"<kind>",...'
            chunks.append(b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, kind.encode(), body))
            cursor = seq
        await _event(send, b"".join(chunks))


async def answer_events(
    send: Send, pieces: AsyncIterator[str], heartbeat: float, final: dict[str, Any]
) -> None:
    """``partial`` events as ``pieces`` stream, heartbeats in the gaps, then ``final`` (``final`` plus
    the whole text). A refusal before the response started (no heartbeat was due yet) raises, so the
    client gets an HTTP error; after that it is an ``error`` event."""
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def produce() -> None:
        try:
            async for piece in pieces:
                queue.put_nowait(piece)
            queue.put_nowait(_END)
        except Exception as error:  # handed to the reader, which decides what the client sees
            queue.put_nowait(error)

    producer = asyncio.ensure_future(produce())
    started = False
    text: list[str] = []
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), heartbeat)
            except TimeoutError:
                if not started:
                    await _start(send)
                    started = True
                await _event(send, frame("heartbeat", {}))
                continue
            if isinstance(item, Exception):
                if not started:
                    raise item
                body = (
                    item.body() if isinstance(item, UpstreamError) else {"error": {"code": "upstream_error"}}
                )
                await _event(send, frame("error", body), False)
                return
            if not started:
                await _start(send)
                started = True
            if item is _END:
                await _event(send, frame("final", {**final, "text": "".join(text)}), False)
                return
            text.append(item)
            await _event(send, frame("partial", {"text": item}))
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer
