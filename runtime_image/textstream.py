"""Turning a sequence's token bytes into text deltas, with OpenAI ``stop`` strings.

Tokens split UTF-8 characters, and a stop string can span tokens, so text is released only once
it can no longer become part of a stop string or of a partial character.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence


def held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters of ``text`` could still start one of ``stops``."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


class TextStream:
    """Feeds token bytes in, gives releasable text out, and notices stop strings."""

    __slots__ = ("_decoder", "_pending", "stopped", "stops")

    def __init__(self, stops: Sequence[str] = ()) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""
        self.stops = tuple(s for s in stops if s)
        self.stopped = False

    def feed(self, data: bytes) -> str:
        """Text that is now safe to send; sets ``stopped`` when a stop string appeared."""
        text = self._pending + self._decoder.decode(data)
        if not self.stops:
            self._pending = ""
            return text
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._pending = ""
            return text[:cut]
        keep = held_back(text, self.stops)
        self._pending = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """The text still held back, once generation ended without a stop string."""
        if self.stopped:
            return ""
        text = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return text
