"""What a resumable stream is made of on the wire, and what the SDK hands to callers.

``POST /api/v1/inference:stream`` answers server-sent events: ``resume`` first, then ``data``
(``{"offset", "text", "resume_token"}``), ``heartbeat`` (``{"offset", "resume_token"}``), and
finally ``done`` or ``error``. `SSEDecoder` cuts the byte stream into (event, payload) pairs; the
dataclasses are the parsed results callers see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class Usage:
    """Token counts as the engine reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def of(cls, document: Any) -> Usage | None:
        """The usage in a ``usage`` object, None when the router sent none."""
        if not isinstance(document, dict):
            return None
        return cls(
            int(document.get("prompt_tokens") or 0),
            int(document.get("completion_tokens") or 0),
            int(document.get("total_tokens") or 0),
        )


@dataclass(frozen=True)
class Inference:
    """The whole answer of ``POST /api/v1/inference``."""

    id: str
    model: str
    output: str
    finish_reason: str | None
    usage: Usage | None

    @classmethod
    def of(cls, document: dict[str, Any]) -> Inference:
        """Parse the router's JSON answer."""
        return cls(
            str(document.get("id", "")),
            str(document.get("model", "")),
            str(document.get("output", "")),
            document.get("finish_reason"),
            Usage.of(document.get("usage")),
        )


@dataclass(frozen=True)
class Chunk:
    """One piece of output: its position in the stream and its text."""

    offset: int
    text: str


@dataclass(frozen=True)
class Done:
    """How a stream ended normally."""

    finish_reason: str | None
    usage: Usage | None


class SSEDecoder:
    """Server-sent events from arbitrary byte chunks: feed bytes, get complete (event, data) pairs.

    Only the fields the contract uses are read (``event`` and ``data``); ``id`` and comments are
    skipped. A partial event waits in the buffer for the next chunk.
    """

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[tuple[str, Any]]:
        """Every event completed by ``chunk``, with its JSON payload parsed."""
        # Normalised on the whole buffer: a CRLF may arrive split across two chunks.
        self._buffer = (self._buffer + chunk).replace(b"\r\n", b"\n")
        events: list[tuple[str, Any]] = []
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            name, data = "message", []
            for line in block.split(b"\n"):
                field, _, value = line.partition(b":")
                value = value.removeprefix(b" ")
                if field == b"event":
                    name = value.decode()
                elif field == b"data":
                    data.append(value)
            if data:
                events.append((name, orjson.loads(b"\n".join(data))))
        return events
