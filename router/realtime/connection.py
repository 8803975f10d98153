"""One realtime WebSocket over raw ASGI: limits on what comes in, backpressure on what goes out.

Incoming: every frame must be a JSON text frame of at most ``max_frame_bytes`` (uvicorn enforces
the same bound on the wire, ``ws_max_size``), and the client may send at most ``rate`` frames per
second (bursts of one second's worth). Outgoing: the connection reads the session's bounded
outbox; it never queues frames of its own, so a slow client costs no memory. A client that falls
behind the outbox, or does not take a frame within ``send_timeout`` seconds, is closed with 1013.
WebSocket pings (every ``INFERFLUX_REALTIME_PING_SECONDS``) are uvicorn's, at the protocol level.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from inferflux.router.asgi import Receive, Send
from inferflux.router.realtime.close_codes import CloseCode
from inferflux.router.realtime.rate import TokenBucket
from inferflux.router.realtime.sessions import Fallen, Session


class Closing(Exception):
    """The connection must end with ``code`` (and a short ``reason``, never client data)."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    """Per-connection bounds."""

    max_frame_bytes: int = 65536
    frames_per_second: float = 100.0
    send_timeout: float = 10.0
    poll_seconds: float = 1.0  # how often an idle sender checks it still owns the session


FrameHandler = Callable[[Session, str], Awaitable[None]]


class Connection:
    """A WebSocket attached to a session, after it was accepted."""

    _ids = 0

    def __init__(self, receive: Receive, send: Send, session: Session, limits: Limits) -> None:
        Connection._ids += 1
        self.id = Connection._ids
        self.receive = receive
        self.send = send
        self.session = session
        self.limits = limits
        self.bucket = TokenBucket(limits.frames_per_second, max(1.0, limits.frames_per_second))
        self.closed = False

    async def close(self, code: CloseCode, reason: str = "") -> None:
        """Send the close frame once (a client already gone is fine)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):  # the peer may be gone already
            await self.send({"type": "websocket.close", "code": int(code), "reason": reason[:120]})

    async def send_json(self, document: dict[str, Any]) -> None:
        """One frame that is not the session's (``ready``), sent at once."""
        await self.send({"type": "websocket.send", "text": orjson.dumps(document).decode()})

    async def next_text(self) -> str | None:
        """The next text frame within the limits, None when the client left; `Closing` otherwise."""
        message = await self.receive()
        kind = message["type"]
        if kind == "websocket.disconnect":
            self.closed = True
            return None
        if kind != "websocket.receive":
            return None
        if not self.bucket.take():
            raise Closing(CloseCode.POLICY_VIOLATION, "frame rate over the limit")
        text = message.get("text")
        if text is None:
            raise Closing(CloseCode.UNSUPPORTED_DATA, "binary frames are not supported; send JSON text")
        if len(text) > self.limits.max_frame_bytes:  # characters: at least as many bytes
            raise Closing(CloseCode.TOO_BIG, "frame over the size limit")
        return str(text)

    async def pump(self, after: int) -> None:
        """Send the session's frames after ``after`` as they come, until replaced or too slow."""
        session, limits = self.session, self.limits
        cursor = after
        while session.connection == self.id:
            try:
                frames = await session.outbox.wait_after(cursor, limits.poll_seconds)
            except Fallen:
                raise Closing(CloseCode.SLOW_CONSUMER, "fell behind the session buffer; resume") from None
            for seq, frame in frames:
                try:
                    await asyncio.wait_for(
                        self.send({"type": "websocket.send", "text": frame.decode()}), limits.send_timeout
                    )
                except TimeoutError:
                    raise Closing(CloseCode.SLOW_CONSUMER, "client too slow to read") from None
                cursor = seq
        raise Closing(CloseCode.REPLACED, "another connection took over the session")
