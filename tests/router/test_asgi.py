"""`cancel_on_disconnect`: a short answer never starts a watcher, a longer one is cancelled when
its client leaves."""

from __future__ import annotations

import asyncio
import time

from inferflux.router import asgi
from inferflux.router.asgi import Message, cancel_on_disconnect


async def test_an_answer_out_before_the_watch_starts_never_listens_for_a_disconnect() -> None:
    received: list[str] = []

    async def receive() -> Message:
        received.append("receive")
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    for _ in range(50):
        assert await cancel_on_disconnect(receive, asyncio.sleep(0)) is False
    await asyncio.sleep(asgi.WATCH_AFTER_SECONDS * 2)  # no timer left behind to start one later
    assert received == []


async def test_a_client_leaving_a_longer_request_cancels_it_soon_after_the_watch_starts() -> None:
    gone = asyncio.Event()

    async def receive() -> Message:
        await gone.wait()
        return {"type": "http.disconnect"}

    cancelled = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    asyncio.get_running_loop().call_later(0.3, gone.set)
    started = time.monotonic()
    assert await cancel_on_disconnect(receive, work()) is True
    assert cancelled.is_set()
    assert time.monotonic() - started < 0.3 + asgi.WATCH_AFTER_SECONDS + 1
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]  # the caller goes on
