"""The chain over HTTP: ``/v1/chat/completions``, ``/v1/embeddings`` and ``/v1/messages`` (Anthropic-shaped).

The router delegates a request here when its route names a provider or a fallback list. Every
answer carries ``x-inferflux-served-by`` and a ``model`` field naming the served model that
produced it; every failure is OpenAI's error shape with the normalised code. A stream's headers go
out only once its first chunk has arrived (so the served model is known and a fallback is still
possible); a failure after that ends the stream with an OpenAI error event, never a retry.
Anthropic-shaped clients get the same behaviour in their own dialect (see `anthropic_inbound`).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import orjson

from inferflux.router.asgi import (
    SSE_HEADERS,
    Receive,
    Scope,
    Send,
    cancel_on_disconnect,
    parse_json,
    read_body,
    send_error,
    send_json,
)
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.identity.authenticate import permit_model, principal_of
from inferflux.router.pipeline import Call, OutputFilter, Pipeline, Usage, drained, filtered
from inferflux.router.providers import anthropic_inbound as inbound
from inferflux.router.providers.chain import ChainStream, FallbackChain, served_by_header
from inferflux.router.sse import DONE, frame, openai_error_event

_LABELS = {"/v1/chat/completions": "chat", "/v1/messages": "messages", "/v1/embeddings": "embeddings"}


class ChainHandler:
    """A small ASGI app answering the OpenAI endpoints through one fallback chain."""

    def __init__(self, chain: FallbackChain, pipeline: Pipeline | None = None) -> None:
        self.chain = chain
        self.pipeline = pipeline if pipeline is not None else Pipeline()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        call: Call | None = None
        try:
            body = await self._body(scope, receive)
            if isinstance(body.get("model"), str):  # a missing model is the chain's 400, not a 403
                permit_model(scope, body["model"])
                call = Call(
                    scope.get("inferflux.request_id", ""),  # set by the router in front
                    _LABELS.get(scope["path"], "chat"),
                    body["model"],
                    body,
                    b"",
                    principal_of(scope),
                    body.get("stream") is True,
                    headers=scope.get("inferflux.headers", []),
                )
                await self.pipeline.admit(call)
                body = call.document
            if scope["path"] == "/v1/chat/completions":
                await self.chat(body, receive, send, call)
            elif scope["path"] == "/v1/messages":
                await self.messages(body, receive, send, call)
                return
            elif scope["path"] == "/v1/embeddings":
                served = await self.chain.embeddings(body)
                await self.finish(call, served.model, served.body.get("usage"))
                await send_json(send, 200, served.body, [served_by_header(served.model)])
            else:
                raise UpstreamError(ErrorCode.NOT_FOUND, f"no route for {scope['method']} {scope['path']}")
        except UpstreamError as error:
            if call is not None and not call.finished:
                call.fail(error)
                await self.pipeline.finish(call)
            await send_error_in_dialect(scope, send, error)
        finally:
            if call is not None:
                call.status = call.status or 499  # still unset here: the client went away
                await self.pipeline.finish(call)

    async def finish(self, call: Call | None, model: str, usage: Any, status: int = 200) -> None:
        """Record the outcome on ``call`` and finish its stages, before the last byte goes out."""
        if call is None:
            return
        call.status, call.upstream = status, model
        call.usage = Usage.from_openai(usage) or call.usage
        await self.pipeline.finish(call)

    def filtered_answer(self, call: Call | None, answer: dict[str, Any]) -> dict[str, Any]:
        """A whole answer after the stages' output filters (one may refuse it: `UpstreamError`)."""
        filters = self.pipeline.outputs(call) if call is not None else []
        if not filters:
            return answer
        document = orjson.loads(filtered(filters, orjson.dumps(answer)) + drained(filters))
        return document if isinstance(document, dict) else answer

    @staticmethod
    async def _body(scope: Scope, receive: Receive) -> dict[str, Any]:
        """The request's JSON object; anything else is a 400."""
        if scope["method"] != "POST":
            raise UpstreamError(ErrorCode.BAD_REQUEST, "use POST", status=405)
        body = parse_json(await read_body(receive))
        if not isinstance(body, dict):
            raise UpstreamError(ErrorCode.BAD_REQUEST, "the request body must be a JSON object")
        return body

    async def messages(
        self, body: dict[str, Any], receive: Receive, send: Send, call: Call | None = None
    ) -> None:
        """Anthropic's Messages API in front of the chain, errors in Anthropic's shape."""
        try:
            request = inbound.openai_request(body)
            if not body.get("stream"):
                served = await self.chain.chat(request)
                answer = self.filtered_answer(call, served.body)
                await self.finish(call, served.model, served.body.get("usage"))
                await send_json(
                    send, 200, inbound.message(answer, served.model), [served_by_header(served.model)]
                )
                return
            stream = await self.chain.open_stream(request)
        except UpstreamError as error:
            if call is not None:
                call.fail(error)
                await self.pipeline.finish(call)
            status, document = inbound.error_document(error)
            await send_json(send, status, document, error.headers())
            return
        mapper = inbound.EventMapper(stream.model)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*SSE_HEADERS, served_by_header(stream.model)],
            }
        )
        if call is not None:
            call.status = 200

        filters = self.pipeline.outputs(call) if call is not None else []

        async def relay() -> None:
            usage = None
            try:
                async for chunk in stream:
                    usage = chunk.get("usage") or usage
                    for passed in _through(filters, chunk):
                        for name, data in mapper.events(passed):
                            await _write(send, frame(name, {"type": name, **data}))
                for passed in _chunks(drained(filters)) if filters else []:
                    for name, data in mapper.events(passed):
                        await _write(send, frame(name, {"type": name, **data}))
            except UpstreamError as error:
                if call is not None:
                    call.error = error.code.value
                await self.finish(call, stream.model, usage)
                await _write(send, frame("error", inbound.error_document(error)[1]), more=False)
                return
            for name, data in mapper.finish():
                await _write(send, frame(name, {"type": name, **data}))
            await self.finish(call, stream.model, usage)
            await _write(send, b"", more=False)

        await self._relay(stream, receive, relay())

    async def chat(
        self, body: dict[str, Any], receive: Receive, send: Send, call: Call | None = None
    ) -> None:
        """A chat completion, streamed when the client asked for it."""
        if not body.get("stream"):
            served = await self.chain.chat(body)
            answer = self.filtered_answer(call, served.body)
            await self.finish(call, served.model, served.body.get("usage"))
            await send_json(send, 200, answer, [served_by_header(served.model)])
            return
        stream = await self.chain.open_stream(body)
        headers = [*SSE_HEADERS, served_by_header(stream.model)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if call is not None:
            call.status = 200
        filters = self.pipeline.outputs(call) if call is not None else []

        async def relay() -> None:
            usage = None
            try:
                async for chunk in stream:
                    usage = chunk.get("usage") or usage
                    data = b"data: " + orjson.dumps(chunk) + b"\n\n"
                    await _write(send, filtered(filters, data) if filters else data)
                if filters:
                    await _write(send, drained(filters))
            except UpstreamError as error:
                if call is not None:
                    call.error = error.code.value
                await _write(send, openai_error_event(error.body()))
            await self.finish(call, stream.model, usage)
            await _write(send, b"data: " + DONE + b"\n\n", more=False)

        await self._relay(stream, receive, relay())

    @staticmethod
    async def _relay(stream: ChainStream, receive: Receive, relay: Awaitable[None]) -> None:
        """Run ``relay`` until done or the client leaves; either way the upstream stream is closed."""
        try:
            if await cancel_on_disconnect(receive, relay):
                await stream.aclose()
        except BaseException:
            await stream.aclose()
            raise


def _through(filters: list[OutputFilter], chunk: dict[str, Any]) -> list[dict[str, Any]]:
    """An OpenAI stream chunk after the output filters, which see it as SSE (none, one or more)."""
    if not filters:
        return [chunk]
    return _chunks(filtered(filters, b"data: " + orjson.dumps(chunk) + b"\n\n"))


def _chunks(raw: bytes) -> list[dict[str, Any]]:
    """The OpenAI stream chunks in SSE bytes an output filter let through."""
    found = []
    for block in raw.split(b"\n\n"):
        if block.startswith(b"data:") and block[5:].strip() != DONE:
            chunk = orjson.loads(block[5:])
            if isinstance(chunk, dict):
                found.append(chunk)
    return found


async def send_error_in_dialect(scope: Scope, send: Send, error: UpstreamError) -> None:
    """The error in the client's dialect: Anthropic's shape on ``/v1/messages``, else OpenAI's."""
    if scope["path"] == "/v1/messages":
        status, document = inbound.error_document(error)
        await send_json(send, status, document, error.headers())
    else:
        await send_error(send, error)


async def _write(send: Send, data: bytes, more: bool = True) -> None:
    """One body message of a streamed response."""
    await send({"type": "http.response.body", "body": data, "more_body": more})
