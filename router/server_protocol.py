"""The router's HTTP/1.1 server protocol: uvicorn's httptools protocol, writing each answer in one go.

uvicorn writes a response's head (status line and headers) the moment the application sends
``http.response.start``, and its body in a second write. Each write to a socket with nothing
queued is a system call, and on the router's busiest path (a whole answer relayed from a runtime)
those calls were the largest single cost in a profile (docs/router.md, "fewer writes per
answer"). `CoalescingProtocol` hands each request's cycle a `HeadHeld` transport: the head of a
response with a ``content-length`` waits for the body, and both leave in one write. A client can
do nothing with such a head before its body anyway. Streams (chunked, such as Server-Sent Events)
are not held: their headers go out at once, however long the first event takes.

The protocol also takes header lines the application built itself (`HEAD_LINES`, `head_lines`):
uvicorn checks and lowercases each header of ``http.response.start`` in Python, which for the
router's own headers (``x-request-id``, the six ``x-ratelimit-*`` of a budgeted caller) was a
measured share of a request's work (docs/budgets.md). Lines given here are checked once, as a
whole, and go into the head as they are.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

#: An ASGI scope key `CoalescingProtocol` sets on every HTTP request's scope (to ``b""``). An
#: application that finds it may put there, before ``http.response.start``, header lines of its own
#: (`head_lines`), which go into the response head after uvicorn's.
HEAD_LINES = "inferflux.head_lines"


_LINE = b"%s: %s\r\n"


def head_lines(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """``headers`` as response head lines (``name: value\r\n`` each), or None when a name or a
    value holds a line break or a NUL (then they must go through the server's own checks)."""
    lines = b"".join(map(_LINE.__mod__, headers))
    count = len(headers)
    if lines.count(b"\n") != count or lines.count(b"\r") != count or b"\0" in lines:
        return None
    return lines


#: `HeadHeld.state`: nothing written for the response yet, its head held, or its head written.
BEFORE_HEAD, HEAD_HELD, HEAD_SENT = 0, 1, 2


class HeadHeld:
    """The connection's transport as one request-response cycle sees it.

    The cycle's first write once a response with a ``content-length`` has started is its head: it
    is kept, and sent together with the next write (the body) or before the connection closes.
    Every other write (``100 Continue`` before the response, a chunked response's head and chunks)
    goes straight through.

    The cycle refers to this object and this object to the cycle until the head is written; the
    reference is dropped then, so that the cycle and its request are freed as soon as they are done
    (by reference counting, not by a later garbage collection: measured, keeping it cost 12 MB of
    peak memory at 256 requests in flight).
    """

    __slots__ = ("cycle", "head", "state", "transport")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self.transport = transport
        self.cycle: RequestResponseCycle | None = cycle
        self.state = BEFORE_HEAD
        self.head = b""

    def write(self, data: bytes) -> None:
        """Send ``data``, or keep it if it is the response's head."""
        state = self.state
        if state == HEAD_HELD:
            self.state = HEAD_SENT
            head, self.head = self.head, b""
            self.transport.write(head + data)
            return
        cycle = self.cycle
        if state == BEFORE_HEAD and cycle is not None and cycle.response_started:
            self.cycle = None
            lines = cycle.scope.get(HEAD_LINES)
            if lines and isinstance(lines, bytes):  # the application's own, before the head's end
                data = data[:-2] + lines + b"\r\n"
            if cycle.chunked_encoding is False:  # uvicorn decided it from the headers
                self.state = HEAD_HELD
                self.head = data
                return
            self.state = HEAD_SENT
        self.transport.write(data)

    def flush(self) -> None:
        """Send a head still held (the connection closes before its body was sent)."""
        if self.state == HEAD_HELD:
            self.state = HEAD_SENT
            head, self.head = self.head, b""
            if not self.transport.is_closing():
                self.transport.write(head)

    def is_closing(self) -> bool:
        """Whether the connection is closing or closed."""
        return self.transport.is_closing()

    def close(self) -> None:
        """Close the connection after whatever head is still held."""
        self.flush()
        self.transport.close()


class CoalescingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose request cycles write a response's head with its body."""

    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not before and cycle is not None:  # a new request (not a WebSocket upgrade)
            cycle.transport = HeadHeld(self.transport, cycle)  # type: ignore[assignment]
            cycle.scope[HEAD_LINES] = b""  # type: ignore[literal-required]
