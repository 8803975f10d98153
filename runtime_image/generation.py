"""The bridge between HTTP handlers and the engine: submit a job, then collect or stream its text.

Either way the job is cancelled as soon as the client goes away: a streaming response is closed by
the server when a send fails, and a non-streaming one races the job against ``http.disconnect``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.types import Receive

from inferflux.runtime.engine import Engine, Finish, Job
from inferflux.runtime.errors import APIError


def engine_error(finish: Finish) -> APIError:
    """The HTTP error for a job the engine ended with ``error``."""
    if finish.error == "the model failed to decode":
        return APIError(500, finish.error, type_="server_error")
    return APIError(400, finish.error)


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def collect(engine: Engine, job: Job, receive: Receive) -> tuple[str, Finish]:
    """Run ``job`` to the end: its whole text and how it finished."""
    engine.submit(job)
    watcher = asyncio.ensure_future(_wait_disconnect(receive))
    parts: list[str] = []
    try:
        while True:
            getter = asyncio.ensure_future(job.events.get())
            await asyncio.wait((getter, watcher), return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                job.cancel()
                raise asyncio.CancelledError
            event = getter.result()
            if isinstance(event, Finish):
                job.finish = event
                if event.reason == "error":
                    raise engine_error(event)
                return "".join(parts), event
            parts.append(event)
    finally:
        watcher.cancel()
        job.cancel()  # a no-op once the job finished


async def stream(engine: Engine, job: Job) -> AsyncIterator[str | Finish]:
    """Yield ``job``'s text deltas as they come, then its ``Finish``; closing early cancels it."""
    engine.submit(job)
    try:
        while True:
            event = await job.events.get()
            if isinstance(event, Finish):
                job.finish = event
            yield event
            if isinstance(event, Finish):
                return
    finally:
        job.cancel()
