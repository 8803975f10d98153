"""The seeds' contract: ``POST /api/v1/inference`` and the resumable ``POST /api/v1/inference:stream``.

A new stream gets an id, and a producer task that reads the upstream stream into the replay
buffer. The connection that asked for it is just a reader of that buffer, so when it drops, the
producer carries on and a reconnect with a resume token reads on from the token's offset: nothing
lost, nothing repeated. Every event the reader sends carries a token for the offset after it, and
heartbeats carry fresh ones, so a client always holds a token younger than the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from inferflux.prompts.compiled import VariablesError
from inferflux.prompts.resolver import PromptNotFoundError, PromptResolver
from inferflux.prompts.safety import BlockedInputError, sanitise_chat
from inferflux.router.asgi import (
    SSE_HEADERS,
    Receive,
    Scope,
    Send,
    cancel_on_disconnect,
    header,
    parse_json,
    read_body,
    send_json,
)
from inferflux.router.contract import InferenceRequest, ResumeRequest
from inferflux.router.dispatch import Dispatcher
from inferflux.router.errors import ErrorCode, UpstreamError, error_body
from inferflux.router.identity.authenticate import permit_model, principal_of
from inferflux.router.metrics import Metrics
from inferflux.router.pipeline import Call, OutputFilter, Pipeline, Usage, drained, filtered
from inferflux.router.replay import DATA, Evicted, ProducerGone, ReplayStore, StoreUnavailable
from inferflux.router.resume import KeyHolder, TokenError, sign, verify
from inferflux.router.scheduling.demand import PRIORITY_HEADER, Demand
from inferflux.router.sse import DONE, frame, iter_data
from inferflux.router.upstream import classify_status

log = logging.getLogger("inferflux.router.inference")
RESUME_SHARED = (b"x-inferflux-resume", b"shared")
RESUME_REPLICA = (b"x-inferflux-resume", b"replica")


def validate(model: type[BaseModel], document: Any) -> Any:
    """``document`` as ``model``, or a 400 naming the first problem (and its field, as ``param``)."""
    try:
        return model.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        message = f"{param or 'body'}: {first['msg']}"
        raise UpstreamError(ErrorCode.BAD_REQUEST, message, param=param) from None


def upstream_call(request: InferenceRequest, stream: bool) -> tuple[str, bytes]:
    """The OpenAI path and body that serve ``request`` on a runtime pod."""
    body = request.model_dump(exclude_none=True, exclude={"prompt_id", "variables"})
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    path = "/v1/chat/completions" if request.messages is not None else "/v1/completions"
    return path, orjson.dumps(body)


def text_of(choice: dict[str, Any]) -> str:
    """The generated text in one choice, whether chat (message/delta) or completion (text)."""
    part = choice.get("delta") or choice.get("message")
    if isinstance(part, dict):
        return part.get("content") or ""
    return choice.get("text") or ""


async def _through(filters: list[OutputFilter], chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Upstream SSE bytes after the stages' output filters."""
    async for chunk in chunks:
        yield filtered(filters, chunk) if filters else chunk
    if filters:
        yield drained(filters)


class InferenceRoutes:
    """Handlers for ``/api/v1/inference`` and ``/api/v1/inference:stream``."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        store: ReplayStore,
        keys: KeyHolder,
        metrics: Metrics,
        heartbeat_seconds: float = 15.0,
        token_ttl_seconds: float = 300.0,
        prompts: PromptResolver | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.pipeline = pipeline if pipeline is not None else Pipeline()
        self.store = store
        self.keys = keys
        self.metrics = metrics
        self.heartbeat_seconds = heartbeat_seconds
        self.token_ttl_seconds = token_ttl_seconds
        self.producers: set[asyncio.Task[None]] = set()
        self.prompts = prompts

    def _headers(self, scope: Scope) -> dict[str, str]:
        return {"content-type": "application/json", "x-request-id": scope["inferflux.request_id"]}

    def _demand(self, scope: Scope, call: Call) -> Demand:
        """The call's claim on the model's fair queue (docs/scheduling.md)."""
        return self.dispatcher.demands.of(
            call.principal, len(call.body), call.document, header=header(scope, PRIORITY_HEADER.encode())
        )

    async def with_prompt(self, request: InferenceRequest, request_id: str) -> InferenceRequest:
        """``request`` with its managed prompt rendered in front and untrusted messages sanitised;
        ``request_id`` picks the prompt's variant (a realtime session passes its own id)."""
        if request.prompt_id is None or request.messages is None:
            return request
        if self.prompts is None:
            raise UpstreamError(ErrorCode.BAD_REQUEST, "this router serves no prompts", param="prompt_id")
        messages = [m.model_dump() for m in request.messages]
        try:
            cleaned, _ = sanitise_chat(messages)
            resolved = await self.prompts.resolve(
                request.prompt_id, request.variables or {}, request_id=request_id
            )
        except PromptNotFoundError as error:
            raise UpstreamError(ErrorCode.NOT_FOUND, str(error), param="prompt_id") from None
        except (VariablesError, BlockedInputError) as error:
            raise UpstreamError(ErrorCode.BAD_REQUEST, str(error), param="variables") from None
        document = request.model_dump(exclude_none=True)
        return InferenceRequest.model_validate({**document, "messages": [*resolved.messages, *cleaned]})

    def _call(self, scope: Scope, request: InferenceRequest, stream: bool) -> tuple[str, Call]:
        """The upstream path, and the call the stages see (its body is what goes upstream)."""
        path, body = upstream_call(request, stream=stream)
        document = orjson.loads(body)
        return path, Call(
            scope["inferflux.request_id"],
            "inference",
            request.model,
            document,
            body,
            principal_of(scope),
            stream,
            headers=scope.get("inferflux.headers", []),
        )

    async def infer(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Generate the whole answer and return it in one JSON document."""
        request: InferenceRequest = validate(InferenceRequest, parse_json(await read_body(receive)))
        permit_model(scope, request.model)
        request = await self.with_prompt(request, scope["inferflux.request_id"])
        await self.dispatcher.route(request.model)
        path, call = self._call(scope, request, stream=False)
        demand = self._demand(scope, call)
        await self.pipeline.admit(call)

        async def answer() -> None:
            headers = self._headers(scope)
            async with self.dispatcher.exchange(request.model, path, call.body, headers, demand=demand) as ex:
                payload = await ex.response.read()
                call.status, call.upstream = ex.response.status, ex.route.name
                if ex.response.status >= 400:
                    raise classify_status(ex.response.status)
            filters = self.pipeline.outputs(call)
            if filters:  # the guardrails' output filter (it may refuse the answer: UpstreamError)
                payload = filtered(filters, payload) + drained(filters)
            document = orjson.loads(payload)
            choice = (document.get("choices") or [{}])[0]
            result = {
                "id": document.get("id") or scope["inferflux.request_id"],
                "model": request.model,
                "output": text_of(choice),
                "finish_reason": choice.get("finish_reason"),
                "usage": document.get("usage"),
            }
            call.usage = Usage.from_openai(document.get("usage"))
            await self.pipeline.finish(call)
            await send_json(send, 200, result)

        try:
            if await cancel_on_disconnect(receive, answer()):
                call.status = call.status or 499
        except UpstreamError as error:
            call.fail(error)
            raise
        finally:
            await self.pipeline.finish(call)

    async def stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Start a stream, or resume one from a token, and read it out as SSE."""
        document = parse_json(await read_body(receive))
        if isinstance(document, dict) and "resume_token" in document:
            resume: ResumeRequest = validate(ResumeRequest, document)
            try:
                stream_id, offset = verify(self.keys.keyring, resume.resume_token)
            except TokenError as error:
                self.metrics.resumes.labels("rejected" if error.status == 401 else "expired").inc()
                code = ErrorCode.AUTH if error.status == 401 else ErrorCode.NOT_FOUND
                raise UpstreamError(code, error.message, status=error.status) from None
            try:
                buffered = await self.store.exists(stream_id)
            except StoreUnavailable as error:
                self.metrics.resumes.labels("unavailable").inc()
                raise UpstreamError(
                    ErrorCode.NOT_FOUND, f"{error}; resume is not possible", status=410
                ) from None
            if not buffered:
                self.metrics.resumes.labels("evicted").inc()
                raise UpstreamError(ErrorCode.NOT_FOUND, "stream is no longer buffered", status=410)
            self.metrics.resumes.labels("resumed").inc()
        else:
            request: InferenceRequest = validate(InferenceRequest, document)
            permit_model(scope, request.model)
            await self.dispatcher.route(request.model)
            request = await self.with_prompt(request, scope["inferflux.request_id"])
            path, call = self._call(scope, request, stream=True)
            demand = self._demand(scope, call)
            await self.pipeline.admit(call)
            stream_id, offset = secrets.token_hex(16), 0
            await self.store.create(stream_id)
            task = asyncio.ensure_future(self._produce(stream_id, path, call, self._headers(scope), demand))
            self.producers.add(task)
            task.add_done_callback(self.producers.discard)
        await cancel_on_disconnect(receive, self._read_out(send, stream_id, offset))

    async def _produce(
        self, stream_id: str, path: str, call: Call, headers: dict[str, str], demand: Demand | None = None
    ) -> None:
        """Copy the upstream stream into the replay buffer, ending with ``done`` or ``error``.

        The stream outlives its first reader (a client resumes it), so the stages finish here,
        before ``done`` or ``error`` is buffered, not when a reader leaves.
        """
        finish: dict[str, Any] = {"finish_reason": None, "usage": None}
        events = 0
        try:
            async with self.dispatcher.exchange(call.model, path, call.body, headers, demand=demand) as ex:
                call.status, call.upstream = ex.response.status, ex.route.name
                if ex.response.status >= 400:
                    raise classify_status(ex.response.status)
                async for data in iter_data(_through(self.pipeline.outputs(call), ex.response.iter_any())):
                    if data == DONE:
                        break
                    event = orjson.loads(data)
                    if "error" in event:
                        raise UpstreamError(ErrorCode.UPSTREAM_ERROR, "upstream reported an error mid-stream")
                    finish["usage"] = event.get("usage") or finish["usage"]
                    events += 1
                    for choice in event.get("choices") or []:
                        finish["finish_reason"] = choice.get("finish_reason") or finish["finish_reason"]
                        text = text_of(choice)
                        if text:
                            await self.store.append(stream_id, DATA, orjson.dumps(text))
            await self._settle(call, finish, events)
            await self.store.append(stream_id, "done", orjson.dumps(finish))
        except Evicted:
            await self._settle(call, finish, events)
        except Exception as error:  # a broken upstream must end the stream, never leave readers hanging
            if not isinstance(error, UpstreamError):
                log.warning("stream %s failed: %s", stream_id, type(error).__name__)
                error = UpstreamError(ErrorCode.UPSTREAM_ERROR, "upstream stream failed")
            call.error = error.code.value
            await self._settle(call, finish, events)
            await self._fail(stream_id, error)
        finally:  # cancelled at shutdown: still settled
            await self._settle(call, finish, events)

    async def _settle(self, call: Call, finish: dict[str, Any], events: int) -> None:
        """Finish the stages of a stream once, with the usage it reported (or how far it got)."""
        call.usage = call.usage or Usage.from_openai(finish["usage"])
        call.notes["events"] = events
        await self.pipeline.finish(call)

    async def _fail(self, stream_id: str, error: UpstreamError) -> None:
        self.metrics.upstream_errors.labels("-", error.code.value).inc()
        with contextlib.suppress(Evicted):
            await self.store.append(stream_id, "error", orjson.dumps(error.body()))

    async def _read_out(self, send: Send, stream_id: str, offset: int) -> None:
        """Send the buffer from ``offset`` as it fills, with heartbeats, until ``done`` or ``error``."""
        ttl = self.token_ttl_seconds
        # Who can resume this stream: any replica sharing the store, or only this one.
        scope = RESUME_SHARED if self.store.shared(stream_id) else RESUME_REPLICA
        await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, scope]})
        token = sign(self.keys.keyring, stream_id, offset, ttl)
        opening = frame("resume", {"stream_id": stream_id, "offset": offset, "resume_token": token})
        await send({"type": "http.response.body", "body": opening, "more_body": True})
        next_beat = time.monotonic() + self.heartbeat_seconds
        while True:
            try:
                entries = await self.store.read(stream_id, offset, max(0.0, next_beat - time.monotonic()))
            except Evicted as error:
                explained = isinstance(error, (StoreUnavailable, ProducerGone))
                reason = str(error) if explained else "stream is no longer buffered"
                gone = error_body(ErrorCode.NOT_FOUND, reason)
                await send({"type": "http.response.body", "body": frame("error", gone), "more_body": False})
                return
            out: list[bytes] = []
            for entry in entries:
                if entry.kind != DATA:
                    out.append(b"event: " + entry.kind.encode() + b"\ndata: " + entry.payload + b"\n\n")
                    await send({"type": "http.response.body", "body": b"".join(out), "more_body": False})
                    return
                offset = entry.offset + 1
                token = sign(self.keys.keyring, stream_id, offset, ttl)
                out.append(
                    b'id: %d\nevent: data\ndata: {"offset":%d,"text":%s,"resume_token":"%s"}\n\n'
                    % (entry.offset, entry.offset, entry.payload, token.encode())
                )
            if time.monotonic() >= next_beat:
                token = sign(self.keys.keyring, stream_id, offset, ttl)
                out.append(frame("heartbeat", {"offset": offset, "resume_token": token}))
                next_beat = time.monotonic() + self.heartbeat_seconds
            if out:
                await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})

    async def close(self) -> None:
        """Stop every producer (router shutdown)."""
        for task in list(self.producers):
            task.cancel()
        await asyncio.gather(*self.producers, return_exceptions=True)
