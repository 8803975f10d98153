"""What both fake provider servers share: a script of failures to play, request capture, lifecycle.

These are fakes of *external* providers (the real endpoints cannot be reached from here), built
from the providers' published API references; everything in front of them is real (the official
SDKs, httpx, our adapters and chain).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from inferflux.router.errors import UpstreamError


@dataclass
class Fault:
    """One scripted misbehaviour: an error response, a hang, or a stream that breaks midway."""

    status: int = 0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang_seconds: float = 0.0
    break_stream_after: int = 0


@dataclass
class Fake:
    """A running fake server: its URL, the requests it saw, the faults it has yet to play."""

    url: str
    requests: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    key: str | None = "sk-test-secret-key-0000"  # None: no auth, like a runtime pod

    def next_fault(self) -> Fault | None:
        """The next scripted fault, consumed; None means behave."""
        return self.faults.pop(0) if self.faults else None


async def hang(fault: Fault | None) -> None:
    """Sleep as scripted (the client's timeout is what ends it)."""
    if fault is not None and fault.hang_seconds:
        await asyncio.sleep(fault.hang_seconds)


async def serve(build: Callable[[Fake], web.Application]) -> tuple[Fake, web.AppRunner]:
    """Start the app ``build`` makes on a free local port."""
    fake = Fake(url="")
    runner = web.AppRunner(build(fake), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    return fake, runner


def sse(event: str | None, data: str) -> bytes:
    """One server-sent event."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


async def failure(work: Awaitable[Any]) -> UpstreamError:
    """The `UpstreamError` that ``work`` raises; the test fails when it raises none."""
    with pytest.raises(UpstreamError) as raised:
        await work
    return raised.value


async def drain(stream: AsyncIterator[dict[str, Any]], into: list[dict[str, Any]]) -> None:
    """Collect chunks into ``into`` until the stream ends or fails."""
    async for chunk in stream:
        into.append(chunk)
