"""The realtime endpoints: session POSTs, the two WebSockets, and the two SSE streams.

``POST /api/v1/{voice,xr}/session`` (behind the router's identity stage, scope ``inference``)
creates a session, or with ``session_id`` and ``resume_token`` re-admits one, and returns a ticket.
``WS /api/v1/{voice,xr}/ws?ticket=...[&after=<seq>]`` spends the ticket and attaches to the session;
frames the client missed (``seq`` above ``after``) are sent first. ``POST /api/v1/voice:stream``
streams a voice session's frames as SSE (optionally starting a typed turn), and
``POST /api/v1/xr:stream`` answers a question fused with the XR session's spatial context.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inferflux.router.asgi import Receive, Scope, Send, cancel_on_disconnect, parse_json, read_body, send_json
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.identity.authenticate import permit_model, principal_of
from inferflux.router.inference_api import InferenceRoutes, validate
from inferflux.router.realtime.close_codes import CloseCode
from inferflux.router.realtime.connection import Closing, Connection, Limits
from inferflux.router.realtime.frames import VOICE_FRAME, XR_FRAME, AudioFrame, ControlFrame, problem
from inferflux.router.realtime.recognisers import RecogniserPool
from inferflux.router.realtime.sessions import Kind, Session, SessionStore
from inferflux.router.realtime.sse import answer_events, outbox_events
from inferflux.router.realtime.stt import Recogniser
from inferflux.router.realtime.tickets import TicketBook
from inferflux.router.realtime.turns import Turn, TurnRunner
from inferflux.router.realtime.voice import VoicePipeline
from inferflux.router.realtime.xr import XrContext, snapshot
from inferflux.router.settings import Settings

log = logging.getLogger("inferflux.router.realtime")
WS_PATHS: dict[str, Kind] = {"/api/v1/voice/ws": "voice", "/api/v1/xr/ws": "xr"}
XR_DEFAULTS = {"assistant_name": "InferFlux", "scene": "room", "avatar_style": "neutral"}


def websocket_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's WebSocket options: the sans-I/O ``websockets`` protocol (it applies backpressure),
    protocol pings every ``realtime_ping_seconds``, and frames over the size limit closed with 1009."""
    return {
        "ws": "websockets-sansio",
        "ws_max_size": settings.realtime_max_frame_bytes,
        "ws_ping_interval": settings.realtime_ping_seconds,
        "ws_ping_timeout": settings.realtime_ping_seconds,
    }


class SessionRequest(BaseModel):
    """A new session (``model``), or a reconnect (``session_id`` and ``resume_token``)."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(default=None, min_length=1)
    max_tokens: int = Field(default=128, ge=1, le=4096)
    temperature: float | None = Field(
        default=None,
        ge=0.0,
        le=2.0,
        description="Sampling temperature of every answer (0 is greedy); unset, the model's default.",
    )
    variables: dict[str, Any] | None = Field(
        default=None, description="Values for the managed voice/xr prompt's variables."
    )
    session_id: str | None = Field(default=None, max_length=64)
    resume_token: str | None = Field(default=None, max_length=128)


class SessionTicket(BaseModel):
    """A session POST's answer: the session, its resume token, and a ticket for one WebSocket."""

    session_id: str
    resume_token: str = Field(description="Keep it: with the session id it re-admits the session.")
    ticket: str = Field(description="Good for one connection, for `ticket_expires_in` seconds.")
    ticket_expires_in: float
    ws_path: str = Field(description="The WebSocket path, ticket included.")
    last_seq: int = Field(description="The session's last frame; connect with `after` to read on from yours.")


class VoiceStreamRequest(BaseModel):
    """Read a voice session's frames as SSE after ``after``; ``text`` starts a typed turn first."""

    model_config = ConfigDict(extra="forbid")
    session_id: str = Field(max_length=64)
    after: int = Field(default=0, ge=0)
    text: str | None = Field(default=None, min_length=1, max_length=4000)


class XrStreamRequest(BaseModel):
    """A question about the XR session's scene."""

    model_config = ConfigDict(extra="forbid")
    session_id: str = Field(max_length=64)
    question: str = Field(min_length=1, max_length=4000)


def _pocketsphinx() -> Recogniser:
    """The recogniser that ships here (imported on first use: loading it takes a moment)."""
    from inferflux.router.realtime.stt import PocketSphinx

    return PocketSphinx()


class Realtime:
    """Voice and XR sessions for one router."""

    def __init__(
        self,
        settings: Settings,
        inference: InferenceRoutes,
        recogniser: Callable[[], Recogniser] | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = SessionStore(
            settings.realtime_max_sessions,
            settings.realtime_session_linger_seconds,
            settings.realtime_outbox_frames,
        )
        self.tickets = TicketBook(settings.realtime_ticket_seconds)
        self.limits = Limits(
            settings.realtime_max_frame_bytes,
            settings.realtime_max_frames_per_second,
            settings.realtime_send_timeout_seconds,
        )
        self.runner = TurnRunner(inference)
        self.recognisers = RecogniserPool(recogniser or _pocketsphinx, settings.realtime_idle_recognisers)
        self.heartbeat = settings.realtime_heartbeat_seconds

    def routes(self) -> dict[tuple[str, str], Any]:
        """The HTTP routes, for the router's table."""
        return {
            ("POST", "/api/v1/voice/session"): self.voice_session,
            ("POST", "/api/v1/xr/session"): self.xr_session,
            ("POST", "/api/v1/voice:stream"): self.voice_stream,
            ("POST", "/api/v1/xr:stream"): self.xr_stream,
        }

    # Sessions and tickets -------------------------------------------------------------------

    async def voice_session(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Create or re-admit a voice session; answer with a ticket for its WebSocket."""
        await self._session(scope, receive, send, "voice")

    async def xr_session(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Create or re-admit an XR session; answer with a ticket for its WebSocket."""
        await self._session(scope, receive, send, "xr")

    async def _session(self, scope: Scope, receive: Receive, send: Send, kind: Kind) -> None:
        request: SessionRequest = validate(SessionRequest, parse_json(await read_body(receive, 65536)))
        principal = principal_of(scope)
        if request.session_id is not None or request.resume_token is not None:
            session = self._owned(scope, request.session_id or "", kind)
            if not session.proves(request.resume_token or ""):
                raise UpstreamError(
                    ErrorCode.INVALID_TOKEN, "resume_token does not match the session", status=401
                )
        else:
            if request.model is None:
                raise UpstreamError(
                    ErrorCode.BAD_REQUEST, "model: a new session needs a model", param="model"
                )
            permit_model(scope, request.model)
            await self.runner.inference.dispatcher.route(request.model)  # 404 for an unknown model now
            options = {
                "max_tokens": request.max_tokens,
                "temperature": request.temperature,
                "variables": request.variables or {},
            }
            created = self.sessions.create(kind, principal, request.model, options)
            if created is None:
                raise UpstreamError(ErrorCode.OVERLOADED, "too many realtime sessions", status=503)
            session = created
            if kind == "voice":
                session.state = VoicePipeline(session, self.runner, self.recognisers)
                self.recognisers.warm()  # loaded by the time the user speaks
            else:
                session.state = XrContext()
        ticket = self.tickets.issue(session.id)
        answer = SessionTicket(
            session_id=session.id,
            resume_token=session.resume_token,
            ticket=ticket,
            ticket_expires_in=self.settings.realtime_ticket_seconds,
            ws_path=f"/api/v1/{kind}/ws?ticket={ticket}",
            last_seq=session.outbox.next_seq - 1,
        )
        await send_json(send, 200, answer.model_dump())

    def _owned(self, scope: Scope, session_id: str, kind: Kind) -> Session:
        """The caller's live session of ``kind``; 404 otherwise (another tenant's too: no oracle)."""
        session = self.sessions.get(session_id)
        if session is None or session.kind != kind or not session.owned_by(principal_of(scope)):
            raise UpstreamError(ErrorCode.NOT_FOUND, "no such session", param="session_id")
        return session

    # WebSockets ----------------------------------------------------------------------------

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one WebSocket: spend its ticket, attach to the session, relay frames both ways."""
        kind = WS_PATHS.get(scope["path"])
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if kind is None:
            await send({"type": "websocket.close", "code": int(CloseCode.SESSION_GONE)})  # HTTP 403
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        session_id = self.tickets.redeem((query.get("ticket") or [""])[0])
        await send({"type": "websocket.accept"})
        if session_id is None:
            await send(
                {"type": "websocket.close", "code": int(CloseCode.UNAUTHENTICATED), "reason": "ticket"}
            )
            return
        session = self.sessions.get(session_id)
        if session is None or session.kind != kind:
            await send({"type": "websocket.close", "code": int(CloseCode.SESSION_GONE), "reason": "session"})
            return
        try:
            after = max(0, int((query.get("after") or ["0"])[0]))
        except ValueError:
            after = 0
        await self._attached(Connection(receive, send, session, self.limits), after)

    async def _attached(self, connection: Connection, after: int) -> None:
        session = connection.session
        session.connection, session.detached_at = connection.id, None
        await connection.send_json({"type": "ready", "session_id": session.id, "after": after})
        pump = asyncio.ensure_future(connection.pump(after))
        reader = asyncio.ensure_future(self._read(connection))
        code, reason = CloseCode.NORMAL, ""
        try:
            done, _ = await asyncio.wait({pump, reader}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if isinstance(error, Closing):
                    code, reason = error.code, error.reason
                elif error is not None:
                    log.warning("realtime connection failed: %s", type(error).__name__)
                    code, reason = CloseCode.INTERNAL_ERROR, "internal error"
        finally:
            for task in (pump, reader):
                task.cancel()
            await asyncio.gather(pump, reader, return_exceptions=True)
            if session.connection == connection.id:
                session.connection, session.detached_at = 0, time.monotonic()
            await connection.close(code, reason)

    async def _read(self, connection: Connection) -> None:
        """Read frames until the client leaves (or says ``bye``); errors in a frame are error frames."""
        session = connection.session
        while True:
            text = await connection.next_text()
            if text is None:
                return
            if session.kind == "voice":
                if await self._voice_frame(session, text):
                    return
            else:
                self._xr_frame(session, text)

    async def _voice_frame(self, session: Session, text: str) -> bool:
        """Handle one voice frame; True when the client said ``bye``."""
        pipeline: VoicePipeline = session.state
        try:
            frame = VOICE_FRAME.validate_json(text)
        except ValidationError as error:
            codec = '"codec":"opus"' in text.replace(" ", "")
            if codec:
                pipeline.error("unsupported_codec", "codec opus is not supported here; send pcm16")
            else:
                pipeline.error("bad_frame", problem(error))
            return False
        if isinstance(frame, AudioFrame):
            await pipeline.on_audio(frame)
            return False
        if frame.payload.action == "bye":
            self.sessions.drop(session)
            return True
        await pipeline.on_control(frame)
        return False

    def _xr_frame(self, session: Session, text: str) -> None:
        context: XrContext = session.state
        try:
            context.update(XR_FRAME.validate_json(text))
        except ValidationError as error:
            session.outbox.put("error", code="bad_frame", message=problem(error))

    # SSE -----------------------------------------------------------------------------------

    async def voice_stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The voice session's frames as SSE; with ``text``, a typed turn is started first."""
        request: VoiceStreamRequest = validate(
            VoiceStreamRequest, parse_json(await read_body(receive, 65536))
        )
        session = self._owned(scope, request.session_id, "voice")
        if request.text is not None:
            control = ControlFrame.model_validate(
                {"type": "control", "payload": {"action": "text", "text": request.text}}
            )
            await session.state.on_control(control)
        await cancel_on_disconnect(
            receive, outbox_events(send, session.outbox, request.after, self.heartbeat)
        )

    async def xr_stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a question with the session's spatial context fused in, as SSE with heartbeats."""
        request: XrStreamRequest = validate(XrStreamRequest, parse_json(await read_body(receive, 65536)))
        session = self._owned(scope, request.session_id, "xr")
        context: XrContext = session.state
        options = session.options
        turn = Turn(
            session.principal,
            session.model,
            [{"role": "user", "content": context.fuse(request.question)}],
            "xr",
            prompt_id="xr",
            variables={**XR_DEFAULTS, **(options.get("variables") or {})},
            max_tokens=options.get("max_tokens", 128),
            temperature=options.get("temperature"),
            variant_key=session.id,
        )
        final = {"context": snapshot(context)}
        await cancel_on_disconnect(
            receive, answer_events(send, self.runner.pieces(turn), self.heartbeat, final)
        )

    def close(self) -> None:
        """End every session (router shutdown)."""
        self.sessions.close()
