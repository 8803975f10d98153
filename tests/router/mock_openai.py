"""A fast fake OpenAI server for the router's tests and benchmark (a stand-in for runtime pods).

Raw asyncio HTTP/1.1 with keep-alive, so that it is never the bottleneck of a benchmark. A stream
sends ``max_tokens`` chunks (default 16), ``delay_ms`` apart (server default, or the request's
``mock_delay_ms`` field). Knobs for failure tests: ``fail_status`` answers every request with that
status, ``hang`` never answers, ``stall_after`` stops a stream after that many chunks, ``break_after``
drops the connection after that many (a replica dying mid-stream); ``replies``
scripts the text of every answer (one chunk per piece when streamed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class MockState:
    """What the server does, and what it saw."""

    name: str = "mock"
    delay_ms: float = 0.0
    fail_status: int = 0
    hang: bool = False
    stall_after: int = -1
    break_after: int = -1
    requests: int = 0
    connections: int = 0
    request_ids: list[str] = field(default_factory=list)
    traceparents: list[str] = field(default_factory=list)
    priorities: list[str] = field(default_factory=list)  # x-inferflux-priority, in arrival order
    bodies: list[dict[str, Any]] = field(default_factory=list)
    cancelled: int = 0
    active_streams: int = 0
    keep_bodies: bool = True
    replies: list[str] = field(default_factory=list)  # an answer's text pieces (one chunk each streamed)
    answer_delay_ms: float = 0.0  # a whole (non-streamed) answer waits this long


def _chunk(index: int, text: str, chat: bool, model: str, finish: str | None = None) -> bytes:
    if chat:
        choice: dict[str, Any] = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
        kind = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text, "finish_reason": finish}
        kind = "text_completion"
    event = {"id": f"cmpl-{index}", "object": kind, "created": 0, "model": model, "choices": [choice]}
    return b"data: " + orjson.dumps(event) + b"\n\n"


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class MockOpenAI:
    """The server; ``await start()`` binds a free port on 127.0.0.1."""

    def __init__(self, state: MockState | None = None) -> None:
        self.state = state or MockState()
        self.server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> MockOpenAI:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port, backlog=1024)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.state.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                await self._answer(method, path, headers, body, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter
    ) -> None:
        state = self.state
        state.requests += 1
        if "x-request-id" in headers and state.keep_bodies:
            state.request_ids.append(headers["x-request-id"])
        if "traceparent" in headers and state.keep_bodies:
            state.traceparents.append(headers["traceparent"])
        if "x-inferflux-priority" in headers and state.keep_bodies:
            state.priorities.append(headers["x-inferflux-priority"])
        if state.hang:
            await asyncio.sleep(3600)
        if state.fail_status:
            payload = orjson.dumps({"error": {"message": "mock failure", "type": "api_error", "code": None}})
            self._respond(writer, state.fail_status, payload)
            await writer.drain()
            return
        if method == "GET" and path == "/v1/models":
            self._respond(writer, 200, orjson.dumps({"object": "list", "data": [{"id": state.name}]}))
            return
        document = orjson.loads(body) if body else {}
        if state.keep_bodies:
            state.bodies.append(document)
        model = document.get("model", state.name)
        if path == "/v1/embeddings":
            answer = {
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                "model": model,
                "usage": _usage(2, 0),
            }
            self._respond(writer, 200, orjson.dumps(answer))
            return
        chat = path == "/v1/chat/completions"
        chunks = int(document.get("max_tokens") or 16)
        if document.get("stream"):
            await self._stream(writer, document, chat, model, chunks)
            return
        if state.answer_delay_ms:
            await asyncio.sleep(state.answer_delay_ms / 1000)
        text = "".join(state.replies) if state.replies else "".join(f"t{i} " for i in range(chunks))
        choice: dict[str, Any] = (
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}
            if chat
            else {"index": 0, "text": text, "finish_reason": "length"}
        )
        answer = {
            "id": "cmpl-1",
            "object": "chat.completion" if chat else "text_completion",
            "created": 0,
            "model": model,
            "choices": [choice],
            "usage": _usage(3, chunks),
        }
        self._respond(writer, 200, orjson.dumps(answer))

    def _respond(self, writer: asyncio.StreamWriter, status: int, payload: bytes) -> None:
        writer.write(
            b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (status, len(payload), payload)
        )

    async def _stream(
        self, writer: asyncio.StreamWriter, document: dict[str, Any], chat: bool, model: str, chunks: int
    ) -> None:
        state = self.state
        delay = float(document.get("mock_delay_ms", state.delay_ms)) / 1000
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        state.active_streams += 1

        def piece(data: bytes) -> bytes:
            return b"%x\r\n%s\r\n" % (len(data), data)

        pieces = state.replies or [f"t{index} " for index in range(chunks)]
        try:
            for index, text in enumerate(pieces):
                if delay:
                    await asyncio.sleep(delay)
                if index == state.stall_after:
                    await asyncio.sleep(3600)
                if index == state.break_after:
                    writer.transport.abort()
                    raise ConnectionResetError
                writer.write(piece(_chunk(index, text, chat, model)))
                await writer.drain()
                if writer.is_closing():
                    raise ConnectionResetError
            tail = _chunk(len(pieces), "", chat, model, "length")
            if (document.get("stream_options") or {}).get("include_usage"):
                usage = {
                    "id": "u",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": model,
                    "choices": [],
                    "usage": _usage(3, chunks),
                }
                tail += b"data: " + orjson.dumps(usage) + b"\n\n"
            writer.write(piece(tail + b"data: [DONE]\n\n") + b"0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            state.cancelled += 1
            raise ConnectionResetError from None
        finally:
            state.active_streams -= 1


def main() -> None:
    """``python mock_openai.py PORT [DELAY_MS]``: serve until killed (used by the benchmark)."""
    import sys

    import uvloop

    port = int(sys.argv[1])
    state = MockState(delay_ms=float(sys.argv[2]) if len(sys.argv) > 2 else 0.0, keep_bodies=False)

    async def run() -> None:
        mock = await MockOpenAI(state).start(port)
        print(json.dumps({"port": mock.port, "started": time.time()}), flush=True)
        await asyncio.Event().wait()

    uvloop.run(run())


if __name__ == "__main__":
    main()
