"""A realtime client for tests and the benchmark: open a session, connect its WebSocket, read frames."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson


class RealtimeClient:
    """One session of ``kind`` on the router at ``base_url``, over ``session`` (aiohttp)."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, kind: str = "voice") -> None:
        self.http = http
        self.base_url = base_url
        self.kind = kind
        self.session_id = ""
        self.resume_token = ""
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.frames: list[dict[str, Any]] = []
        self.last_seq = 0

    async def open(self, headers: dict[str, str] | None = None, **options: Any) -> dict[str, Any]:
        """Create the session and connect; the session POST's answer."""
        answer = await self._post_session(options, headers)
        self.session_id, self.resume_token = answer["session_id"], answer["resume_token"]
        await self.connect(answer["ticket"])
        return answer

    async def _post_session(self, document: dict[str, Any], headers: dict[str, str] | None) -> dict[str, Any]:
        url = f"{self.base_url}/api/v1/{self.kind}/session"
        async with self.http.post(url, json=document, headers=headers) as response:
            assert response.status == 200, await response.text()
            answer: dict[str, Any] = await response.json()
            return answer

    async def connect(self, ticket: str, after: int = 0) -> dict[str, Any]:
        """Connect with ``ticket``; the ``ready`` frame."""
        url = f"{self.base_url.replace('http', 'ws', 1)}/api/v1/{self.kind}/ws?ticket={ticket}&after={after}"
        self.ws = await self.http.ws_connect(url, autoping=True)
        ready = await self.receive()
        assert ready["type"] == "ready", ready
        return ready

    async def reconnect(self, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """A new ticket with the resume token, and a connection reading on after ``last_seq``."""
        answer = await self._post_session(
            {"session_id": self.session_id, "resume_token": self.resume_token}, headers
        )
        return await self.connect(answer["ticket"], self.last_seq)

    async def send(self, frame: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_str(orjson.dumps(frame).decode())

    async def receive(self, within: float = 30.0) -> dict[str, Any]:
        """The next frame (``{"type": "closed", "code": ...}`` once the server closed)."""
        assert self.ws is not None
        message = await self.ws.receive(within)
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return {"type": "closed", "code": self.ws.close_code}
        assert message.type == aiohttp.WSMsgType.TEXT, message
        frame: dict[str, Any] = orjson.loads(message.data)
        self.frames.append(frame)
        self.last_seq = max(self.last_seq, frame.get("seq", 0))
        return frame

    async def until(self, kind: str, within: float = 60.0) -> dict[str, Any]:
        """Frames up to and including the first of ``kind`` (fails on close or after ``within`` s)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            # Checked here too: frames of other kinds may keep coming, and each resets receive's wait.
            assert loop.time() < deadline, f"no {kind} frame within {within} s"
            frame = await self.receive(max(0.1, deadline - loop.time()))
            if frame["type"] == kind:
                return frame
            assert frame["type"] != "closed", f"closed ({frame['code']}) waiting for {kind}"

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
