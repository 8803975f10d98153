"""A minimal HTTP/1.1 client for the hop to runtime pods: keep-alive pool, chunked bodies, nothing else.

The router only ever POSTs JSON to OpenAI-compatible servers and relays what comes back, so it
needs very little of HTTP. Measured against aiohttp on the same fake backend with 64 streams in
flight (docs/router.md), this lean client waits ~1-2 ms less for response headers at the median and
has no multi-millisecond tail, which is most of the router's time-to-first-token overhead.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections import deque
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

HEAD_LIMIT = 64 * 1024
READ_SIZE = 1 << 16
CHUNK_LINE_LIMIT = 1024  # a chunk size with its extensions
Key = tuple[str, int, bool]


@functools.lru_cache(maxsize=4096)
def destination(url: str) -> tuple[Key, str, str]:
    """Where ``url`` goes: the pool's key (host, port, TLS), the request target and the ``host``
    header. Cached: a router posts to a handful of replica URLs over and over."""
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    key = (parts.hostname or "", parts.port or (443 if tls else 80), tls)
    return key, parts.path + ("?" + parts.query if parts.query else ""), parts.netloc


class ProtocolError(Exception):
    """The upstream sent something that is not HTTP/1.1 as we speak it."""


class StaleConnection(Exception):
    """A pooled connection was closed by the upstream before answering; safe to retry once."""


class Response:
    """Status, headers and a body read on demand; give the connection back with `release`."""

    def __init__(self, connection: Connection, status: int, headers: dict[str, str]) -> None:
        self.connection = connection
        self.status = status
        self.headers = headers
        self.content_type = headers.get("content-type", "").split(";", 1)[0].strip()
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        self._remaining = int(length) if length is not None and not self._chunked else -1
        self._done = self._remaining == 0
        self.reusable = headers.get("connection", "").lower() != "close" and (
            self._chunked or length is not None
        )

    def at_eof(self) -> bool:
        """True once the whole body has been read."""
        return self._done

    async def iter_any(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (chunked framing removed)."""
        reader = self.connection.reader
        if self._chunked:
            if not self._done:
                async for data in self._dechunked(reader):
                    yield data
        elif self._remaining > 0:
            while self._remaining > 0:
                data = await reader.read(min(self._remaining, 1 << 16))
                if not data:
                    raise asyncio.IncompleteReadError(b"", self._remaining)
                self._remaining -= len(data)
                if self._remaining == 0:
                    self._done = True
                yield data
        elif not self._done:
            while data := await reader.read(1 << 16):  # no framing: the body ends with the connection
                yield data
            self._done = True

    async def _dechunked(self, reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        """A chunked body's data: every whole chunk that has arrived, together, as soon as it has.

        A busy upstream's chunks (one SSE event each, from a runtime) queue up in the socket while
        the router is busy: they are read in one go and relayed as one piece, so each costs the relay
        one pass, not one per event (docs/router.md, "chunks read together"). A chunk is never given
        in part."""
        buffer = bytearray()
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                raise asyncio.IncompleteReadError(bytes(buffer), None)
            buffer += data
            pieces, used, ended = _whole_chunks(buffer)
            if ended:
                self._done = True
                if used != len(buffer):  # bytes after the body: this connection is not in step
                    self.reusable = False
            del buffer[:used]
            if pieces:
                yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
            if ended:
                return

    async def read(self) -> bytes:
        """The whole body."""
        if self._remaining > 0 and not self._chunked:
            data = await self.connection.reader.readexactly(self._remaining)
            self._remaining = 0
            self._done = True
            return data
        return b"".join([chunk async for chunk in self.iter_any()])

    def release(self) -> None:
        """Return the connection to the pool if the body was read and the upstream keeps it open."""
        if self._done and self.reusable:
            self.connection.pool.put(self.connection)
        else:
            self.connection.close()

    def close(self) -> None:
        """Drop the connection: the upstream sees the client leave and stops generating."""
        self.connection.close()


def _whole_chunks(buffer: bytearray) -> tuple[list[bytes], int, bool]:
    """The data of the whole chunks at the start of ``buffer`` (chunked transfer coding), how many
    bytes they and their framing take, and whether the last chunk (and its trailers) was among them.

    Raises `ProtocolError` on framing that is not chunked coding."""
    pieces: list[bytes] = []
    position = 0
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            if len(buffer) - position > CHUNK_LINE_LIMIT:
                raise ProtocolError("a chunk size line too long")
            return pieces, position, False
        try:
            size = int(bytes(buffer[position:line_end]).split(b";", 1)[0], 16)
        except ValueError:
            raise ProtocolError("not a chunk size") from None
        if size < 0:
            raise ProtocolError("not a chunk size")
        start = line_end + 2
        if size == 0:  # the last chunk: then trailers, if any, up to an empty line
            end = buffer.find(b"\r\n\r\n", line_end) if buffer[start : start + 2] != b"\r\n" else line_end
            if end < 0:
                if len(buffer) - start > HEAD_LIMIT:
                    raise ProtocolError("chunked trailers too large")
                return pieces, position, False
            return pieces, end + 4, True
        end = start + size
        if len(buffer) < end + 2:
            return pieces, position, False
        if buffer[end : end + 2] != b"\r\n":
            raise ProtocolError("a chunk not followed by CRLF")
        pieces.append(bytes(buffer[start:end]))
        position = end + 2


class Connection:
    """One TCP (or TLS) connection to an upstream."""

    def __init__(
        self, pool: Pool, key: Key, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.pool = pool
        self.key = key
        self.reader = reader
        self.writer = writer
        self.reused = False

    def close(self) -> None:
        """Close the socket."""
        self.writer.close()

    async def request(self, head: bytes, body: bytes) -> Response:
        """Send one request and wait for the status line and headers."""
        self.writer.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.writer.write(body)
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as error:
            if self.reused and not error.partial:
                raise StaleConnection from None
            raise
        except (ConnectionResetError, BrokenPipeError):
            if self.reused:  # the upstream closed its idle end as we wrote: nothing was processed
                raise StaleConnection from None
            raise
        except asyncio.LimitOverrunError:
            raise ProtocolError("response headers too large") from None
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError("not an HTTP/1.x response")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        return Response(self, int(parts[1]), headers)


class Pool:
    """Idle keep-alive connections per upstream, most recently used first."""

    def __init__(
        self, connect_timeout: float, max_idle_per_host: int = 256, ca_file: str | None = None
    ) -> None:
        self.connect_timeout = connect_timeout
        self.max_idle_per_host = max_idle_per_host
        self._idle: dict[Key, deque[Connection]] = {}
        # https upstreams are verified against ca_file when given (a private CA), else the system's.
        self._tls = ssl.create_default_context(cafile=ca_file)

    def put(self, connection: Connection) -> None:
        """Keep a connection for the next request to the same upstream."""
        idle = self._idle.setdefault(connection.key, deque())
        if len(idle) >= self.max_idle_per_host or connection.writer.is_closing():
            connection.close()
            return
        connection.reused = True
        idle.append(connection)

    async def _connect(self, key: Key) -> Connection:
        host, port, tls = key
        async with asyncio.timeout(self.connect_timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=self._tls if tls else None, limit=HEAD_LIMIT
            )
        return Connection(self, key, reader, writer)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        """POST ``body`` to ``url``; a stale pooled connection is replaced once, transparently."""
        key, target, netloc = destination(url)
        lines = [f"POST {target} HTTP/1.1", f"host: {netloc}", f"content-length: {len(body)}"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        while True:
            connection = self._take(key) or await self._connect(key)
            try:
                return await connection.request(head, body)
            except StaleConnection:
                connection.close()
                continue
            except BaseException:
                connection.close()
                raise

    def _take(self, key: Key) -> Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.writer.is_closing() and not connection.reader.at_eof():
                return connection
            connection.close()
        return None

    def close(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
