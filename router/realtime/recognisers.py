"""Loaded speech recognisers, lent to voice sessions one utterance at a time.

Loading PocketSphinx's acoustic and language models takes about half a second of CPU. Done on the
event loop when a session opened, it stalled every request of the router for that long; done per
session, it cost each new session that wait. The pool loads recognisers in a worker thread, lends
one to a session from the start of an utterance to its transcript, and keeps up to ``keep`` of them
loaded between utterances, so a router serves many sessions with as many recognisers as there are
people speaking at the same moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from inferflux.router.realtime.stt import Recogniser


class RecogniserPool:
    """Idle loaded recognisers, made by ``make`` in a worker thread when none is idle."""

    def __init__(self, make: Callable[[], Recogniser], keep: int) -> None:
        if keep < 0:
            raise ValueError("keep is a number of recognisers, 0 or more")
        self.make = make
        self.keep = keep
        self.loaded = 0  # recognisers made so far, for tests and the curious
        self._idle: list[Recogniser] = []
        self._warming: asyncio.Task[None] | None = None

    @property
    def idle(self) -> int:
        """Recognisers loaded and waiting for an utterance."""
        return len(self._idle)

    async def take(self) -> Recogniser:
        """An idle recogniser, or a new one loaded in a worker thread (the event loop runs on)."""
        if self._idle:
            return self._idle.pop()
        return await self._load()

    def give_back(self, recogniser: Recogniser) -> None:
        """Keep ``recogniser`` for the next utterance (its last one has finished), if there is room."""
        if len(self._idle) < self.keep:
            self._idle.append(recogniser)

    def warm(self) -> None:
        """Start loading one recogniser in the background when none is idle, so that a session's
        first utterance does not wait for it."""
        if self._idle or self.keep == 0 or (self._warming is not None and not self._warming.done()):
            return
        self._warming = asyncio.ensure_future(self._warm_one())

    async def _warm_one(self) -> None:
        self.give_back(await self._load())

    async def _load(self) -> Recogniser:
        recogniser = await asyncio.to_thread(self.make)
        self.loaded += 1
        return recogniser
