"""Realtime sessions: who owns them, what they sent last, and the frames they were sent.

A session outlives its WebSocket: the frames the server sends go into the session's outbox (the
last ``outbox_frames`` of them, numbered by ``seq``), and a connection is only a reader of it. A
client that reconnects with the session id and its ``resume_token`` reads on after the last ``seq``
it got, so an answer that kept streaming while it was away arrives whole. Sessions live in this
router's memory: a reconnect must reach the same replica (docs/realtime.md says so).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from inferflux.router.identity.principal import Principal

Kind = Literal["voice", "xr"]


class Fallen(Exception):
    """A reader asked for frames the outbox no longer holds (it read too slowly, or came back too late)."""


@dataclass
class Outbox:
    """The session's numbered server frames, bounded; readers wait for new ones."""

    limit: int
    frames: deque[tuple[int, bytes]] = field(default_factory=deque)
    next_seq: int = 1
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, kind: str, **fields: Any) -> int:
        """Append a frame ``{type: kind, seq, ...fields}``; the oldest goes when the outbox is full."""
        seq = self.next_seq
        self.next_seq += 1
        self.frames.append((seq, orjson.dumps({"type": kind, "seq": seq, **fields})))
        if len(self.frames) > self.limit:
            self.frames.popleft()
        self._changed.set()
        self._changed = asyncio.Event()
        return seq

    def after(self, seq: int) -> list[tuple[int, bytes]]:
        """The frames after ``seq``; `Fallen` when some of them were already dropped."""
        if self.frames and self.frames[0][0] > seq + 1:
            raise Fallen
        if not self.frames or self.frames[-1][0] <= seq:
            return []
        start = max(0, seq + 1 - self.frames[0][0])
        return list(self.frames)[start:]

    async def wait_after(self, seq: int, within: float) -> list[tuple[int, bytes]]:
        """The frames after ``seq``, waiting up to ``within`` seconds for one to arrive."""
        ready = self.after(seq)
        if ready:
            return ready
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), within)
        except TimeoutError:
            return []
        return self.after(seq)


@dataclass
class Session:
    """One voice or XR conversation of one principal."""

    id: str
    kind: Kind
    principal: Principal | None
    model: str
    resume_token: str
    outbox: Outbox
    options: dict[str, Any] = field(default_factory=dict)
    # The connection currently attached (its id), and when the last one left (for expiry).
    connection: int = 0
    detached_at: float | None = field(default_factory=time.monotonic)
    state: Any = None  # the voice pipeline or the XR context, set by whoever serves the session
    on_close: list[Callable[[], None]] = field(default_factory=list)

    def owned_by(self, principal: Principal | None) -> bool:
        """True when ``principal`` is the session's tenant (auth off: both None)."""
        if self.principal is None or principal is None:
            return self.principal is None and principal is None
        return self.principal.tenant == principal.tenant

    def proves(self, resume_token: str) -> bool:
        """True when ``resume_token`` is this session's (constant-time)."""
        return bool(hmac.compare_digest(self.resume_token.encode(), resume_token.encode()))


class SessionStore:
    """The router's live sessions, bounded in number, dropped ``linger`` seconds after their last
    connection left."""

    def __init__(self, max_sessions: int, linger: float, outbox_frames: int) -> None:
        self.max_sessions = max_sessions
        self.linger = linger
        self.outbox_frames = outbox_frames
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(
        self, kind: Kind, principal: Principal | None, model: str, options: dict[str, Any]
    ) -> Session | None:
        """A new session, or None when the router already holds ``max_sessions`` live ones."""
        self.expire()
        if len(self._sessions) >= self.max_sessions:
            return None
        session = Session(
            secrets.token_urlsafe(16),
            kind,
            principal,
            model,
            secrets.token_urlsafe(32),
            Outbox(self.outbox_frames),
            options,
        )
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Session | None:
        """The live session ``session_id``, if any."""
        self.expire()
        return self._sessions.get(session_id)

    def expire(self, now: float | None = None) -> None:
        """Drop the sessions nobody has been connected to for ``linger`` seconds."""
        now = time.monotonic() if now is None else now
        gone = [
            session
            for session in self._sessions.values()
            if session.detached_at is not None and now - session.detached_at > self.linger
        ]
        for session in gone:
            self.drop(session)

    def drop(self, session: Session) -> None:
        """End ``session`` now, running its close callbacks (a running answer is cancelled)."""
        if self._sessions.pop(session.id, None) is None:
            return
        for callback in session.on_close:
            callback()

    def close(self) -> None:
        """End every session (router shutdown)."""
        for session in list(self._sessions.values()):
            self.drop(session)
