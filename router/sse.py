"""Server-sent events: framing what we send, and the little parsing the relay needs.

The ``/v1`` relay forwards upstream bytes untouched; it only counts events and fishes the final
``usage`` object out for token accounting. The seeds' stream parses upstream events fully, because
it re-frames them into its own ``data`` events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

DONE = b"[DONE]"


def frame(event: str, data: Any, event_id: str | None = None) -> bytes:
    """One SSE event with a JSON payload (payloads never contain raw newlines, JSON escapes them)."""
    head = f"id: {event_id}\nevent: {event}\n" if event_id is not None else f"event: {event}\n"
    return head.encode() + b"data: " + orjson.dumps(data) + b"\n\n"


def openai_error_event(document: dict[str, Any]) -> bytes:
    """An error inside an OpenAI stream, as the SDKs expect it: a bare ``data:`` line with ``error``."""
    return b"data: " + orjson.dumps(document) + b"\n\n"


def count_events(chunk: bytes) -> int:
    """SSE events completed in ``chunk``: each ends with a blank line."""
    return chunk.count(b"\n\n") + chunk.count(b"\r\n\r\n")


class UsageScanner:
    """Finds the ``usage`` object an OpenAI stream sends last, without parsing the other events."""

    def __init__(self) -> None:
        self.usage: dict[str, Any] | None = None
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        """Look at one relayed chunk."""
        if self._partial:
            chunk = self._partial + chunk
            self._partial = b""
        at = chunk.find(b'"usage":{')
        if at < 0:
            at = chunk.find(b'"usage": {')
            if at < 0:
                return
        start = chunk.rfind(b"data:", 0, at)
        end = chunk.find(b"\n", at)
        if end < 0:
            self._partial = chunk[start:] if len(chunk) - start < 65536 else b""
            return
        try:
            document = orjson.loads(chunk[start + 5 : end])
        except orjson.JSONDecodeError:
            return
        usage = document.get("usage") if isinstance(document, dict) else None
        if isinstance(usage, dict):
            self.usage = usage


async def iter_data(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The ``data`` payloads of an SSE byte stream, one per event, ``[DONE]`` included."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk.replace(b"\r\n", b"\n")
        while True:
            cut = buffer.find(b"\n\n")
            if cut < 0:
                break
            block, buffer = buffer[:cut], buffer[cut + 2 :]
            lines = [line[5:].lstrip() for line in block.split(b"\n") if line.startswith(b"data:")]
            if lines:
                yield b"\n".join(lines)
