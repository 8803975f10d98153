"""Speech to text behind a small interface, with PocketSphinx as the engine that ships here.

``pocketsphinx`` (PyPI) carries its US English acoustic model, dictionary and language model inside
the package, so nothing is downloaded at run time. It decodes incrementally: audio is fed while the
user speaks, and only the final search runs when the utterance ends. Of its two final passes, the
flat-lexicon one (``fwdflat``) is off: on twelve short spoken requests it changed no word's
accuracy and took 3-8x longer than the best-path search that remains (docs/realtime.md), and it is
what the user waits for between the end of speech and the first word of the answer. Another engine
fits behind `Recogniser` without touching the voice pipeline.
"""

from __future__ import annotations

from typing import Protocol


class Recogniser(Protocol):
    """One utterance at a time: `start`, `feed` audio as it arrives, `finish` for the transcript.

    Calls may block for milliseconds (they run in a worker thread), never concurrently.
    """

    def start(self) -> None: ...
    def feed(self, pcm: bytes) -> None: ...
    def finish(self) -> str: ...


class PocketSphinx:
    """PocketSphinx's default US English model on 16 kHz PCM16."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder  # import here: loading the model takes a moment

        self.decoder = Decoder(samprate=16000, fwdflat=False, loglevel="FATAL")
        self.active = False

    def start(self) -> None:
        """Begin an utterance."""
        if self.active:
            self.decoder.end_utt()
        self.decoder.start_utt()
        self.active = True

    def feed(self, pcm: bytes) -> None:
        """Decode more audio of the current utterance."""
        if self.active:
            self.decoder.process_raw(pcm, False, False)

    def finish(self) -> str:
        """End the utterance and return its best transcript (may be empty)."""
        if not self.active:
            return ""
        self.active = False
        self.decoder.end_utt()
        hypothesis = self.decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""
