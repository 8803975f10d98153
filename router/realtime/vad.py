"""Voice activity: is the user speaking, and did they just start or stop?

`Endpointer` feeds 10 ms frames of PCM16 at 16 kHz to WebRTC's detector (``webrtcvad-wheels``,
whose model is compiled into the package) and turns its per-frame verdicts into two events:
``start`` after ``start_frames`` voiced frames out of the last ``start_frames + 1`` (40 ms by
default: short enough for barge-in, long enough to ignore a click), and ``end`` after
``end_frames`` unvoiced frames in a row (the hangover: a pause between words is not the end).
"""

from __future__ import annotations

from collections import deque
from typing import Literal

import webrtcvad

SAMPLE_RATE = 16000
FRAME_BYTES = SAMPLE_RATE // 100 * 2  # 10 ms of 16-bit mono
Event = Literal["start", "end"]


class Endpointer:
    """Speech start and end events from a stream of PCM16 audio."""

    def __init__(self, aggressiveness: int = 2, start_frames: int = 4, end_frames: int = 50) -> None:
        self.vad = webrtcvad.Vad(aggressiveness)
        self.start_frames = start_frames
        self.end_frames = end_frames
        self.speaking = False
        self._recent: deque[bool] = deque(maxlen=start_frames + 1)
        self._silent = 0
        self._pending = b""

    def feed(self, pcm: bytes) -> list[Event]:
        """The events ``pcm`` causes, in order (audio shorter than a frame waits for the next call)."""
        data = self._pending + pcm
        whole = len(data) - len(data) % FRAME_BYTES
        self._pending = data[whole:]
        events: list[Event] = []
        for offset in range(0, whole, FRAME_BYTES):
            voiced = self.vad.is_speech(data[offset : offset + FRAME_BYTES], SAMPLE_RATE)
            event = self._step(voiced)
            if event is not None:
                events.append(event)
        return events

    def _step(self, voiced: bool) -> Event | None:
        self._recent.append(voiced)
        if not self.speaking:
            if sum(self._recent) >= self.start_frames:
                self.speaking, self._silent = True, 0
                return "start"
            return None
        self._silent = 0 if voiced else self._silent + 1
        if self._silent >= self.end_frames:
            self.speaking = False
            self._recent.clear()
            return "end"
        return None

    def reset(self) -> None:
        """Forget the current utterance (the client said it ended)."""
        self.speaking = False
        self._recent.clear()
        self._silent = 0
        self._pending = b""
