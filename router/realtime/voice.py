"""The voice pipeline of one session: audio in, detected speech, transcript, a streamed answer.

Audio frames go through voice activity detection (`vad.Endpointer`) and, while the user speaks,
into the recogniser (`stt`), with the last ``PREROLL_BYTES`` of audio before the detected start so
the first syllable is not lost. When the utterance ends (the detector's hangover, or the client's
``end_of_utterance`` control) the transcript becomes a turn (`turns`), whose answer is sent as
``partial`` frames, then ``final`` (answer and transcript) and ``metrics``. Speech detected while an
answer streams is a barge-in: the answer's task is cancelled, which closes the upstream request,
and ``barge_in`` is sent once it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from inferflux.router.errors import UpstreamError
from inferflux.router.realtime.frames import SUPPORTED_CODECS, AudioFrame, ControlFrame
from inferflux.router.realtime.recognisers import RecogniserPool
from inferflux.router.realtime.sessions import Session
from inferflux.router.realtime.stt import Recogniser
from inferflux.router.realtime.turns import Turn, TurnRunner
from inferflux.router.realtime.vad import Endpointer

log = logging.getLogger("inferflux.router.realtime.voice")
PREROLL_BYTES = 16000 * 2 * 3 // 10  # 300 ms
FEED_BYTES = 16000 * 2 // 10  # the recogniser gets 100 ms at a time: fewer trips to its thread
HISTORY_MESSAGES = 6  # the last three exchanges go with each turn
DEFAULT_VARIABLES = {"assistant_name": "InferFlux", "language": "English", "max_sentences": 3}


def ms(seconds: float) -> float:
    """Seconds as milliseconds, rounded for a frame."""
    return round(seconds * 1000, 1)


class VoicePipeline:
    """Serves the voice frames of one session; answers run in their own task so audio keeps flowing."""

    def __init__(
        self,
        session: Session,
        runner: TurnRunner,
        recognisers: RecogniserPool,
        endpointer: Endpointer | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.session = session
        self.runner = runner
        self.recognisers = recognisers
        self.recogniser: Recogniser | None = None  # lent by the pool while the user speaks
        self.endpointer = endpointer or Endpointer()
        self.clock = clock
        self.preroll = b""
        self.unfed = b""  # audio of the utterance not yet given to the recogniser
        self.utterance_started: float | None = None
        self.answer: asyncio.Task[None] | None = None
        self.turns = 0
        self.history: list[dict[str, str]] = []
        self.lock = asyncio.Lock()  # the recogniser runs in a thread, one call at a time
        session.on_close.append(self.cancel)

    @property
    def answering(self) -> bool:
        """True while an answer is streaming."""
        return self.answer is not None and not self.answer.done()

    def error(self, code: str, message: str) -> None:
        """An ``error`` frame to the client (the session carries on)."""
        self.session.outbox.put("error", code=code, message=message)

    async def on_audio(self, frame: AudioFrame) -> None:
        """Detect speech in the frame, feed the recogniser, and start or stop turns."""
        if frame.codec not in SUPPORTED_CODECS:
            self.error("unsupported_codec", f"codec {frame.codec} is not supported here; send pcm16")
            return
        try:
            pcm = frame.pcm()
        except ValueError as problem:
            self.error("bad_frame", str(problem))
            return
        received = self.clock()
        for event in self.endpointer.feed(pcm):
            if event == "start":
                await self._speech_started(received)
            else:
                await self._utterance_ended(received, client_said=False)
        if self.utterance_started is not None:
            self.unfed += pcm
            if len(self.unfed) >= FEED_BYTES:
                await self._feed()
        else:
            self.preroll = (self.preroll + pcm)[-PREROLL_BYTES:]

    async def on_control(self, frame: ControlFrame) -> None:
        """``end_of_utterance``, ``text``, ``cancel`` (``bye`` is the connection's)."""
        action = frame.payload.action
        if action == "end_of_utterance":
            if self.utterance_started is not None:
                self.endpointer.reset()
                await self._utterance_ended(self.clock(), client_said=True)
        elif action == "text":
            text = (frame.payload.text or "").strip()
            if not text:
                self.error("bad_frame", "payload.text: a text turn needs text")
                return
            started = self.clock()
            await self._interrupt(started, reason="text")
            self._start_answer(text, started, {"stt_ms": 0.0})
        elif action == "cancel":
            await self._interrupt(self.clock(), reason="cancel")

    async def _feed(self) -> None:
        audio, self.unfed = self.unfed, b""
        if audio:
            async with self.lock:
                assert self.recogniser is not None  # lent at the start of the utterance
                await asyncio.to_thread(self.recogniser.feed, audio)

    async def _speech_started(self, at: float) -> None:
        await self._interrupt(at, reason="speech")
        self.utterance_started = at
        async with self.lock:
            if self.recogniser is None:
                self.recogniser = await self.recognisers.take()
            await asyncio.to_thread(self.recogniser.start)
        self.unfed, self.preroll = self.preroll, b""

    async def _interrupt(self, at: float, reason: str) -> None:
        """Stop the answer that is streaming, if any, and say so with ``barge_in``."""
        if not self.answering:
            return
        assert self.answer is not None
        self.answer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.answer  # returns once the upstream exchange is closed
        self.session.outbox.put("barge_in", turn=self.turns, reason=reason, stopped_ms=ms(self.clock() - at))

    async def _utterance_ended(self, at: float, client_said: bool) -> None:
        started = self.utterance_started
        self.utterance_started = None
        await self._feed()
        async with self.lock:
            recogniser, self.recogniser = self.recogniser, None
            assert recogniser is not None
            transcript = (await asyncio.to_thread(recogniser.finish)).strip()
            self.recognisers.give_back(recogniser)
        recognised = self.clock()
        if not transcript:
            self.error("no_speech", "no words recognised in the utterance")
            return
        timings = {
            "utterance_ms": ms(at - started) if started is not None else 0.0,
            "stt_ms": ms(recognised - at),
            "endpoint": "client" if client_said else "vad",
        }
        self._start_answer(transcript, at, timings)

    def _start_answer(self, text: str, ended: float, timings: dict[str, Any]) -> None:
        self.turns += 1
        self.answer = asyncio.ensure_future(self._answer(self.turns, text, ended, timings))

    async def _answer(self, number: int, transcript: str, ended: float, timings: dict[str, Any]) -> None:
        session, outbox = self.session, self.session.outbox
        options = session.options
        turn = Turn(
            session.principal,
            session.model,
            [*self.history[-HISTORY_MESSAGES:], {"role": "user", "content": transcript}],
            "voice",
            prompt_id="voice",
            variables={**DEFAULT_VARIABLES, **(options.get("variables") or {})},
            max_tokens=options.get("max_tokens", 128),
            temperature=options.get("temperature"),
            variant_key=session.id,
        )
        pieces: list[str] = []
        first: float | None = None
        try:
            async for piece in self.runner.pieces(turn):
                if first is None:
                    first = self.clock()
                pieces.append(piece)
                outbox.put("partial", turn=number, text=piece)
        except UpstreamError as error:
            outbox.put("error", turn=number, code=error.code.value, message=error.message)
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the session must survive a broken turn
            log.warning("voice turn failed: %s", type(error).__name__)
            outbox.put("error", turn=number, code="upstream_error", message="the answer failed")
            return
        answer = "".join(pieces)
        self.history += [{"role": "user", "content": transcript}, {"role": "assistant", "content": answer}]
        done = self.clock()
        outbox.put("final", turn=number, text=answer, transcript=transcript)
        usage = turn.usage
        outbox.put(
            "metrics",
            turn=number,
            **timings,
            first_partial_ms=ms(first - ended) if first is not None else None,
            total_ms=ms(done - ended),
            completion_tokens=usage.completion_tokens if usage is not None else None,
        )

    def cancel(self) -> None:
        """Stop any answer (the session ended)."""
        if self.answer is not None:
            self.answer.cancel()
