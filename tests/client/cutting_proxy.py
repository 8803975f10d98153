"""A TCP proxy in front of the router that breaks streams on purpose, for the SDKs' resume tests.

Its first ``cuts`` connections are broken once ``after`` SSE ``data`` events went through them:
``mode="drop"`` aborts both sockets (a dropped connection), ``mode="stall"`` stops forwarding and
keeps the socket open (a stalled one, which only the heartbeat timeout can detect). Later
connections pass untouched. ``broken`` counts the connections it broke, so a test can check that the
SDK really had to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

DATA = b"event: data"


class CuttingProxy:
    def __init__(self, target: str, after: int, cuts: int = 1, mode: str = "drop") -> None:
        parts = urlsplit(target)
        self.host, self.port_to = parts.hostname or "127.0.0.1", parts.port or 80
        self.after, self.cuts, self.mode = after, cuts, mode
        self.connections = 0
        self.broken = 0
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def start(self) -> CuttingProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        breaking = self.connections <= self.cuts
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port_to)
        upload = asyncio.ensure_future(self._pipe(reader, up_writer))
        self.tasks.add(upload)
        try:
            seen = 0
            while chunk := await up_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
                seen += chunk.count(DATA)
                if breaking and seen >= self.after:
                    self.broken += 1
                    if self.mode == "stall":
                        await reader.read()  # forward nothing more; wait for the client to give up
                    break
            # A dropped connection: RST to the client, the router sees its reader leave.
            writer.transport.abort()
            up_writer.transport.abort()
        except (ConnectionError, asyncio.CancelledError):
            writer.transport.abort()
            up_writer.transport.abort()
        finally:
            upload.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await upload
            self.tasks.discard(upload)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
