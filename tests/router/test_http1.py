"""The lean HTTP/1.1 upstream client against hand-written server answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from inferflux.router.http1 import Pool, ProtocolError

Answer = Callable[[int], bytes]


@pytest.fixture
async def server() -> AsyncIterator[Callable[[Answer], asyncio.Future[str]]]:
    """``await server(answer)`` serves ``answer(n)`` to the n-th request and returns its base URL."""
    servers: list[asyncio.Server] = []

    async def start(answer: Answer, close_after: bool = False) -> str:
        count = 0
        state = {"connections": 0}

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal count
            state["connections"] += 1
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    await reader.readexactly(length)
                    writer.write(answer(count))
                    count += 1
                    await writer.drain()
                    if close_after:
                        break
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            writer.close()

        srv = await asyncio.start_server(serve, "127.0.0.1", 0)
        servers.append(srv)
        port = srv.sockets[0].getsockname()[1]
        start.state = state  # type: ignore[attr-defined]
        return f"http://127.0.0.1:{port}/v1/x"

    yield start  # type: ignore[misc]
    for srv in servers:
        srv.close()


async def test_content_length_body_and_reuse(server) -> None:
    url = await server(
        lambda n: (
            b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{"n":%d}' % n
        )
    )
    pool = Pool(1.0)
    for n in range(3):
        response = await pool.post(url, b"{}", {"x-request-id": "r"})
        assert (response.status, response.content_type) == (200, "application/json")
        assert await response.read() == b'{"n":%d}' % n
        response.release()
    assert server.state["connections"] == 1
    pool.close()


async def test_chunked_body_with_extensions_and_trailers(server) -> None:
    body = b"4;ext=1\r\ndata\r\n3\r\n: x\r\n0\r\nx-trailer: 1\r\n\r\n"
    url = await server(lambda n: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    pool = Pool(1.0)
    response = await pool.post(url, b"", {})
    assert [chunk async for chunk in response.iter_any()] == [b"data: x"]  # arrived together
    assert response.at_eof()
    response.release()
    again = await pool.post(url, b"", {})
    assert await again.read() == b"data: x"
    assert server.state["connections"] == 1


async def test_close_delimited_body_is_read_to_the_end_and_not_reused(server) -> None:
    url = await server(
        lambda n: b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", close_after=True
    )
    pool = Pool(1.0)
    response = await pool.post(url, b"", {})
    assert await response.read() == b"until the end"
    assert not response.reusable
    response.release()
    second = await pool.post(url, b"", {})
    assert await second.read() == b"until the end"
    assert server.state["connections"] == 2


async def test_a_pooled_connection_closed_by_the_upstream_is_replaced(server) -> None:
    url = await server(lambda n: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close_after=True)
    pool = Pool(1.0)
    first = await pool.post(url, b"", {})
    assert await first.read() == b"ok"
    first.release()  # kept, but the server closes it
    await asyncio.sleep(0.05)
    second = await pool.post(url, b"", {})
    assert await second.read() == b"ok"


async def test_garbage_is_a_protocol_error(server) -> None:
    url = await server(lambda n: b"SMTP ready\r\n\r\n")
    with pytest.raises(ProtocolError):
        await Pool(1.0).post(url, b"", {})


async def test_refused_connection_raises_oserror() -> None:
    with pytest.raises(OSError):
        await Pool(1.0).post("http://127.0.0.1:9/v1/x", b"", {})


async def paced(parts: list[bytes], pause: float = 0.05) -> tuple[str, asyncio.Server]:
    """A server answering one request with ``parts``, written ``pause`` apart."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]))
        for part in parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(pause)
        writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    return f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/v1/x", srv


async def test_each_chunk_is_given_once_whole_as_soon_as_it_has_arrived() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    # A chunk split across writes (even inside its size line and its CRLF), two chunks in one write,
    # trailers split too: each piece comes out when its last chunk is whole, and no sooner.
    parts = [
        head + b"5\r\nhel",
        b"lo\r",
        b"\n1",
        b"0\r\n, world! and so \r\n2\r\nmo\r\n",
        b"0\r\nx-t: 1\r",
        b"\n\r\n",
    ]
    url, srv = await paced(parts)
    pool = Pool(1.0)
    response = await pool.post(url, b"", {})
    got = []
    async for chunk in response.iter_any():
        got.append(chunk)
    assert got == [b"hello", b", world! and so mo"]
    assert response.at_eof()
    assert response.reusable
    srv.close()


@pytest.mark.parametrize(
    "body",
    [b"zz\r\nhello\r\n0\r\n\r\n", b"-5\r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n", b"1" * 2000],
    ids=["not-hex", "negative", "no-crlf-after-data", "endless-size-line"],
)
async def test_bad_chunked_framing_is_a_protocol_error(server, body: bytes) -> None:
    url = await server(lambda n: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    response = await Pool(1.0).post(url, b"", {})
    with pytest.raises(ProtocolError):
        await response.read()


async def test_a_chunked_body_cut_short_raises_incomplete_read() -> None:
    url, srv = await paced([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe"])
    response = await Pool(1.0).post(url, b"", {})
    with pytest.raises(asyncio.IncompleteReadError):
        await response.read()
    assert not response.at_eof()
    srv.close()
