"""The state of one resumable stream across connections, and when to reconnect.

`StreamCursor` reads the events of every connection in turn. It keeps the youngest resume token
and the next offset it expects, so a reconnect resumes exactly after the last chunk handed out;
a chunk at an offset already handed out is dropped (never repeated) and a jump forward is a
`ProtocolError` (never silently lost). `Reconnect` is the policy both the sync and the async
clients follow: how often to reconnect, how long a silent connection may stall before it counts as
dropped, and how long to honour a ``retry-after``. The clients do the I/O; everything here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inferflux.client.errors import (
    APIError,
    InferFluxError,
    ProtocolError,
    StreamInterruptedError,
    error_from,
)
from inferflux.client.events import Chunk, Done, Usage

STREAM_PATH = "/api/v1/inference:stream"


@dataclass(frozen=True)
class Reconnect:
    """How a client rides out dropped connections and refusals.

    ``stall_seconds`` must exceed the router's heartbeat interval (``INFERFLUX_HEARTBEAT_SECONDS``,
    15 s by default): a connection silent for longer is treated as dropped and resumed.
    ``max_reconnects`` bounds resumes in a row without progress (a connection that delivers a chunk
    resets the count). A refusal with ``retry-after`` (429, 503) is retried ``max_retries`` times
    when the wait is at most ``max_retry_after`` seconds.
    """

    max_reconnects: int = 5
    backoff_seconds: float = 0.2
    max_backoff_seconds: float = 5.0
    stall_seconds: float = 35.0
    max_retries: int = 2
    max_retry_after: float = 60.0

    def backoff(self, attempt: int) -> float:
        """The pause before reconnect number ``attempt`` (1-based): none first, then doubling."""
        if attempt <= 1:
            return 0.0
        return float(min(self.max_backoff_seconds, self.backoff_seconds * 2.0 ** (attempt - 2)))

    def retry_delay(self, error: InferFluxError, retries: int) -> float | None:
        """Seconds to wait before retrying after ``error``, or None to give up and raise it."""
        if error.retry_after is None or retries >= self.max_retries:
            return None
        if error.retry_after > self.max_retry_after:
            return None
        return error.retry_after


class StreamCursor:
    """Where a stream stands: its id, the youngest token, the next offset, and how it ended."""

    def __init__(self, resume_token: str | None = None) -> None:
        self.stream_id: str | None = None
        self.resume_token = resume_token
        self.next_offset: int | None = None
        self.done: Done | None = None
        self.reconnects = 0
        self._failures = 0  # reconnects in a row since the last chunk

    @property
    def finished(self) -> bool:
        """True once ``done`` arrived."""
        return self.done is not None

    def request(self, first: dict[str, Any]) -> dict[str, Any]:
        """The body of the next connection: the request itself, or a resume from the youngest token."""
        if self.resume_token is None:
            return first
        return {"resume_token": self.resume_token}

    def accept(self, event: str, data: Any) -> Chunk | None:
        """Take one event; the chunk to hand out, if any. Raises the typed error of an ``error`` event."""
        if event == "error":
            raise error_from(None, data)
        if not isinstance(data, dict):
            raise ProtocolError(f"{event} event without a JSON object")
        if event == "resume":
            self.stream_id = str(data["stream_id"])
            self._expect(int(data["offset"]), event)
            self.resume_token = str(data["resume_token"])
        elif event == "heartbeat":
            self._expect(int(data["offset"]), event)
            self.resume_token = str(data["resume_token"])
        elif event == "data":
            offset = int(data["offset"])
            if self.next_offset is not None and offset < self.next_offset:
                return None  # already handed out before the reconnect
            self._expect(offset, event)
            self.next_offset = offset + 1
            self.resume_token = str(data["resume_token"])
            self._failures = 0
            return Chunk(offset, str(data["text"]))
        elif event == "done":
            self.done = Done(data.get("finish_reason"), Usage.of(data.get("usage")))
        return None

    def _expect(self, offset: int, event: str) -> None:
        if self.next_offset is None:
            self.next_offset = offset
        elif offset != self.next_offset:
            raise ProtocolError(f"{event} event at offset {offset}, expected {self.next_offset}")

    def dropped(self, policy: Reconnect, cause: BaseException | None) -> float:
        """A connection ended before ``done``: the pause before resuming, or raise when out of reconnects."""
        if self.resume_token is None:
            raise StreamInterruptedError(
                "the connection dropped before the stream started", code="stream_interrupted"
            ) from cause
        self._failures += 1
        if self._failures > policy.max_reconnects:
            raise StreamInterruptedError(
                f"the stream could not be resumed after {policy.max_reconnects} reconnects",
                code="stream_interrupted",
            ) from cause
        self.reconnects += 1
        return policy.backoff(self._failures)

    def refused(self, error: APIError, policy: Reconnect, retries: int) -> float:
        """The router refused a connection: the wait before trying again, or raise ``error``."""
        delay = policy.retry_delay(error, retries)
        if delay is None:
            raise error
        return delay


class StreamHandle:
    """What a caller can ask a stream of either client: its token, how it ended, how often it resumed."""

    def __init__(self, first: dict[str, Any], cursor: StreamCursor, request_id: str) -> None:
        self.first = first
        self.cursor = cursor
        self.request_id = request_id

    @property
    def resume_token(self) -> str | None:
        """The youngest token: hand it to the client's ``resume`` to continue elsewhere or later."""
        return self.cursor.resume_token

    @property
    def done(self) -> Done | None:
        """How the stream ended (finish reason, usage), once it has."""
        return self.cursor.done

    @property
    def reconnects(self) -> int:
        """How many times the stream was resumed on a new connection."""
        return self.cursor.reconnects
