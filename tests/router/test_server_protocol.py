"""The router's server protocol on a real uvicorn server and real sockets: a whole answer leaves in
one write, a stream's headers are never held back, ``100 Continue`` is not delayed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from inferflux.router.asgi import Message, Receive, Scope, Send, send_bytes
from inferflux.router.server_protocol import HEAD_LINES, HEAD_SENT, CoalescingProtocol, HeadHeld, head_lines

WRITES: list[bytes] = []


class Recording:
    """A transport that records what is written to it and passes everything through."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        WRITES.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class RecordingProtocol(CoalescingProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Recording(transport))  # type: ignore[arg-type]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/whole``: a JSON answer; ``/stream``: headers, then one chunk when ``RELEASE`` is set;
    ``/echo``: the request body back (read first, so ``Expect: 100-continue`` is answered)."""
    if scope["type"] != "http":
        return
    if scope["path"] in ("/whole", "/lines"):
        if scope["path"] == "/lines":
            lines = head_lines([(b"x-ratelimit-remaining-requests", b"7"), (b"x-request-id", b"r-1")])
            assert HEAD_LINES in scope
            assert lines is not None
            scope[HEAD_LINES] = lines
        await send_bytes(send, 200, b'{"answer": 42}')
    elif scope["path"] in ("/stream", "/stream-lines"):
        if scope["path"] == "/stream-lines":
            scope[HEAD_LINES] = b"x-request-id: r-2\r\n"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await RELEASE.wait()
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": False})
    else:
        message: Message = await receive()
        await send_bytes(send, 200, bytes(message.get("body", b"")))


RELEASE = asyncio.Event()


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[int]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http=RecordingProtocol, lifespan="off", log_level="error"
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn has no event for it
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head, await asyncio.wait_for(reader.readexactly(length), 5)


@pytest.fixture(autouse=True)
def fresh() -> None:
    WRITES.clear()
    global RELEASE
    RELEASE = asyncio.Event()


async def test_a_whole_answer_leaves_in_one_write_on_a_kept_alive_connection() -> None:
    async with serving() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(3):
            writer.write(b"GET /whole HTTP/1.1\r\nhost: t\r\n\r\n")
            head, body = await read_response(reader)
            assert head.startswith(b"HTTP/1.1 200")
            assert b"transfer-encoding" not in head.lower()
            assert body == b'{"answer": 42}'
        writer.close()
    assert len(WRITES) == 3  # one per response: head and body together
    assert all(write.startswith(b"HTTP/1.1 200") and write.endswith(b'{"answer": 42}') for write in WRITES)


async def test_a_streams_headers_go_out_before_its_first_event() -> None:
    async with serving() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /stream HTTP/1.1\r\nhost: t\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)  # the event is not released yet
        assert b"transfer-encoding: chunked" in head.lower()
        RELEASE.set()
        assert b"data: 1" in await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
        writer.close()


async def test_100_continue_is_answered_before_the_body_is_sent() -> None:
    async with serving() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n")
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        head, body = await read_response(reader)
        assert head.startswith(b"HTTP/1.1 200")
        assert body == b"hello"
        writer.close()


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class Cycle:
    response_started = True
    chunked_encoding: bool | None = False
    scope: dict[str, Any] = {}


async def test_head_lines_go_into_the_head_of_whole_answers_and_of_streams() -> None:
    async with serving() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /lines HTTP/1.1\r\nhost: t\r\n\r\n")
        head, body = await read_response(reader)
        assert b"\r\nx-ratelimit-remaining-requests: 7\r\nx-request-id: r-1\r\n\r\n" in head
        assert head.count(b"\r\n\r\n") == 1
        assert body == b'{"answer": 42}'
        writer.write(b"GET /whole HTTP/1.1\r\nhost: t\r\n\r\n")  # the next request has none
        head, _ = await read_response(reader)
        assert b"x-request-id" not in head
        writer.write(b"GET /stream-lines HTTP/1.1\r\nhost: t\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)  # before any event
        assert b"transfer-encoding: chunked\r\nx-request-id: r-2\r\n\r\n" in head
        RELEASE.set()
        writer.close()


def test_head_lines_refuse_what_would_break_the_head() -> None:
    assert head_lines([(b"a", b"1"), (b"b", b"2")]) == b"a: 1\r\nb: 2\r\n"
    assert head_lines([]) == b""
    assert head_lines([(b"x-request-id", b"r\r\nset-cookie: stolen")]) is None
    assert head_lines([(b"x-request-id", b"r\nx: y")]) is None
    assert head_lines([(b"x-request-id", b"r\rx")]) is None
    assert head_lines([(b"x-request-id", b"r\x00")]) is None


def test_a_held_head_goes_out_before_the_connection_closes() -> None:
    transport = FakeTransport()
    held = HeadHeld(transport, Cycle())  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    assert transport.written == []
    held.close()
    assert transport.written == [b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"]
    assert transport.closed
    assert held.state == HEAD_SENT


async def test_send_bytes_declares_the_length() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await send_bytes(send, 201, b"12345")
    assert (b"content-length", b"5") in sent[0]["headers"]
    assert sent[1]["body"] == b"12345"


def test_the_cycle_is_let_go_once_its_head_is_written() -> None:
    """No reference cycle outlives the head, so a finished request is freed at once, not by a
    later garbage collection."""
    held = HeadHeld(FakeTransport(), Cycle())  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    held.write(b"{}")
    assert held.cycle is None
