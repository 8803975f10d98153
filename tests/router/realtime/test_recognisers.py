"""router/realtime/recognisers.py: recognisers load off the event loop and are reused between utterances."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from inferflux.router.realtime.recognisers import RecogniserPool


class Slow:
    """Loads like PocketSphinx does: seconds of work that would block whichever thread runs it."""

    def __init__(self) -> None:
        self.thread = threading.current_thread()
        time.sleep(0.3)

    def start(self) -> None: ...
    def feed(self, pcm: bytes) -> None: ...
    def finish(self) -> str:
        return ""


async def ticks_while(awaitable: asyncio.Future[object] | asyncio.Task[object]) -> int:
    """How often a 10 ms timer fired on the event loop while ``awaitable`` ran."""
    count = 0
    while not awaitable.done():
        await asyncio.sleep(0.01)
        count += 1
    return count


async def test_a_recogniser_is_loaded_in_a_worker_thread_while_the_loop_runs_on() -> None:
    pool = RecogniserPool(Slow, keep=2)
    taking = asyncio.ensure_future(pool.take())
    assert await ticks_while(taking) >= 10  # the loop kept serving during the 0.3 s load
    recogniser = taking.result()
    assert isinstance(recogniser, Slow)
    assert recogniser.thread is not threading.main_thread()
    assert pool.loaded == 1


async def test_a_recogniser_given_back_serves_the_next_utterance_without_a_load() -> None:
    pool = RecogniserPool(Slow, keep=1)
    first = await pool.take()
    pool.give_back(first)
    assert pool.idle == 1
    assert await pool.take() is first
    assert pool.loaded == 1
    pool.give_back(first)
    pool.give_back(await pool._load())  # over `keep`: not kept
    assert pool.idle == 1


async def test_warming_loads_one_in_the_background_for_the_first_utterance() -> None:
    pool = RecogniserPool(Slow, keep=2)
    pool.warm()
    pool.warm()  # one load at a time
    await asyncio.sleep(0.5)
    assert (pool.idle, pool.loaded) == (1, 1)
    await pool.take()
    assert pool.loaded == 1


def test_keep_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        RecogniserPool(Slow, keep=-1)
