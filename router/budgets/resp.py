"""One pipelined Redis connection for the ledger's hot path: many requests share it, none waits for
a free connection.

Measured on this project's router (tests/bench/bench_router.py, budget cell): redis-py's asyncio
client spends about 136 us of CPU per EVALSHA in the calling process, against about 32 us for a
plain RESP exchange over asyncio streams, and the ledger makes two calls per request. That is the
router's bottleneck with budgets on, so this one path is written by hand; everything else (script
loading, spend reads in the reporter, the policy store) stays on redis-py.

Redis answers the commands of one connection in order, so concurrent callers write their commands
to the same socket and a single reader hands each reply to the oldest waiting caller. Replies are
parsed by hiredis's C reader (the parser redis-py itself uses). A connection that fails, or a call
that times out (its reply could no longer be matched to its caller), is dropped: every caller still
waiting on it gets the error, and the next call connects again.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis


class ReplyError(Exception):
    """Redis answered the command with an error (``-ERR ...``); the message is Redis's."""


def encode(arguments: tuple[bytes | str, ...]) -> bytes:
    """A command in RESP: an array of bulk strings (hiredis's C encoder, ~3x a Python loop)."""
    packed: bytes = hiredis.pack_command(arguments)  # type: ignore[arg-type]  # its stub says 1-tuple
    return packed


def bulk(arguments: tuple[bytes | str, ...]) -> bytes:
    """``arguments`` as RESP bulk strings without the array's header: a part of a command.

    A command whose first arguments are the same every time is `encode`d as ``b"*%d\r\n" % count``,
    the first arguments' `bulk` (made once) and the rest's. hiredis writes each argument's length
    with ``sprintf``: for the ledger's admission, 27 arguments of which 23 never change per caller,
    that was a measured share of the call's cost (docs/budgets.md, session 14).
    """
    packed = encode(arguments)
    return packed[packed.index(b"\n") + 1 :]


class Endpoint:
    """Where a ``redis://`` or ``rediss://`` URL points, and how to log in."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError("a Redis URL starts with redis:// or rediss://")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.tls = parts.scheme == "rediss"
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        path = parts.path.lstrip("/")
        self.db = int(path) if path else 0

    def login(self) -> list[tuple[bytes | str, ...]]:
        """The commands that prepare a new connection: AUTH and SELECT, as the URL asks."""
        commands: list[tuple[bytes | str, ...]] = []
        if self.password is not None:
            commands.append(
                ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
            )
        if self.db:
            commands.append(("SELECT", str(self.db)))
        return commands


class Connection(asyncio.Protocol):
    """The open socket and the callers waiting for replies, oldest first.

    A protocol, not a stream reader: replies are parsed and handed to their callers in the socket's
    own callback, with no reader task to wake (one event-loop step less per batch of replies).
    Commands written in one turn of the event loop leave in one write (one system call) at its end,
    unless one is sent ``at_once`` (it and those queued before it leave then); and one timer, not
    one per call, fails the connection when its oldest caller has waited ``timeout`` and Redis has
    answered nothing for as long.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.closed = False
        self.transport: asyncio.WriteTransport | None = None
        self._parser = hiredis.Reader(replyError=ReplyError)
        self._outgoing: list[bytes] = []
        self._watchdog: asyncio.TimerHandle | None = None
        self.answered = self.loop.time()  # when Redis last answered on this connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)  # uvloop's are not asyncio classes

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        try:
            while (reply := self._parser.gets()) is not False:
                self.answered = self.loop.time()
                waiter, _ = self.waiting.popleft()
                if not waiter.done():
                    waiter.set_result(reply)
        except (IndexError, hiredis.ProtocolError):  # a reply nobody asked for, or not RESP
            self.close(ConnectionError("Redis sent something that is not an answer"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(ConnectionError("Redis connection lost"))

    def send(self, command: bytes, at_once: bool = False) -> asyncio.Future[Any]:
        """Queue ``command`` for this turn's write (``at_once``: write it, and what is queued before
        it, now); the future resolves with its reply."""
        waiter: asyncio.Future[Any] = self.loop.create_future()
        waiter.add_done_callback(_retrieved)  # its caller may be gone: no "never retrieved" noise
        self.waiting.append((waiter, self.loop.time() + self.timeout))
        if not self._outgoing:
            self.loop.call_soon(self._flush)
        self._outgoing.append(command)
        if self._watchdog is None:
            self._watchdog = self.loop.call_later(self.timeout, self._check)
        if at_once:
            self._flush()
        return waiter

    def _flush(self) -> None:
        if not self._outgoing:  # written at once since this flush was scheduled
            return
        data, self._outgoing = b"".join(self._outgoing), []
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def _check(self) -> None:
        """Fail everything when the oldest caller waited past its deadline and Redis has not answered
        anything for as long (a burst queued behind busy Redis is slow, not dead); else look later."""
        self._watchdog = None
        if self.closed or not self.waiting:
            return
        _, deadline = self.waiting[0]
        deadline = max(deadline, self.answered + self.timeout)
        now = self.loop.time()
        if now >= deadline:
            self.close(TimeoutError(f"Redis did not answer within {self.timeout:g} s"))
        else:
            self._watchdog = self.loop.call_later(deadline - now, self._check)

    def close(self, error: Exception | None = None) -> None:
        """Drop the connection; everyone still waiting gets ``error``."""
        if self.closed:
            return
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.transport is not None:
            self.transport.close()
        while self.waiting:
            waiter, _ = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error or ConnectionError("Redis connection closed"))


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class Multiplexed:
    """Commands on one shared, pipelined connection, each bounded by ``timeout`` seconds."""

    def __init__(self, url: str, timeout: float = 0.5, connect_timeout: float = 1.0) -> None:
        self.endpoint = Endpoint(url)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._connection: Connection | None = None
        self._connecting: asyncio.Lock | None = None

    async def _connect(self) -> Connection:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            current = self._connection
            if current is not None and not current.closed:
                return current
            endpoint = self.endpoint
            context = ssl.create_default_context() if endpoint.tls else None
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await asyncio.get_running_loop().create_connection(
                    lambda: Connection(self.timeout), endpoint.host, endpoint.port, ssl=context
                )
                try:
                    for command in endpoint.login():
                        reply = await connection.send(encode(command))
                        if isinstance(reply, ReplyError):
                            raise reply
                except BaseException:
                    connection.close()
                    raise
            self._connection = connection
            return connection

    async def call(self, *arguments: bytes | str) -> Any:
        """Send one command and return its reply; `ReplyError` for an error reply,
        `ConnectionError` or `TimeoutError` when Redis cannot answer in time."""
        return await self.call_encoded(encode(arguments))

    async def call_encoded(self, command: bytes) -> Any:
        """`call` with the command already in RESP (`encode`, or a header and `bulk` parts)."""
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._connect()
        reply = await connection.send(command)
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def send_encoded(self, command: bytes, at_once: bool = False) -> asyncio.Future[Any] | None:
        """Queue an encoded command on the open connection: a future of its reply (a `ReplyError`
        reply is the result, not raised), or None when no connection is open (then `call_encoded`
        connects). One coroutine less than `call_encoded` on the hot path. ``at_once``: written
        now, not at the end of this turn of the event loop."""
        connection = self._connection
        if connection is None or connection.closed:
            return None
        return connection.send(command, at_once)

    def send_now(self, *arguments: bytes | str) -> asyncio.Future[Any] | None:
        """Queue one command on the open connection without waiting for it: a future of its reply
        (a `ReplyError` reply is the result, not raised), or None when no connection is open."""
        return self.send_encoded(encode(arguments))

    async def close(self) -> None:
        """Close the connection and stop its reader."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
